// The counts beside the list's views (Mine, Unassigned, All) for the list's number and status. What moves a
// conversation between views (an assignee, a status, a new conversation) may concern rows this page never
// loaded, so the counts come from the server again, once for a burst of events.
import { getJson } from "./api.js";

const SETTLE_MS = 150;

export class ViewCounts {
  constructor({ root, filters, counts }) {
    this.root = root;
    this.params = new URLSearchParams();
    if (filters.number) this.params.set("number", filters.number);
    if (filters.status !== "any") this.params.set("status", filters.status);
    this.timer = null;
    this.show(counts);
  }

  show(counts) {
    for (const node of this.root.querySelectorAll("[data-view-count]")) {
      const count = counts[node.dataset.viewCount];
      if (count !== undefined) node.textContent = String(count);
    }
  }

  refresh() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      getJson(`/api/conversations/counts/?${this.params}`).then((counts) => this.show(counts)).catch(() => {});
    }, SETTLE_MS);
  }
}

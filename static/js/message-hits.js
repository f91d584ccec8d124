// The messages the inbox's search finds, under the contacts it finds: each a link that opens its conversation at the
// message (?message=<id>), with a snippet whose matched words the server marked. Customer text only ever goes into
// text nodes and <mark> elements built here, never HTML.
import { getJson } from "./api.js";
import { contactName, element, listTimeLabel } from "./format.js";

function snippetNode(parts) {
  const snippet = element("span", "hit-snippet");
  for (const part of parts) snippet.append(part.match ? element("mark", null, part.text) : document.createTextNode(part.text));
  return snippet;
}

export class MessageHits {
  constructor({ root, list, empty, more, hits, next, filters, focusId }) {
    this.list = list;
    this.empty = empty;
    this.more = more;
    this.next = next;
    this.filters = filters;
    this.focusId = focusId;
    if (!root) return;
    this.append(hits);
    more.addEventListener("click", () => this.loadMore());
  }

  hrefFor(hit) {
    const params = new URLSearchParams(window.location.search);
    params.set("message", String(hit.id));
    return `/inbox/${hit.conversation_id}/?${params}`;
  }

  append(hits) {
    for (const hit of hits) {
      const link = element("a", "message-hit-link");
      link.href = this.hrefFor(hit);
      if (hit.id === this.focusId) link.setAttribute("aria-current", "true");
      const top = element("span", "hit-top");
      top.append(element("span", "hit-contact", contactName(hit.contact)));
      const time = element("time", "hit-time", listTimeLabel(hit.timestamp));
      time.dateTime = hit.timestamp;
      top.append(time);
      link.append(top, snippetNode(hit.snippet));
      const item = element("li", "message-hit");
      item.dataset.messageId = String(hit.id);
      item.append(link);
      this.list.append(item);
    }
    this.empty.hidden = this.list.children.length > 0;
    this.more.hidden = !this.next;
  }

  async loadMore() {
    if (!this.next) return;
    const params = new URLSearchParams({ q: this.filters.q, cursor: this.next });
    if (this.filters.number) params.set("number", this.filters.number);
    const page = await getJson(`/api/messages/search/?${params}`);
    this.next = page.next ? new URL(page.next, window.location.href).searchParams.get("cursor") : null;
    const first = this.list.children.length;
    this.append(page.results);
    // The reader pressed "More": they read on from the first new one.
    const link = this.list.children[first]?.querySelector("a");
    if (link) link.focus();
  }
}

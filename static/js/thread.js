// The open conversation: bubbles in Meta's timestamp order, day separators, history loaded upward on
// scroll, auto-scroll only when the reader is at the bottom (else a "new messages" pill).
import { getJson } from "./api.js";
import { dayKey, dayLabel, element, weekdayTimeLabel } from "./format.js";
import { renderMessage, updateReactions, updateStatus } from "./message-view.js";
import { renderNote } from "./notes.js";


const BOTTOM_SLACK_PX = 48;
// What the thread orders by time: messages, activity lines and private notes.
const ITEMS = ".message, .activity, .thread-note";

function sortKey(message) {
  return [Date.parse(message.timestamp), message.id];
}

function before(a, b) {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}

export class Thread {
  // ``focusId``: opened at that message (a search hit), shown and highlighted, with ``hasNewer`` messages after the
  // page to load downward at ``newerSentinel``.
  constructor({ conversation, messages, activities = [], hasMore, hasNewer = false, focusId = null, root, list, sentinel, newerSentinel, pill, actions }) {
    this.conversation = conversation;
    this.actions = actions;
    this.root = root;
    this.list = list;
    this.pill = pill;
    this.hasMore = hasMore;
    this.loadingHistory = false;
    this.byId = new Map();
    this.activityIds = new Set();
    this.noteIds = new Set();
    for (const message of messages) this.place(message);
    for (const activity of activities) this.placeActivity(activity);
    this.hasNewer = hasNewer;
    this.renderDays();
    if (!focusId || !this.showMessage(focusId)) this.scrollToBottom();
    pill.addEventListener("click", () => this.toNewest());
    root.addEventListener("scroll", () => { if (this.atBottom()) pill.hidden = true; }, { passive: true });
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadHistory();
    }, { root }).observe(sentinel);
    if (newerSentinel) {
      new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) this.loadNewer();
      }, { root }).observe(newerSentinel);
    }
  }

  // The keyboard's way to a bubble's reply and reaction buttons: the arrows step through the messages (focusable
  // from script only, so Tab does not stop at each of hundreds), and a focused message shows its actions, which
  // Tab reaches next. From outside any message, down starts at the oldest shown and up at the newest.
  moveFocus(delta) {
    const messages = [...this.list.querySelectorAll(".message")];
    if (!messages.length) return;
    const current = messages.indexOf(document.activeElement && document.activeElement.closest(".message"));
    const next = current < 0 ? (delta > 0 ? 0 : messages.length - 1) : current + delta;
    const target = messages[Math.min(Math.max(next, 0), messages.length - 1)];
    target.tabIndex = -1;
    target.focus();
  }

  // The hit in view and marked, and focused so the keyboard reads on from it.
  showMessage(id) {
    const item = this.byId.get(id);
    if (!item) return false;
    item.classList.add("message-found");
    item.tabIndex = -1;
    item.scrollIntoView({ block: "center" });
    item.focus({ preventScroll: true });
    return true;
  }

  // The newest messages: below the bottom when they are loaded, else the conversation opened afresh.
  toNewest() {
    if (!this.hasNewer) return this.scrollToBottom();
    const params = new URLSearchParams(window.location.search);
    params.delete("message");
    window.location.assign(`${window.location.pathname}${params.toString() ? `?${params}` : ""}`);
  }

  // Lines (activity, notes) after the last message loaded wait, hidden, for the newer pages.
  fitLines() {
    const messages = this.list.querySelectorAll(".message");
    const last = messages.length ? Number(messages[messages.length - 1].dataset.sortTs) : Infinity;
    for (const item of this.list.children) {
      if (item.dataset.messageId || item.classList.contains("day-separator")) continue;
      item.hidden = this.hasNewer && Number(item.dataset.sortTs) > last;
    }
  }

  // Everything in time order again (a page of newer messages lands after lines that wait for it).
  sortItems() {
    const keyOf = (node) => [Number(node.dataset.sortTs), node.dataset.messageId ? Number(node.dataset.messageId) : Infinity];
    const items = [...this.list.children].filter((node) => !node.classList.contains("day-separator"));
    items.sort((a, b) => (before(keyOf(a), keyOf(b)) ? -1 : before(keyOf(b), keyOf(a)) ? 1 : 0));
    for (const item of items) this.list.append(item);
  }

  async loadNewer() {
    if (!this.hasNewer || this.loadingNewer) return;
    const messages = this.list.querySelectorAll(".message");
    if (!messages.length) return;
    this.loadingNewer = true;
    try {
      const last = messages[messages.length - 1].dataset.messageId;
      const page = await getJson(`/api/conversations/${this.conversation.id}/messages/?after=${last}`);
      for (const message of page.results) if (!this.byId.has(message.id)) this.place(message);
      this.hasNewer = page.has_more;
      this.sortItems();
      this.renderDays();
    } finally {
      this.loadingNewer = false;
    }
  }

  atBottom() {
    return this.root.scrollHeight - this.root.scrollTop - this.root.clientHeight < BOTTOM_SLACK_PX;
  }

  scrollToBottom() {
    this.root.scrollTo({ top: this.root.scrollHeight, behavior: "auto" });
    this.pill.hidden = true;
  }

  // Insert (or update, when already shown) a message; returns true when it is new on the page.
  add(message) {
    if (this.byId.has(message.id)) return false;
    if (this.hasNewer) {
      // Newer pages are not loaded yet: the pill leads to the newest, this one among them.
      this.pill.hidden = false;
      return false;
    }
    const wasAtBottom = this.atBottom();
    this.place(message);
    this.renderDays();
    if (wasAtBottom) this.root.scrollTo({ top: this.root.scrollHeight, behavior: "smooth" });
    else this.pill.hidden = false;
    return true;
  }

  place(message) {
    const item = renderMessage(message, { findQuoted: (wamid) => this.quotedText(wamid), actions: this.actions });
    item.dataset.sortTs = String(Date.parse(message.timestamp));
    const key = sortKey(message);
    // An activity line at the same moment as a message goes after it.
    const keyOf = (node) => [Number(node.dataset.sortTs), node.dataset.messageId ? Number(node.dataset.messageId) : Infinity];
    const messages = this.list.querySelectorAll(ITEMS);
    const last = messages[messages.length - 1];
    let next = null;
    if (!last || before(keyOf(last), key)) {
      next = null; // the usual case: newest at the bottom
    } else if (before(key, keyOf(messages[0]))) {
      next = messages[0]; // a page of history
    } else for (const other of this.byId.values()) {
      const otherKey = [Number(other.dataset.sortTs), Number(other.dataset.messageId)];
      if (before(key, otherKey) && (!next || before(otherKey, [Number(next.dataset.sortTs), Number(next.dataset.messageId)]))) {
        next = other;
      }
    }
    this.list.insertBefore(item, next);
    this.byId.set(message.id, item);
  }

  // An activity line (a status or assignee change), between the messages at its time; new ones follow the
  // same bottom-or-pill rule as messages.
  addActivity(activity) {
    if (this.activityIds.has(activity.id)) return;
    this.addLine(() => this.placeActivity(activity));
  }

  // Private notes, between the messages at their time, like activity lines.
  addNotes(notes) {
    const fresh = notes.filter((note) => !this.noteIds.has(note.id));
    if (fresh.length) this.addLine(() => fresh.forEach((note) => this.placeNote(note)));
  }

  addLine(place) {
    const wasAtBottom = this.atBottom();
    place();
    this.renderDays();
    if (wasAtBottom) this.root.scrollTo({ top: this.root.scrollHeight, behavior: "smooth" });
    else this.pill.hidden = false;
  }

  placeActivity(activity) {
    const item = element("li", "activity", activityText(activity));
    item.dataset.activityId = String(activity.id);
    if (this.placeAtTime(item, activity.created_at)) this.activityIds.add(activity.id);
  }

  placeNote(note) {
    if (this.placeAtTime(renderNote(note), note.created_at)) this.noteIds.add(note.id);
  }

  // Shown only beside the messages loaded: an older line waits for its page of history. Whether it was placed.
  placeAtTime(item, iso) {
    const first = this.list.querySelector(".message");
    const at = Date.parse(iso);
    if (this.hasMore && first && at < Number(first.dataset.sortTs)) return false;
    item.dataset.timestamp = iso;
    item.dataset.sortTs = String(at);
    let next = null;
    for (const node of this.list.querySelectorAll(ITEMS)) {
      if (Number(node.dataset.sortTs) > at) {
        next = node;
        break;
      }
    }
    this.list.insertBefore(item, next);
    return true;
  }

  // Opened from a notification: the note in view, focused.
  showNote(noteId) {
    const item = this.list.querySelector(`[data-note-id="${Number(noteId)}"]`);
    if (!item) return false;
    item.scrollIntoView({ block: "center" });
    item.focus({ preventScroll: true });
    return true;
  }

  quotedText(wamid) {
    const quoted = this.list.querySelector(`[data-wamid="${CSS.escape(wamid)}"] .content`);
    return quoted ? quoted.textContent.slice(0, 200) : null;
  }

  renderDays() {
    this.fitLines();
    for (const separator of this.list.querySelectorAll(".day-separator")) separator.remove();
    let previous = null;
    for (const item of this.list.querySelectorAll(ITEMS)) {
      if (item.hidden) continue;
      const key = dayKey(item.dataset.timestamp);
      if (key !== previous) {
        const separator = element("li", "day-separator", dayLabel(item.dataset.timestamp));
        this.list.insertBefore(separator, item);
        previous = key;
      }
    }
  }

  // A message changed in place (its media arrived): redraw its bubble where it stands.
  replace(message) {
    const old = this.byId.get(message.id);
    if (!old) return;
    const item = renderMessage(message, { findQuoted: (wamid) => this.quotedText(wamid), actions: this.actions });
    item.dataset.sortTs = old.dataset.sortTs;
    old.replaceWith(item);
    this.byId.set(message.id, item);
  }

  setStatus({ message_id: id, status, error }) {
    const item = this.byId.get(id);
    if (item) updateStatus(item, status, error);
  }

  setReactions({ wamid, reactions }) {
    const item = this.list.querySelector(`[data-wamid="${CSS.escape(wamid)}"]`);
    if (item) updateReactions(item, reactions);
  }

  async loadHistory() {
    if (!this.hasMore || this.loadingHistory) return;
    const first = this.list.querySelector(".message");
    if (!first) return;
    this.loadingHistory = true;
    try {
      // The activity lines come along, for those beside the older messages (the newer ones are placed already).
      const [page, activities, notes] = await Promise.all([
        getJson(`/api/conversations/${this.conversation.id}/messages/?before=${first.dataset.messageId}`),
        getJson(`/api/conversations/${this.conversation.id}/activity/?page_size=500`).catch(() => ({ results: [] })),
        getJson(`/api/conversations/${this.conversation.id}/notes/?page_size=500`).catch(() => ({ results: [] })),
      ]);
      const heightBefore = this.root.scrollHeight;
      const topBefore = this.root.scrollTop;
      for (const message of page.results) if (!this.byId.has(message.id)) this.place(message);
      this.hasMore = page.has_more;
      for (const activity of activities.results) if (!this.activityIds.has(activity.id)) this.placeActivity(activity);
      for (const note of notes.results) if (!this.noteIds.has(note.id)) this.placeNote(note);
      this.renderDays();
      // Keep the reader's place: the content grew above them.
      this.root.scrollTop = topBefore + (this.root.scrollHeight - heightBefore);
    } finally {
      this.loadingHistory = false;
    }
  }
}

// The line as the reader reads it: the server's words, with a snooze's end in the reader's own time zone.
function activityText(activity) {
  const { details, actor } = activity;
  if (activity.kind === "status" && details.to === "snoozed" && details.snoozed_until) {
    return `Snoozed until ${weekdayTimeLabel(details.snoozed_until)}${actor ? ` by ${actor.name}` : ""}`;
  }
  return activity.text;
}

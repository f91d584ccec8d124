// The conversation list: newest activity first, per-user unread badges, the tab title's total,
// filtered like the server filtered it (view, status, assignee, number, unread, search): a conversation that changes
// owner or status leaves or joins the list as the server's would. From the keyboard it is one stop in the tab order
// (a roving tabindex): moveFocus steps through the rows, Enter follows the focused row's link.
import { getJson } from "./api.js";
import { contactName, element, listTimeLabel } from "./format.js";
import { labelChips } from "./labels.js";

// Set when a row is opened from the keyboard: the page it opens focuses that row again, so the reader keeps
// their place in the list.
const OPENED_FROM_KEYBOARD = "inbox:opened-from-keyboard";

export class ConversationList {
  constructor({ root, empty, conversations, filters, openId, numbers, nextCursor, sentinel, unreadTotal, userId }) {
    this.userId = userId;
    this.nextCursor = nextCursor;
    this.loading = false;
    // Reads applied here, per conversation: a count of that conversation asked for before one may be older.
    this.readsApplied = new Map();
    this.numbers = new Map(numbers.map((n) => [n.id, n]));
    this.root = root;
    this.empty = empty;
    this.filters = filters;
    this.openId = openId;
    // The row that holds the list's place in the tab order.
    this.currentId = openId;
    this.byId = new Map(conversations.map((c) => [c.id, { ...c }]));
    // Unread messages in conversations not loaded yet (further pages, or hidden by the filters):
    // the tab title counts them too.
    this.unreadElsewhere = Math.max(0, unreadTotal - this.loadedUnread());
    this.render();
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadMore();
    }).observe(sentinel);
    root.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target.matches(".conversation-link")) rememberOpenedFromKeyboard();
    });
    root.addEventListener("focusin", (event) => {
      const row = event.target.closest(".conversation-row");
      if (row) this.setCurrent(Number(row.dataset.conversationId));
    });
    if (openId && takeOpenedFromKeyboard()) this.focusCurrent();
  }

  links() {
    return [...this.root.querySelectorAll(".conversation-link")];
  }

  // The row ``step`` rows away from the focused one, or from the open conversation's when focus is elsewhere
  // (none open: the first or the last row).
  moveFocus(step) {
    const links = this.links();
    if (!links.length) return;
    const focused = links.indexOf(document.activeElement);
    const current = focused >= 0 ? focused : links.findIndex((link) => link.getAttribute("aria-current") === "page");
    const next = current < 0 ? (step > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, current + step));
    links[next].focus();
  }

  focusCurrent() {
    const links = this.links();
    const link = links.find((l) => Number(l.dataset.conversationId) === this.currentId) || links[0];
    if (link) link.focus();
  }

  setCurrent(conversationId) {
    this.currentId = conversationId;
    for (const link of this.links()) link.tabIndex = Number(link.dataset.conversationId) === conversationId ? 0 : -1;
  }

  // Older conversations, a page at a time, from the same cursor pagination the page started.
  async loadMore() {
    if (!this.nextCursor || this.loading) return;
    this.loading = true;
    try {
      const { filter, number, q, view, status, assignee } = this.filters;
      const params = new URLSearchParams({ cursor: this.nextCursor, page_size: "100", view });
      if (status !== "any") params.set("status", status);
      if (assignee) params.set("assignee", String(assignee));
      if (filter === "unread") params.set("unread", "1");
      if (number) params.set("number", number);
      if (q) params.set("q", q);
      if (this.filters.label) params.set("label", String(this.filters.label));
      const page = await getJson(`/api/conversations/?${params}`);
      for (const conversation of page.results) {
        if (this.byId.has(conversation.id)) continue;
        this.byId.set(conversation.id, conversation);
        this.unreadElsewhere = Math.max(0, this.unreadElsewhere - (conversation.unread_count || 0));
      }
      this.nextCursor = page.next ? new URL(page.next, window.location.href).searchParams.get("cursor") : null;
      this.render();
    } finally {
      this.loading = false;
    }
  }

  // Merge a conversation snapshot from an event (events carry number_id, not the number object).
  // countFromServer: this user's unread count changed in a way no event says (a merge), so ask for it.
  upsert(snapshot, { countFromServer = false } = {}) {
    // A row first seen in an event counts only the messages that arrive from now on: any it had unread
    // before stay counted in unreadElsewhere until its own count comes from the server.
    const known = this.byId.get(snapshot.id);
    const current = known
      || { unread_count: 0, number: this.numbers.get(snapshot.number_id), olderUnreadElsewhere: this.unreadElsewhere > 0 };
    // An older snapshot (events can interleave with a page load) never rolls the row back.
    const stale = known && Date.parse(known.last_message_at) > Date.parse(snapshot.last_message_at);
    const merged = stale ? current : { ...current, ...snapshot };
    this.byId.set(snapshot.id, merged);
    this.render();
    if (countFromServer || (!known && merged.olderUnreadElsewhere)) this.refreshUnreadCount(snapshot.id).catch(() => {});
  }

  // The conversation's labels changed (conversation.labels_changed): a row not loaded waits for its snapshot.
  setLabels(conversationId, labels) {
    const conversation = this.byId.get(conversationId);
    if (!conversation) return;
    conversation.labels = labels;
    this.render();
  }

  // Two conversations became one (a contact merge): the gone one's row leaves, and the kept one holds its
  // messages, unread ones included.
  merge(goneId, into) {
    this.byId.delete(goneId);
    this.upsert(into, { countFromServer: true });
  }

  // The server's count for one row (a row first seen in an event: its older unread messages too), then what
  // is left elsewhere. Until it answers, or if it fails, the row keeps counting what events bring.
  async refreshUnreadCount(conversationId) {
    const readsBefore = this.readsApplied.get(conversationId) || 0;
    const fresh = await getJson(`/api/conversations/${conversationId}/`);
    const row = this.byId.get(conversationId);
    // A read of this conversation applied meanwhile may be newer than the answer: the row keeps it.
    if (row && (this.readsApplied.get(conversationId) || 0) === readsBefore && (fresh.last_message_id || 0) >= (row.last_message_id || 0)) {
      // Events for messages up to the server's newest are then already counted here.
      Object.assign(row, { unread_count: fresh.unread_count, last_message_id: fresh.last_message_id, olderUnreadElsewhere: false });
    }
    await this.recountUnreadElsewhere();
  }

  // A message shown in this conversation. Counted as unread only when newer than everything the row
  // already reflects, so an event replayed after a reconnect or a page load is never counted twice.
  noteMessage(conversationId, messageId, { unread }) {
    const conversation = this.byId.get(conversationId);
    if (!conversation || messageId <= (conversation.last_message_id || 0)) return false;
    conversation.last_message_id = messageId;
    if (unread) conversation.unread_count += 1;
    this.render();
    return true;
  }

  // This user read the conversation up to a message (here or in another tab). An older read,
  // replayed after newer messages arrived, leaves the badge alone.
  markRead(conversationId, lastReadMessageId) {
    this.readsApplied.set(conversationId, (this.readsApplied.get(conversationId) || 0) + 1);
    const conversation = this.byId.get(conversationId);
    if (!conversation || conversation.olderUnreadElsewhere) {
      // Read in another tab, and some of its unread messages were counted in unreadElsewhere: how many, this
      // tab never knew. The server knows the total. A failed recount keeps the old figure until the next read.
      if (this.unreadElsewhere) this.recountUnreadElsewhere().catch(() => {});
      if (conversation) conversation.olderUnreadElsewhere = false;
    }
    if (!conversation || !conversation.unread_count) return;
    if (lastReadMessageId < (conversation.last_message_id || 0)) return;
    conversation.unread_count = 0;
    this.render();
  }

  // One request at a time; reads arriving meanwhile ask for one more, after it.
  async recountUnreadElsewhere() {
    if (this.recounting) {
      this.recountAgain = true;
      return;
    }
    this.recounting = true;
    try {
      do {
        this.recountAgain = false;
        const { unread_total: total } = await getJson("/api/conversations/unread-total/");
        this.unreadElsewhere = Math.max(0, total - this.loadedUnread());
      } while (this.recountAgain);
      this.render();
    } finally {
      this.recounting = false;
    }
  }

  loadedUnread() {
    let total = 0;
    for (const c of this.byId.values()) total += c.unread_count || 0;
    return total;
  }

  totalUnread() {
    return this.unreadElsewhere + this.loadedUnread();
  }

  matches(conversation) {
    const { filter, number, q, view, status, assignee } = this.filters;
    const owner = conversation.assignee ? conversation.assignee.id : null;
    if (view === "mine" && owner !== this.userId) return false;
    if (view === "unassigned" && owner !== null) return false;
    if (status !== "any" && conversation.status !== status) return false;
    if (assignee && owner !== assignee) return false;
    if (number && conversation.number && conversation.number.phone_number_id && conversation.number.phone_number_id !== number) return false;
    if (filter === "unread" && !conversation.unread_count && conversation.id !== this.openId) return false;
    const { label } = this.filters;
    if (label && conversation.id !== this.openId && !(conversation.labels || []).some((l) => l.id === label)) return false;
    if (q) {
      const needle = q.toLowerCase();
      const digits = q.replace(/\D/g, "").replace(/^0+/, "");
      const contact = conversation.contact || {};
      const names = [contact.name, contact.username].filter(Boolean).join(" ").toLowerCase();
      const phone = `${contact.phone || ""} ${contact.wa_id || ""}`;
      if (!names.includes(needle) && !(digits.length >= 4 && phone.includes(digits))) return false;
    }
    return true;
  }

  render() {
    const rows = [...this.byId.values()]
      .filter((c) => this.matches(c))
      .sort((a, b) => Date.parse(b.last_message_at) - Date.parse(a.last_message_at) || b.id - a.id)
      .map((c) => this.renderRow(c));
    // A re-render (any live update) must not drop the keyboard's focus.
    const hadFocus = this.root.contains(document.activeElement);
    this.root.replaceChildren(...rows);
    const current = rows.find((r) => Number(r.dataset.conversationId) === this.currentId) || rows[0];
    if (current) this.setCurrent(Number(current.dataset.conversationId));
    if (hadFocus && current) current.querySelector(".conversation-link").focus({ preventScroll: true });
    this.empty.hidden = rows.length > 0;
    const total = this.totalUnread();
    document.title = total ? `(${total}) Inbox · WhatsApp Inbox` : "Inbox · WhatsApp Inbox";
  }

  renderRow(conversation) {
    const contact = conversation.contact || {};
    const row = element("li", "conversation-row");
    row.dataset.conversationId = String(conversation.id);
    if (conversation.id === this.openId) row.classList.add("open");
    const link = element("a", "conversation-link");
    link.dataset.conversationId = String(conversation.id);
    if (conversation.id === this.openId) link.setAttribute("aria-current", "page");
    const params = new URLSearchParams(window.location.search);
    params.delete("message"); // the search hit this page was opened at: a message of another conversation
    link.href = `/inbox/${conversation.id}/${params.toString() ? `?${params}` : ""}`;
    const name = contactName(contact);
    link.append(element("span", "avatar", name.trim().charAt(0).toUpperCase()));
    const body = element("span", "row-body");
    const top = element("span", "row-top");
    top.append(element("span", "name", name), element("time", "row-time", listTimeLabel(conversation.last_message_at)));
    const bottom = element("span", "row-bottom");
    const preview = element("span", "preview", conversation.last_message || "");
    if (conversation.last_message_direction === "out") preview.prepend(element("span", "you", "You: "));
    bottom.append(preview);
    if (conversation.unread_count) {
      const badge = element("span", "badge", String(conversation.unread_count));
      badge.setAttribute("aria-label", `${conversation.unread_count} unread`);
      bottom.append(badge);
    }
    body.append(top, bottom);
    if (conversation.labels && conversation.labels.length) body.append(labelChips(conversation.labels));
    link.append(body);
    row.append(link);
    return row;
  }
}

function rememberOpenedFromKeyboard() {
  try {
    sessionStorage.setItem(OPENED_FROM_KEYBOARD, "1");
  } catch {
    // Storage disabled: the opened page just does not focus the row.
  }
}

function takeOpenedFromKeyboard() {
  try {
    const opened = sessionStorage.getItem(OPENED_FROM_KEYBOARD) === "1";
    sessionStorage.removeItem(OPENED_FROM_KEYBOARD);
    return opened;
  } catch {
    return false;
  }
}

// The user's notifications (a mention in a note): the bell in the inbox's header with the unread count, and the
// list it opens. Opening one marks it read and goes to its conversation, at the note; "Mark all read". Kept live
// by the socket (notification.created, notification.read), with a browser notification for each new one.
import { getJson, postJson } from "./api.js";
import { element, listTimeLabel } from "./format.js";

export class NotificationPanel {
  constructor({ button, count, panel, list, empty, markAll, notifier }) {
    Object.assign(this, { button, count, panel, list, empty, notifier });
    this.items = new Map();
    button.addEventListener("click", () => this.toggle(this.panel.hidden));
    markAll.addEventListener("click", () => this.markAllRead());
    panel.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.stopPropagation();
      this.toggle(false);
      button.focus();
    });
  }

  async load() {
    const [page, { unread_count: unread }] = await Promise.all([
      getJson("/api/notifications/?page_size=50"),
      getJson("/api/notifications/unread-count/"),
    ]);
    for (const notification of page.results.reverse()) this.place(notification);
    this.setCount(unread);
  }

  toggle(open) {
    this.panel.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
    if (open) (this.list.querySelector("a") || this.panel.querySelector("button")).focus();
  }

  setCount(unread) {
    this.count.textContent = String(unread);
    this.count.hidden = unread === 0;
    this.button.setAttribute("aria-label", unread ? `Notifications: ${unread} unread` : "Notifications");
  }

  // Newest first; one already shown is drawn again (read or not).
  place(notification) {
    const link = element("a", "notification-link");
    link.href = notification.url;
    link.dataset.unread = String(!notification.read_at);
    if (!notification.read_at) link.append(element("span", "visually-hidden", "Unread: "));
    link.append(
      element("span", "notification-title", notification.title),
      element("span", "notification-context", `${notification.contact_name} · ${listTimeLabel(notification.created_at)}`),
      element("span", "notification-text", notification.text),
    );
    link.addEventListener("click", (event) => {
      event.preventDefault();
      this.open(notification);
    });
    const item = element("li", "notification");
    item.dataset.notificationId = String(notification.id);
    item.append(link);
    const old = this.items.get(notification.id);
    if (old) old.replaceWith(item);
    else this.list.prepend(item);
    this.items.set(notification.id, { item, notification });
    this.empty.hidden = this.items.size > 0;
  }

  async open(notification) {
    if (!notification.read_at) {
      try {
        this.place(await postJson(`/api/notifications/${notification.id}/read/`));
      } catch {
        // Still opened; it stays unread and can be opened again.
      }
    }
    this.toggle(false);
    window.location.assign(notification.url);
  }

  add({ notification, unread_count: unread }) {
    const fresh = !this.items.has(notification.id);
    this.place(notification);
    this.setCount(unread);
    if (fresh) {
      this.notifier.notify({
        conversationId: notification.conversation_id,
        title: notification.title,
        body: notification.text,
        openConversationId: null,
        url: notification.url,
        tag: `notification-${notification.id}`,
      });
    }
  }

  markRead({ ids, unread_count: unread }) {
    const readAt = new Date().toISOString();
    for (const id of ids) {
      const shown = this.items.get(id);
      if (shown && !shown.notification.read_at) this.place({ ...shown.notification, read_at: readAt });
    }
    this.setCount(unread);
  }

  async markAllRead() {
    const { unread_count: unread } = await postJson("/api/notifications/read-all/");
    this.markRead({ ids: [...this.items.keys()], unread_count: unread });
  }
}

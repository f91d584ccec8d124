// Browser notifications for new customer messages and mentions, once the user allowed them: shown when the tab
// is hidden or another conversation is open; clicking one opens its conversation (or ``url``, e.g. at a note).
export class Notifier {
  constructor({ button }) {
    this.button = button;
    if (!("Notification" in window)) return;
    if (Notification.permission === "default") {
      button.hidden = false;
      button.addEventListener("click", async () => {
        await Notification.requestPermission();
        button.hidden = Notification.permission !== "default";
      });
    }
  }

  notify({ conversationId, title, body, openConversationId, url, tag }) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (!document.hidden && conversationId === openConversationId) return;
    const notification = new Notification(title, { body, tag: tag || `conversation-${conversationId}` });
    notification.addEventListener("click", () => {
      window.focus();
      window.location.assign(url || `/inbox/${conversationId}/`);
      notification.close();
    });
  }
}

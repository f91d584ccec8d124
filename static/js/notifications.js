// Browser notifications for new customer messages, once the user allowed them: shown when the tab is
// hidden or another conversation is open; clicking one opens its conversation.
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

  notify({ conversationId, title, body, openConversationId }) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (!document.hidden && conversationId === openConversationId) return;
    const notification = new Notification(title, { body, tag: `conversation-${conversationId}` });
    notification.addEventListener("click", () => {
      window.focus();
      window.location.assign(`/inbox/${conversationId}/`);
      notification.close();
    });
  }
}

// "Ana is typing…": tells colleagues when this user types (at most every few seconds) and shows theirs
// for the open conversation until it expires.
const SEND_EVERY_MS = 3000;
const SHOW_FOR_MS = 6000;

export class Typing {
  constructor({ conversationId, input, indicator, send }) {
    this.conversationId = conversationId;
    this.indicator = indicator;
    this.typists = new Map(); // user id -> { name, until }
    let lastSent = 0;
    if (input) {
      input.addEventListener("input", () => {
        const now = Date.now();
        if (now - lastSent >= SEND_EVERY_MS) {
          lastSent = now;
          send({ action: "typing", conversation_id: conversationId });
        }
      });
    }
    setInterval(() => this.render(), 1000);
  }

  show({ conversation_id: conversationId, user_id: userId, name }) {
    if (conversationId !== this.conversationId) return;
    this.typists.set(userId, { name, until: Date.now() + SHOW_FOR_MS });
    this.render();
  }

  render() {
    if (!this.indicator) return;
    const now = Date.now();
    for (const [id, typist] of this.typists) if (typist.until < now) this.typists.delete(id);
    const names = [...this.typists.values()].map((t) => t.name);
    this.indicator.textContent = names.length === 0 ? "" : `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`;
  }
}

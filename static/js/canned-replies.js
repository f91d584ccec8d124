// Canned replies in the composer: "/" at the start of an empty message offers the user's own and the number's,
// filtered by what follows it (a SuggestionMenu). The texts come from the server with their placeholders filled
// in (one rule, services/canned_replies.py).
import { getJson } from "./api.js";
import { SuggestionMenu } from "./suggestion-menu.js";

const TRIGGER = /^\/([a-z0-9_-]*)$/i;

export class CannedReplies extends SuggestionMenu {
  constructor({ root, input, menu, conversationId }) {
    super({ root, input, menu, optionPrefix: "canned-option" });
    this.url = `/api/conversations/${conversationId}/canned-replies/`;
    this.replies = null;
  }

  async update() {
    const match = TRIGGER.exec(this.input.value);
    if (!match) {
      this.close();
      return;
    }
    if (this.replies === null) {
      try {
        this.replies = (await getJson(this.url)).results;
      } catch {
        return; // tried again on the next key
      }
    }
    const prefix = TRIGGER.exec(this.input.value);
    if (!prefix) return;
    const typed = prefix[1].toLowerCase();
    this.show(this.replies.filter((reply) => reply.shortcut.startsWith(typed)));
  }

  optionParts(reply) {
    return [`/${reply.shortcut}`, reply.text];
  }

  // The reply's text takes the place of "/shortcut".
  pick(index) {
    const reply = this.shown[index];
    if (reply) this.insert(reply.text, reply.text.length);
  }
}

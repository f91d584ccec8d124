// Canned replies in the composer: "/" at the start of an empty message offers the user's own and the number's,
// filtered by what follows it; arrows move, Enter/Tab/click pick, Escape closes. The texts come from the server
// with their placeholders filled in (one rule, services/canned_replies.py). An ARIA listbox the text box points
// into (aria-controls, aria-activedescendant).
import { getJson } from "./api.js";
import { element } from "./format.js";

const TRIGGER = /^\/([a-z0-9_-]*)$/i;

export class CannedReplies {
  constructor({ root, input, menu, conversationId }) {
    this.input = input;
    this.menu = menu;
    this.url = `/api/conversations/${conversationId}/canned-replies/`;
    this.replies = null;
    this.shown = [];
    this.active = -1;
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", menu.id);
    input.addEventListener("input", () => this.update());
    // Capture, on the composer: the menu's keys must not also send the message or leave the composer.
    root.addEventListener("keydown", (event) => this.onKey(event), true);
    input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
  }

  isOpen() {
    return !this.menu.hidden;
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
    this.shown = this.replies.filter((reply) => reply.shortcut.startsWith(typed));
    this.active = this.shown.length ? 0 : -1;
    this.render();
  }

  render() {
    if (!this.shown.length) {
      this.close();
      return;
    }
    this.menu.replaceChildren(...this.shown.map((reply, index) => {
      const option = element("li", "canned-option");
      option.id = `canned-option-${reply.id}`;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", String(index === this.active));
      option.append(element("span", "canned-shortcut", `/${reply.shortcut}`), element("span", "canned-text", reply.text));
      // mousedown, not click: the text box keeps its focus.
      option.addEventListener("mousedown", (event) => {
        event.preventDefault();
        this.pick(index);
      });
      return option;
    }));
    this.menu.hidden = false;
    const active = this.shown[this.active];
    this.input.setAttribute("aria-activedescendant", active ? `canned-option-${active.id}` : "");
    const option = this.menu.children[this.active];
    if (option) option.scrollIntoView({ block: "nearest" });
  }

  close() {
    this.menu.hidden = true;
    this.menu.replaceChildren();
    this.input.removeAttribute("aria-activedescendant");
    this.shown = [];
    this.active = -1;
  }

  onKey(event) {
    if (!this.isOpen() || event.target !== this.input || event.isComposing) return;
    const moves = { ArrowDown: 1, ArrowUp: -1 };
    if (event.key in moves) {
      this.active = (this.active + moves[event.key] + this.shown.length) % this.shown.length;
      this.render();
    } else if (event.key === "Enter" || event.key === "Tab") {
      this.pick(this.active);
    } else if (event.key === "Escape") {
      this.close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }

  // The reply's text takes the place of "/shortcut"; the composer hears an input (its draft, its height).
  pick(index) {
    const reply = this.shown[index];
    if (!reply) return;
    this.close();
    this.input.value = reply.text;
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
    this.input.focus();
    this.input.setSelectionRange(reply.text.length, reply.text.length);
  }
}

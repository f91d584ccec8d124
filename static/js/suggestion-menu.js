// A menu of suggestions under the composer's text box (canned replies on "/", teammates on "@"): arrows move,
// Enter/Tab/click pick, Escape closes. An ARIA listbox the text box points into (aria-controls,
// aria-activedescendant). Subclasses say when it opens and what it offers (``update``, calling ``show``), how an
// option reads (``optionParts``) and what picking one does (``pick``).
import { element } from "./format.js";

export class SuggestionMenu {
  constructor({ root, input, menu, optionPrefix }) {
    this.input = input;
    this.menu = menu;
    this.optionPrefix = optionPrefix;
    this.shown = [];
    this.active = -1;
    const controls = (input.getAttribute("aria-controls") || "").split(" ").filter(Boolean);
    input.setAttribute("aria-controls", [...controls, menu.id].join(" "));
    input.setAttribute("aria-autocomplete", "list");
    input.addEventListener("input", () => this.update());
    // Capture, on the composer: the menu's keys must not also send the message or leave the composer.
    root.addEventListener("keydown", (event) => this.onKey(event), true);
    input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
  }

  isOpen() {
    return !this.menu.hidden;
  }

  show(items) {
    this.shown = items;
    this.active = items.length ? 0 : -1;
    this.render();
  }

  optionId(item) {
    return `${this.optionPrefix}-${item.id}`;
  }

  render() {
    if (!this.shown.length) {
      this.close();
      return;
    }
    this.menu.replaceChildren(...this.shown.map((item, index) => {
      const [key, text] = this.optionParts(item);
      const option = element("li", "canned-option");
      option.id = this.optionId(item);
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", String(index === this.active));
      option.append(element("span", "canned-shortcut", key), element("span", "canned-text", text));
      // mousedown, not click: the text box keeps its focus.
      option.addEventListener("mousedown", (event) => {
        event.preventDefault();
        this.pick(index);
      });
      return option;
    }));
    this.menu.hidden = false;
    const active = this.shown[this.active];
    this.input.setAttribute("aria-activedescendant", active ? this.optionId(active) : "");
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

  // The picked text in the box, the caret after it; the composer hears an input (its draft, its height).
  insert(value, caret) {
    this.close();
    this.input.value = value;
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
    this.input.focus();
    this.input.setSelectionRange(caret, caret);
  }
}

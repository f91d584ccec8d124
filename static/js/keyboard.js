// Keyboard shortcuts, one registry for the page: each control registers its keys here with a label, and the
// shortcuts dialog lists what is registered. A key acts only outside text fields, so typing never triggers one,
// unless registered with inFields (Escape out of the composer); keys with Ctrl, Alt or Meta are the browser's.
// Single-character keys can be turned off in the dialog (WCAG 2.1.4), for speech input and the like; keys scoped
// to a focused component (the arrows in the list) stay on.
const TEXT_FIELDS = "input, textarea, select, [contenteditable]:not([contenteditable='false'])";
const OFF_KEY = "inbox:character-shortcuts";

function storedOff() {
  try {
    return localStorage.getItem(OFF_KEY) === "off";
  } catch {
    return false;
  }
}

function describe(key) {
  return { ArrowDown: "↓", ArrowUp: "↑", Escape: "Esc" }[key] || key;
}

export class Shortcuts {
  constructor(target = document) {
    this.bindings = [];
    this.charactersOn = !storedOff();
    target.addEventListener("keydown", (event) => this.dispatch(event));
  }

  // on(keys, handler, { label, within, inFields }): keys are KeyboardEvent.key values; within limits the binding
  // to focus inside that element; label is what the dialog says it does. The handler returns false to leave the
  // key to the browser.
  on(keys, handler, { label = null, within = null, inFields = false } = {}) {
    this.bindings.push({ keys: [].concat(keys), handler, label, within, inFields });
    return this;
  }

  // A key some control handles by itself (Enter on a link, in the composer), listed in the dialog all the same.
  note(keys, label) {
    this.bindings.push({ keys: [].concat(keys), handler: null, label });
    return this;
  }

  dispatch(event) {
    if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey || event.isComposing) return;
    const target = event.target instanceof Element ? event.target : null;
    const inField = Boolean(target && target.closest(TEXT_FIELDS));
    for (const binding of this.bindings) {
      if (!binding.handler || !binding.keys.includes(event.key)) continue;
      if (inField && !binding.inFields) continue;
      if (binding.within && !(target && binding.within.contains(target))) continue;
      if (!binding.within && event.key.length === 1 && !this.charactersOn) continue;
      if (binding.handler(event) === false) continue;
      event.preventDefault();
      return;
    }
  }

  setCharactersOn(on) {
    this.charactersOn = on;
    try {
      if (on) localStorage.removeItem(OFF_KEY);
      else localStorage.setItem(OFF_KEY, "off");
    } catch {
      // Storage disabled: the choice holds for this page only.
    }
  }

  // The dialog that lists the labelled shortcuts and holds the switch for the single-character ones. On closing,
  // focus goes back where it was; refocus() stands in when that element is gone (a list row redrawn meanwhile).
  attachDialog({ dialog, list, toggle, opener, refocus }) {
    let returnTo = null;
    dialog.addEventListener("close", () => {
      if (returnTo && !returnTo.isConnected) refocus();
      returnTo = null;
    });
    const render = () => {
      const rows = [];
      for (const { keys, label } of this.bindings.filter((b) => b.label)) {
        const term = document.createElement("dt");
        for (const key of keys) {
          const kbd = document.createElement("kbd");
          kbd.textContent = describe(key);
          term.append(kbd, " ");
        }
        const definition = document.createElement("dd");
        definition.textContent = label;
        rows.push(term, definition);
      }
      list.replaceChildren(...rows);
      toggle.checked = this.charactersOn;
    };
    const open = () => {
      returnTo = document.activeElement;
      render();
      dialog.showModal();
    };
    opener.addEventListener("click", open);
    toggle.addEventListener("change", () => this.setCharactersOn(toggle.checked));
    return this.on("?", open, { label: "Show these shortcuts" });
  }
}

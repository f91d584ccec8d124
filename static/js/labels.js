// Labels: chips on a conversation's row and in its thread, where members set and remove the number's labels.
// Live through conversation.labels_changed (app.js hands its payload here and to the list).
import { deleteJson, postJson } from "./api.js";
import { element, showErrorIn } from "./format.js";

// A conversation's labels as chips (names are staff text, still only ever set through textContent).
export function labelChips(labels, { onRemove = null } = {}) {
  const chips = element("span", "label-chips");
  for (const label of labels || []) {
    const chip = element("span", "label-chip", label.name);
    chip.dataset.colour = label.colour;
    chip.dataset.labelId = String(label.id);
    if (onRemove) {
      const remove = element("button", "label-remove", "✕");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove label ${label.name}`);
      remove.addEventListener("click", () => onRemove(label));
      chip.append(remove);
    }
    chips.append(chip);
  }
  return chips;
}

// The open conversation's labels: its chips, each removable, and a picker of the number's other labels.
export class ThreadLabels {
  constructor({ root, conversation, numberLabels, onChange }) {
    this.root = root;
    this.url = `/api/conversations/${conversation.id}/labels/`;
    this.available = numberLabels.filter((label) => label.number_id === conversation.number.id);
    this.labels = conversation.labels || [];
    this.onChange = onChange;
    this.render();
  }

  set(labels) {
    this.labels = labels;
    this.render();
  }

  async change(request) {
    try {
      const conversation = await request();
      this.set(conversation.labels);
      this.onChange(conversation);
    } catch (failure) {
      this.showError(failure.detail || "The label could not be changed. Try again.");
    }
  }

  showError(text) {
    showErrorIn(this.root.querySelector(".label-error"), text);
  }

  render() {
    const hadFocus = this.root.contains(document.activeElement);
    const chips = labelChips(this.labels, {
      onRemove: (label) => this.change(() => deleteJson(`${this.url}${label.id}/`)),
    });
    const set = new Set(this.labels.map((label) => label.id));
    const picker = element("select", "label-picker");
    picker.setAttribute("aria-label", "Add a label");
    const prompt = element("option", null, this.available.length ? "+ Label" : "No labels");
    prompt.value = "";
    picker.append(prompt);
    for (const label of this.available.filter((l) => !set.has(l.id))) {
      const option = element("option", null, label.name);
      option.value = String(label.id);
      picker.append(option);
    }
    picker.hidden = !this.available.length;
    picker.addEventListener("change", () => {
      if (picker.value) this.change(() => postJson(this.url, { label: Number(picker.value) }));
    });
    const error = element("span", "label-error");
    error.setAttribute("role", "alert");
    error.hidden = true;
    this.root.replaceChildren(chips, picker, error);
    // A number without labels shows no strip for them.
    this.root.hidden = !this.available.length && !this.labels.length;
    if (hadFocus) picker.focus();
  }
}

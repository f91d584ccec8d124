// The composer: text (Enter sends, Shift+Enter adds a line), replies, reactions, attachments and
// templates, aware of the 24-hour window. Sent messages appear through the socket's message.created.
// Note mode writes a private note for the team instead (to the notes API, never a message), whatever the window.
import { getJson, postForm, postJson } from "./api.js";
import { element, showErrorIn, weekdayTimeLabel } from "./format.js";
import { renderTemplatePreview } from "./template-preview.js";

const WINDOW_MS = 24 * 60 * 60 * 1000;
const MB = 1024 * 1024;
// Meta's limits (conversations/services/media.py holds the same table; the server checks again).
const MEDIA_LIMITS = [
  [/^image\/(jpeg|png)$/, 5 * MB, "images"],
  [/^image\/webp$/, 500 * 1024, "stickers"],
  [/^video\/(mp4|3gpp)$/, 16 * MB, "videos"],
  [/^audio\/(aac|amr|mpeg|mp4|ogg)$/, 16 * MB, "audio files"],
  [/^(text\/plain|application\/(pdf|msword|vnd\.))/, 100 * MB, "documents"],
];

export class Composer {
  constructor({ conversation, root, onNote = () => {} }) {
    this.conversation = conversation;
    this.url = `/api/conversations/${conversation.id}/messages/`;
    this.root = root;
    this.onNote = onNote;
    this.noteMode = false;
    this.$ = (id) => root.querySelector(`#${id}`);
    this.input = this.$("composer-input");
    this.replyTo = null;
    this.templates = [];
    this.templatesLoad = null;
    this.closesAt = null;
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.sendText();
      }
    });
    this.$("send-button").addEventListener("click", () => this.sendText());
    this.$("note-toggle").addEventListener("click", () => this.setNoteMode(!this.noteMode));
    this.$("cancel-reply").addEventListener("click", () => this.setReply(null));
    this.$("attach-input").addEventListener("change", (event) => this.sendFile(event.target));
    this.$("show-templates").addEventListener("click", () => this.showTemplates(true));
    this.$("hide-templates").addEventListener("click", () => this.showTemplates(false));
    this.$("template-select").addEventListener("change", () => this.renderTemplateParams());
    this.$("send-template").addEventListener("click", () => this.sendTemplate());
    this.input.addEventListener("input", () => {
      this.fitInput();
      this.keepDraft();
    });
    this.restoreDraft();
    this.setLastInbound(conversation.last_inbound_at);
    setInterval(() => this.renderWindow(), 30000);
  }

  // The keyboard's way in: the text box, or the template picker while the window is closed.
  focus() {
    const target = this.$("free-form").hidden ? this.$("template-select") : this.input;
    target.focus();
  }

  fitInput() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
  }

  // What the agent is typing survives a reload of the tab (the server asks for one when it catches a socket up
  // from too far behind, or when the agent's access to numbers changed), until it is sent.
  draftKey(conversationId = this.conversation.id) {
    return `inbox:draft:${conversationId}`;
  }

  // This conversation went into another (a contact merge) and the tab moves there: the draft goes along,
  // unless that conversation has one of its own.
  moveDraftTo(conversationId) {
    try {
      if (this.input.value && !sessionStorage.getItem(this.draftKey(conversationId))) {
        sessionStorage.setItem(this.draftKey(conversationId), this.input.value);
      }
      sessionStorage.removeItem(this.draftKey());
    } catch {
      // Storage full or disabled: the draft stays behind.
    }
  }

  keepDraft() {
    try {
      if (this.input.value) sessionStorage.setItem(this.draftKey(), this.input.value);
      else sessionStorage.removeItem(this.draftKey());
    } catch {
      // Storage full or disabled: the draft just does not survive a reload.
    }
  }

  restoreDraft() {
    let draft = null;
    try {
      draft = sessionStorage.getItem(this.draftKey());
    } catch {
      return;
    }
    if (draft && !this.input.value) {
      this.input.value = draft;
      this.fitInput();
    }
  }

  // The window only ever moves forward (a replayed older snapshot cannot shorten it).
  setLastInbound(iso) {
    const closesAt = iso ? Date.parse(iso) + WINDOW_MS : null;
    if (closesAt !== null && (this.closesAt == null || closesAt > this.closesAt)) this.closesAt = closesAt;
    this.renderWindow();
  }

  windowOpen() {
    return this.closesAt !== null && Date.now() < this.closesAt;
  }

  renderWindow() {
    const open = this.windowOpen();
    const state = this.$("window-state");
    state.dataset.open = String(open);
    state.textContent = open
      ? `Reply window open until ${weekdayTimeLabel(this.closesAt)}${this.closesAt - Date.now() > 3600000 ? "" : " (closing soon)"}`
      : "The 24-hour reply window is closed: only templates can be sent.";
    this.$("free-form").hidden = !open && !this.noteMode;
    if (!open && !this.noteMode) this.showTemplates(true);
  }

  // A note, not a reply: the composer looks and says so, and sends nothing to the customer.
  setNoteMode(on) {
    this.noteMode = on;
    this.root.classList.toggle("note-mode", on);
    this.$("note-toggle").setAttribute("aria-pressed", String(on));
    this.$("note-hint").hidden = !on;
    this.input.setAttribute("aria-label", on ? "Private note" : "Message");
    this.input.placeholder = on ? "Write a private note, @ to mention a teammate" : "Type a message, or / for a canned reply";
    this.$("send-button").textContent = on ? "Add note" : "Send";
    for (const id of ["attach", "show-templates"]) this.$(id).hidden = on;
    if (on) {
      this.setReply(null);
      this.showTemplates(false);
    }
    this.renderWindow();
    this.input.focus();
  }

  setReply(message) {
    this.replyTo = message;
    this.$("reply-preview").hidden = !message;
    this.$("reply-preview-text").textContent = message ? `Replying to: ${message.text}` : "";
    if (message) this.input.focus();
  }

  showError(text) {
    showErrorIn(this.$("composer-error"), text);
  }

  async submit(request) {
    this.showError(null);
    try {
      await request();
      return true;
    } catch (failure) {
      this.showError(failure.detail || "The message could not be queued. Try again.");
      return false;
    }
  }

  async sendText() {
    const text = this.input.value;
    if (!text.trim()) return;
    if (this.noteMode) {
      let note = null;
      const written = await this.submit(async () => {
        note = await postJson(`/api/conversations/${this.conversation.id}/notes/`, { body: text });
      });
      if (written) {
        this.clearSent();
        this.onNote(note);
      }
      return;
    }
    const sent = await this.submit(() => postJson(this.url, { type: "text", text, reply_to: this.replyTo ? this.replyTo.wamid : "" }));
    if (sent) this.clearSent();
  }

  // After a send: an empty composer, no draft kept, no reply pending.
  clearSent() {
    this.input.value = "";
    this.fitInput();
    this.keepDraft();
    this.setReply(null);
  }

  async react(message, emoji) {
    await this.submit(() => postJson(this.url, { type: "reaction", message: message.wamid, emoji }));
  }

  async sendFile(input) {
    const file = input.files[0];
    input.value = "";
    if (!file) return;
    const rule = MEDIA_LIMITS.find(([pattern]) => pattern.test(file.type));
    if (!rule) {
      this.showError(`WhatsApp does not accept ${file.type || "this kind of file"}.`);
      return;
    }
    if (file.size > rule[1]) {
      this.showError(`WhatsApp limits ${rule[2]} to ${rule[1] >= MB ? `${rule[1] / MB} MB` : `${rule[1] / 1024} KB`}.`);
      return;
    }
    const form = new FormData();
    form.append("file", file);
    form.append("caption", this.input.value.trim());
    if (this.replyTo) form.append("reply_to", this.replyTo.wamid);
    const sent = await this.submit(() => postForm(this.url, form));
    if (sent) this.clearSent();
  }

  async showTemplates(visible) {
    this.$("template-form").hidden = !visible;
    this.$("show-templates").hidden = visible;
    if (visible) await this.loadTemplates();
  }

  // Once per page: every live update re-renders the window and asks again, and a second load landing after
  // the agent typed would rebuild the inputs empty. A failed load is tried again on the next ask.
  loadTemplates() {
    this.templatesLoad ??= getJson(`/api/conversations/${this.conversation.id}/templates/`).then((data) => {
      this.templates = data.results;
      const select = this.$("template-select");
      const picked = select.value;
      select.replaceChildren(...this.templates.map((t) => {
        const option = element("option", null, `${t.name} (${t.language})`);
        option.value = String(t.id);
        return option;
      }));
      if (!this.templates.length) select.append(element("option", null, "No approved templates"));
      // Read again after a change at Meta: the agent's pick, still offered, keeps the values typed.
      if (picked && this.templates.some((t) => String(t.id) === picked)) {
        select.value = picked;
        return;
      }
      this.renderTemplateParams();
    }, (failure) => {
      this.templatesLoad = null;
      throw failure;
    });
    return this.templatesLoad;
  }

  // A template changed at Meta (paused, approved, ...): the next ask reads the list again, an open picker now.
  templatesChanged() {
    this.templatesLoad = null;
    if (!this.$("template-form").hidden) this.loadTemplates().catch(() => {});
  }

  selectedTemplate() {
    const id = Number(this.$("template-select").value);
    return this.templates.find((t) => t.id === id) || null;
  }

  // One input per value the template needs (templates API "slots"): a header text or media (a file, or an
  // https link), body parameters by position or name, a URL button's ending, a code to copy.
  renderTemplateParams() {
    const template = this.selectedTemplate();
    const params = this.$("template-params");
    params.replaceChildren();
    for (const slot of template ? template.slots : []) {
      const id = `template-slot-${slot.key.replace(/\W/g, "-")}`;
      const label = element("label", "template-param-label", slot.label);
      label.htmlFor = id;
      const input = element("input", "template-param");
      input.id = id;
      input.dataset.key = slot.key;
      input.dataset.kind = slot.kind;
      if (["image", "video", "document"].includes(slot.kind)) {
        input.type = "file";
        input.accept = { image: "image/jpeg,image/png", video: "video/mp4,video/3gpp", document: "application/pdf" }[slot.kind];
        const link = element("input", "template-param");
        link.id = `${id}-link`;
        link.type = "url";
        link.dataset.key = "header_link";
        link.placeholder = "https://…";
        const linkLabel = element("label", "template-param-label", `or a link to the ${slot.kind}`);
        linkLabel.htmlFor = link.id;
        params.append(label, input, linkLabel, link);
      } else {
        input.placeholder = slot.example || "";
        params.append(label, input);
      }
      input.addEventListener("input", () => this.renderTemplatePreview());
    }
    this.renderTemplatePreview();
  }

  templateValues() {
    const values = {};
    for (const input of this.$("template-params").querySelectorAll("input[data-kind='text'], input[data-kind='url_suffix'], input[data-kind='coupon_code']")) {
      values[input.dataset.key] = input.value;
    }
    return values;
  }

  // The message as the customer will see it, filled in as the agent types.
  renderTemplatePreview() {
    renderTemplatePreview(this.$("template-body"), this.selectedTemplate(), this.templateValues());
  }

  async sendTemplate() {
    const template = this.selectedTemplate();
    if (!template) return;
    const inputs = [...this.$("template-params").querySelectorAll("input")];
    const file = inputs.find((i) => i.type === "file" && i.files.length)?.files[0];
    const link = inputs.find((i) => i.dataset.key === "header_link")?.value || "";
    const values = this.templateValues();
    let request;
    if (file) {
      const form = new FormData();
      form.append("type", "template");
      form.append("template", String(template.id));
      form.append("values", JSON.stringify(values));
      form.append("header_file", file);
      request = () => postForm(this.url, form);
    } else {
      request = () => postJson(this.url, { type: "template", template: template.id, values, header_link: link });
    }
    const sent = await this.submit(request);
    if (sent) {
      for (const input of inputs) input.value = "";
      this.renderTemplatePreview();
      if (this.windowOpen()) this.showTemplates(false);
    }
  }
}

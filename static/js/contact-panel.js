// The contact panel beside the thread: the contact's name, phone and username, their other conversations the reader
// sees, the conversation's labels, and the notes this number's team keeps about them, live through
// contact.notes_changed (app.js hands its payload here). On a phone it is a third pane with a back control; on wide
// screens a side panel the reader toggles (remembered). Notes are staff text, still only ever set as textContent.
import { deleteJson, getJson, patchJson, postJson, putJson } from "./api.js";
import { STATUS_LABELS, contactName, element, listTimeLabel, showErrorIn } from "./format.js";
import { labelChips } from "./labels.js";

const REMEMBER = "inbox:contact-panel-open";
const PHONE = window.matchMedia("(max-width: 767.98px)");

export class ContactPanel {
  constructor({ inbox, panel, toggle, close, conversation, user, role }) {
    this.inbox = inbox;
    this.panel = panel;
    this.toggle = toggle;
    this.conversation = conversation;
    this.user = user;
    this.supervisor = role === "supervisor";
    this.notes = [];
    this.loaded = null;
    this.$ = (selector) => panel.querySelector(selector);
    this.showContact(conversation.contact);
    this.setLabels(conversation.labels || []);
    toggle.addEventListener("click", () => (this.isOpen() ? this.close() : this.open()));
    close.addEventListener("click", () => this.close());
    this.$("#contact-marketing-toggle").addEventListener("click", () => this.toggleMarketing());
    this.$("#contact-note-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.addNote();
    });
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.target.matches("textarea")) this.close();
    });
    if (!PHONE.matches && localStorage.getItem(REMEMBER) === "1") this.open({ focus: false });
  }

  isOpen() {
    return !this.panel.hidden;
  }

  open({ focus = true } = {}) {
    this.panel.hidden = false;
    this.inbox.dataset.contactOpen = "true";
    if (PHONE.matches) this.inbox.dataset.openPane = "contact";
    else localStorage.setItem(REMEMBER, "1");
    this.toggle.setAttribute("aria-expanded", "true");
    if (focus) this.$("#contact-panel-name").focus();
    if (!this.loaded) this.loaded = this.load();
  }

  close() {
    this.panel.hidden = true;
    delete this.inbox.dataset.contactOpen;
    if (this.inbox.dataset.openPane === "contact") this.inbox.dataset.openPane = "thread";
    if (!PHONE.matches) localStorage.removeItem(REMEMBER);
    this.toggle.setAttribute("aria-expanded", "false");
    this.toggle.focus();
  }

  async load() {
    try {
      const panel = await getJson(`/api/conversations/${this.conversation.id}/contact/`);
      this.showContact(panel.contact, panel.saved_as);
      this.showConversations(panel.conversations);
      this.setNotes(panel.notes);
      await this.loadMarketing();
    } catch {
      this.loaded = null;
      this.error("The contact could not be loaded. Try again.");
    }
  }

  showContact(contact, savedAs = "") {
    this.$("#contact-panel-name").textContent = contactName(contact);
    const facts = this.$("#contact-facts");
    facts.replaceChildren();
    const rows = [["Phone", contact.phone], ["Username", contact.username], ["Saved in the phone app as", savedAs]];
    for (const [term, value] of rows) {
      if (!value) continue;
      facts.append(element("dt", null, term), element("dd", null, value));
    }
  }

  showConversations(conversations) {
    const list = this.$("#contact-conversations");
    list.replaceChildren();
    for (const other of conversations) {
      const link = element("a", "contact-conversation-link");
      link.href = `/inbox/${other.id}/`;
      link.append(
        element("span", "contact-conversation-number", `+${other.number.display_phone_number}`),
        element("span", "status-badge", STATUS_LABELS[other.status] || other.status),
        element("span", "contact-conversation-time", listTimeLabel(other.last_message_at)),
      );
      link.querySelector(".status-badge").dataset.status = other.status;
      const item = element("li");
      item.append(link);
      list.append(item);
    }
    this.$("#contact-conversations-empty").hidden = conversations.length > 0;
  }

  setLabels(labels) {
    const root = this.$("#contact-labels");
    root.replaceChildren(labelChips(labels));
    this.$("#contact-labels-empty").hidden = labels.length > 0;
  }

  // A contact.notes_changed event: this number's notes about this contact, as they are now.
  notesChanged({ number_id: numberId, contact_id: contactId, notes }) {
    if (numberId !== this.conversation.number.id || contactId !== this.conversation.contact.id) return;
    this.setNotes(notes);
  }

  setNotes(notes) {
    // A note being edited here keeps its text box (the reader's draft), whatever arrives.
    const editing = this.$(".contact-note[data-editing]");
    const editingId = editing ? Number(editing.dataset.noteId) : null;
    this.notes = notes;
    this.$("#contact-notes").replaceChildren(...notes.map((note) => (note.id === editingId ? editing : this.renderNote(note))));
    this.$("#contact-notes-empty").hidden = notes.length > 0;
  }

  mayChange(note) {
    return this.supervisor || (note.author && note.author.id === this.user.id);
  }

  renderNote(note) {
    const item = element("li", "contact-note");
    item.dataset.noteId = String(note.id);
    item.append(element("p", "contact-note-body", note.body));
    const meta = element("p", "contact-note-meta");
    const edited = note.updated_at !== note.created_at ? " · edited" : "";
    meta.textContent = `${note.author ? note.author.name : "Someone"} · ${listTimeLabel(note.created_at)}${edited}`;
    item.append(meta);
    if (this.mayChange(note)) {
      const actions = element("div", "contact-note-actions");
      const edit = element("button", "link-button", "Edit");
      edit.type = "button";
      edit.setAttribute("aria-label", `Edit note: ${note.body.slice(0, 40)}`);
      edit.addEventListener("click", () => this.startEdit(item, note));
      const remove = element("button", "link-button", "Delete");
      remove.type = "button";
      remove.setAttribute("aria-label", `Delete note: ${note.body.slice(0, 40)}`);
      remove.addEventListener("click", () => this.deleteNote(note));
      actions.append(edit, remove);
      item.append(actions);
    }
    return item;
  }

  startEdit(item, note) {
    item.dataset.editing = "true";
    const input = element("textarea", "contact-note-input");
    input.value = note.body;
    input.maxLength = 4000;
    input.rows = 3;
    input.setAttribute("aria-label", "Note");
    const save = element("button", null, "Save");
    save.type = "button";
    const cancel = element("button", "link-button", "Cancel");
    cancel.type = "button";
    const done = () => {
      delete item.dataset.editing;
      this.setNotes(this.notes);
      this.$(`.contact-note[data-note-id="${note.id}"] button`)?.focus();
    };
    save.addEventListener("click", async () => {
      try {
        await patchJson(this.noteUrl(note), { body: input.value });
        this.notes = this.notes.map((n) => (n.id === note.id ? { ...n, body: input.value.trim() } : n));
        done();
      } catch (error) {
        this.error(error.detail || "The note could not be saved.");
      }
    });
    cancel.addEventListener("click", done);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        done();
      }
    });
    const actions = element("div", "contact-note-actions");
    actions.append(save, cancel);
    item.replaceChildren(input, actions);
    input.focus();
  }

  noteUrl(note) {
    return `/api/conversations/${this.conversation.id}/contact/notes/${note.id}/`;
  }

  async addNote() {
    const input = this.$("#contact-note-input");
    if (!input.value.trim()) return;
    try {
      const note = await postJson(`/api/conversations/${this.conversation.id}/contact/notes/`, { body: input.value });
      input.value = "";
      this.error(null);
      if (!this.notes.some((n) => n.id === note.id)) this.setNotes([...this.notes, note]);
    } catch (error) {
      this.error(error.detail || "The note could not be saved.");
    }
  }

  async deleteNote(note) {
    try {
      await deleteJson(this.noteUrl(note));
      this.setNotes(this.notes.filter((n) => n.id !== note.id));
      this.$("#contact-note-input").focus();
    } catch (error) {
      this.error(error.detail || "The note could not be deleted.");
    }
  }

  // The customer's marketing choice on this number, from Meta or marked by staff (who and when).
  async loadMarketing() {
    this.showMarketing(await getJson(this.marketingUrl()));
  }

  marketingUrl() {
    return `/api/conversations/${this.conversation.id}/marketing/`;
  }

  showMarketing(preference) {
    this.marketing = preference;
    const said = preference.opted_out === null
      ? "No choice known: marketing may be sent."
      : `${preference.opted_out ? "Stopped marketing" : "Receives marketing"}, ${
        preference.source === "staff" ? `marked by ${preference.changed_by ? preference.changed_by.name : "staff"}` : "said on WhatsApp"
      } ${listTimeLabel(preference.changed_at)}.`;
    this.$("#contact-marketing").textContent = said;
    const toggle = this.$("#contact-marketing-toggle");
    toggle.textContent = preference.opted_out ? "Mark as resumed marketing" : "Mark as stopped marketing";
    toggle.hidden = false;
  }

  async toggleMarketing() {
    try {
      this.showMarketing(await putJson(this.marketingUrl(), { opted_out: !this.marketing?.opted_out }));
      this.error(null);
    } catch (error) {
      this.error(error.detail || "The marketing choice could not be saved.");
    }
  }

  // A contact.marketing_changed event: read it again (it carries no who) when it is this contact's on this number.
  marketingChanged({ number_id: numberId, contact_id: contactId }) {
    if (numberId !== this.conversation.number.id || contactId !== this.conversation.contact.id || !this.loaded) return;
    this.loadMarketing().catch(() => {});
  }

  error(text) {
    showErrorIn(this.$("#contact-note-error"), text);
  }
}

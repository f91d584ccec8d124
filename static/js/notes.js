// Private notes in the thread: the team's words beside the customer's messages, never sent to WhatsApp. Drawn
// apart from messages (their own style, labelled "Private note"); "@username" of a member the server resolved is
// marked as a mention. And the composer's mention picker: in note mode, "@" offers the number's members.
import { getJson } from "./api.js";
import { appendLinkified, element, timeLabel } from "./format.js";
import { SuggestionMenu } from "./suggestion-menu.js";

// As services/notes.py reads mentions: "@" not inside a word or an e-mail address, then a username.
const MENTION = /(^|[^\w@.+-])@([\w.@+-]+)/g;
const TRAILING = /[.,;:!?-]+$/;
// What is being typed just before the caret: "@" and the start of a name.
const TYPING_MENTION = /(?:^|\s)@([\w.+-]*)$/;

function appendMentions(parent, text, usernames) {
  let last = 0;
  for (const match of text.matchAll(MENTION)) {
    const start = match.index + match[1].length;
    let name = match[2];
    if (!usernames.has(name.toLowerCase())) name = name.replace(TRAILING, "");
    if (!usernames.has(name.toLowerCase())) continue;
    appendLinkified(parent, text.slice(last, start));
    parent.append(element("span", "mention", `@${name}`));
    last = start + 1 + name.length;
  }
  appendLinkified(parent, text.slice(last));
}

export function renderNote(note) {
  const item = element("li", "thread-note");
  item.id = `note-${note.id}`;
  item.dataset.noteId = String(note.id);
  // Focused when a notification opens the conversation at it.
  item.tabIndex = -1;
  const meta = element("p", "note-meta");
  const time = element("time", "note-time", timeLabel(note.created_at));
  time.dateTime = note.created_at;
  meta.append(
    element("span", "note-label", "Private note"),
    element("span", "note-author", note.author ? note.author.name : "A former member"),
    time,
  );
  const body = element("p", "note-body");
  appendMentions(body, note.body, new Set(note.mentions.map((m) => m.username.toLowerCase())));
  item.append(meta, body);
  return item;
}

// "@" in a note offers the members of the conversation's number, filtered by what follows (a SuggestionMenu);
// picking one inserts "@username ".
export class MentionPicker extends SuggestionMenu {
  constructor({ root, input, menu, conversationId, enabled }) {
    super({ root, input, menu, optionPrefix: "mention-option" });
    this.enabled = enabled;
    this.url = `/api/conversations/${conversationId}/mentionable/`;
    this.members = null;
  }

  typed() {
    if (!this.enabled()) return null;
    const match = TYPING_MENTION.exec(this.input.value.slice(0, this.input.selectionStart));
    return match ? match[1].toLowerCase() : null;
  }

  async update() {
    if (this.typed() === null) {
      this.close();
      return;
    }
    try {
      this.members ??= (await getJson(this.url)).results;
    } catch {
      return; // tried again on the next key
    }
    const typed = this.typed();
    if (typed === null) return;
    const starts = (text) => text.toLowerCase().startsWith(typed);
    this.show(this.members.filter((member) => starts(member.username) || starts(member.name)));
  }

  optionParts(member) {
    return [`@${member.username}`, member.name];
  }

  // "@username " takes the place of what was typed after "@".
  pick(index) {
    const member = this.shown[index];
    if (!member) return;
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, caret).replace(/@[\w.+-]*$/, `@${member.username} `);
    this.insert(before + this.input.value.slice(caret), before.length);
  }
}

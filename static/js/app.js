// The inbox page's entry point: reads the data the server rendered into the page and wires the list,
// the open thread, typing, notifications and the socket that keeps them live.
import { getJson, postJson } from "./api.js";
import { ConversationList } from "./conversation-list.js";
import { EVENTS } from "./events.js";
import { CannedReplies } from "./canned-replies.js";
import { Composer } from "./composer.js";
import { ContactPanel } from "./contact-panel.js";
import { ThreadLabels } from "./labels.js";
import { MessageHits } from "./message-hits.js";
import { NumberAlerts } from "./number-alerts.js";
import { Notifier } from "./notifications.js";
import { NotificationPanel } from "./notification-panel.js";
import { MentionPicker } from "./notes.js";
import { Shortcuts } from "./keyboard.js";
import { contactName } from "./format.js";
import { InboxSocket, showsConnectionIn } from "./socket.js";
import { Thread } from "./thread.js";
import { Typing } from "./typing.js";
import { ViewCounts } from "./view-counts.js";
import { fitToVisibleViewport } from "./viewport.js";
import { WorkflowControls } from "./workflow.js";

fitToVisibleViewport();

const data = JSON.parse(document.getElementById("inbox-data").textContent);
const openId = data.conversation ? data.conversation.id : null;

const list = new ConversationList({
  root: document.getElementById("conversation-list"),
  empty: document.getElementById("conversation-list-empty"),
  conversations: data.conversations,
  filters: data.filters,
  openId,
  numbers: data.numbers,
  nextCursor: data.nextCursor,
  unreadTotal: data.unreadTotal,
  sentinel: document.getElementById("conversation-list-end"),
  userId: data.user.id,
});
const numberAlerts = new NumberAlerts({ root: document.getElementById("number-alerts"), alerts: data.alerts });
const viewCounts = new ViewCounts({ root: document.getElementById("view-tabs"), filters: data.filters, counts: data.viewCounts });

let thread = null;
let composer = null;
let threadLabels = null;
let workflow = null;
if (data.conversation) {
  workflow = new WorkflowControls({
    root: document.getElementById("workflow"),
    conversation: data.conversation,
    user: data.user,
    role: data.role,
    onChange: (conversation) => {
      list.upsert(conversation);
      viewCounts.refresh();
    },
  });
  composer = new Composer({
    conversation: data.conversation,
    root: document.getElementById("composer"),
    onNote: (note) => thread.addNotes([note]),
  });
  new MentionPicker({
    root: document.getElementById("composer"),
    input: document.getElementById("composer-input"),
    menu: document.getElementById("mention-menu"),
    conversationId: data.conversation.id,
    enabled: () => composer.noteMode,
  });
  new CannedReplies({
    root: document.getElementById("composer"),
    input: document.getElementById("composer-input"),
    menu: document.getElementById("canned-menu"),
    conversationId: data.conversation.id,
  });
  threadLabels = new ThreadLabels({
    root: document.getElementById("thread-labels"),
    conversation: data.conversation,
    numberLabels: data.labels,
    onChange: (conversation) => list.setLabels(conversation.id, conversation.labels),
  });
  const contact = data.conversation.contact;
  document.getElementById("thread-title").textContent = contactName(contact);
  document.getElementById("thread-subtitle").textContent =
    [contact.phone, contact.username, data.conversation.number.display_phone_number && `via +${data.conversation.number.display_phone_number}`]
      .filter(Boolean).join(" · ");
  thread = new Thread({
    conversation: data.conversation,
    messages: data.messages,
    activities: data.activities,
    hasMore: data.hasMore,
    hasNewer: data.hasNewer,
    focusId: data.focusMessageId,
    root: document.getElementById("thread"),
    list: document.getElementById("messages"),
    sentinel: document.getElementById("history-sentinel"),
    newerSentinel: document.getElementById("newer-sentinel"),
    pill: document.getElementById("new-messages-pill"),
    actions: {
      onReply: (message) => composer.setReply(message),
      onReact: (message, emoji) => composer.react(message, emoji),
    },
  });
}

const contactPanel = data.conversation
  ? new ContactPanel({
    inbox: document.getElementById("inbox"),
    panel: document.getElementById("contact-panel"),
    toggle: document.getElementById("contact-toggle"),
    close: document.getElementById("contact-panel-close"),
    conversation: data.conversation,
    user: data.user,
    role: data.role,
  })
  : null;
new MessageHits({
  root: document.getElementById("message-hits"),
  list: document.getElementById("message-hit-list"),
  empty: document.getElementById("message-hits-empty"),
  more: document.getElementById("more-message-hits"),
  hits: data.messageHits,
  next: data.messageHitsNext,
  filters: data.filters,
  focusId: data.focusMessageId,
});

const notifier = new Notifier({ button: document.getElementById("enable-notifications") });
const notificationPanel = new NotificationPanel({
  button: document.getElementById("notifications-button"),
  count: document.getElementById("notification-count"),
  panel: document.getElementById("notification-panel"),
  list: document.getElementById("notification-list"),
  empty: document.getElementById("notification-empty"),
  markAll: document.getElementById("mark-all-read"),
  notifier,
});
notificationPanel.load().catch(() => {});

// The thread's private notes, then the one a notification points at (#note-<id>), in view.
function showLinkedNote() {
  const linked = /^#note-(\d+)$/.exec(window.location.hash);
  if (linked && thread) thread.showNote(linked[1]);
}
if (thread) {
  getJson(`/api/conversations/${openId}/notes/?page_size=500`)
    .then(({ results }) => {
      thread.addNotes(results);
      showLinkedNote();
    })
    .catch(() => {});
}
window.addEventListener("hashchange", showLinkedNote);
const connection = document.getElementById("connection-state");

let pendingRead = false;
function markOpenConversationRead() {
  if (!openId) return;
  if (document.hidden) {
    pendingRead = true;
    return;
  }
  pendingRead = false;
  postJson(`/api/conversations/${openId}/read/`)
    .then(({ last_read_message_id: lastRead }) => list.markRead(openId, lastRead))
    .catch(() => { pendingRead = true; });
}
document.addEventListener("visibilitychange", () => { if (!document.hidden && pendingRead) markOpenConversationRead(); });
// Opening the page reads nothing by itself (a GET changes no state): the page marks what it shows as read.
markOpenConversationRead();

const handlers = {
  // The conversation comes as it is after the message: applied as a conversation.updated would be.
  [EVENTS.MESSAGE_CREATED]({ message, conversation }) {
    // A new conversation joins the counts (a reopening one comes with its conversation.activity).
    if (!list.byId.has(conversation.id)) viewCounts.refresh();
    list.upsert(conversation);
    const isOpen = conversation.id === openId;
    if (isOpen && composer) composer.setLastInbound(conversation.last_inbound_at);
    if (isOpen && thread) thread.add(message);
    const readNow = isOpen && !document.hidden;
    const fresh = list.noteMessage(conversation.id, message.id, { unread: message.direction === "in" && !readNow });
    if (message.direction !== "in" || !fresh) return;
    if (isOpen) markOpenConversationRead();
    notifier.notify({
      conversationId: conversation.id,
      title: contactName(conversation.contact, "New message"),
      body: message.preview,
      openConversationId: document.hidden ? null : openId,
    });
  },
  // A status or assignee changed: the row may move between views, and the thread shows the line.
  [EVENTS.CONVERSATION_ACTIVITY]({ activity, conversation }) {
    list.upsert(conversation);
    viewCounts.refresh();
    if (conversation.id !== openId) return;
    if (workflow) workflow.show(conversation);
    if (thread) thread.addActivity(activity);
  },
  [EVENTS.CONVERSATION_UPDATED]({ conversation }) {
    list.upsert(conversation);
    if (composer && conversation.id === openId) composer.setLastInbound(conversation.last_inbound_at);
  },
  [EVENTS.MESSAGE_UPDATED]({ message }) {
    if (thread && message.conversation_id === openId) thread.replace(message);
  },
  [EVENTS.MESSAGE_STATUS_CHANGED](payload) {
    if (thread && payload.conversation_id === openId) thread.setStatus(payload);
  },
  [EVENTS.MESSAGE_REACTIONS_CHANGED](payload) {
    if (thread && payload.conversation_id === openId) thread.setReactions(payload);
  },
  [EVENTS.CONVERSATION_MERGED]({ conversation_id: goneId, into }) {
    // The open conversation went into another, or took in another's messages: show the one that holds them
    // (the draft goes along); the page that loads counts afresh. Otherwise only the list changes.
    if (goneId === openId) {
      if (composer) composer.moveDraftTo(into.id);
      window.location.assign(`/inbox/${into.id}/${window.location.search}`);
    } else if (into.id === openId) {
      window.location.reload();
    } else {
      list.merge(goneId, into);
    }
    viewCounts.refresh();
  },
  [EVENTS.CONVERSATION_LABELS_CHANGED]({ conversation_id: conversationId, labels }) {
    list.setLabels(conversationId, labels);
    if (threadLabels && conversationId === openId) threadLabels.set(labels);
    if (contactPanel && conversationId === openId) contactPanel.setLabels(labels);
  },
  [EVENTS.CONVERSATION_READ]({ conversation_id: conversationId, last_read_message_id: lastRead }) {
    list.markRead(conversationId, lastRead);
  },
  [EVENTS.CONVERSATION_NOTE_CREATED]({ note }) {
    if (thread && note.conversation_id === openId) thread.addNotes([note]);
  },
  [EVENTS.NOTIFICATION_CREATED](payload) {
    notificationPanel.add(payload);
  },
  [EVENTS.NUMBER_ALERTS_CHANGED]({ number_id: numberId, alerts }) {
    numberAlerts.set(numberId, alerts);
  },
  [EVENTS.TEMPLATE_UPDATED]() {
    if (composer) composer.templatesChanged();
  },
  [EVENTS.NOTIFICATIONS_READ](payload) {
    notificationPanel.markRead(payload);
  },
  [EVENTS.CONTACT_NOTES_CHANGED](payload) {
    if (contactPanel) contactPanel.notesChanged(payload);
  },
  [EVENTS.CONTACT_MARKETING_CHANGED](payload) {
    if (contactPanel) contactPanel.marketingChanged(payload);
  },
  [EVENTS.TYPING](payload) {
    if (typing) typing.show(payload);
  },
};

const socket = new InboxSocket({
  lastEventId: data.lastEventId,
  onEvent: (event) => {
    const handle = handlers[event.type];
    if (handle) handle(event.payload);
  },
  onStateChange: showsConnectionIn(connection),
});

const typing = openId
  ? new Typing({
    conversationId: openId,
    input: document.getElementById("composer-input"),
    indicator: document.getElementById("typing-indicator"),
    send: (message) => socket.send(message),
  })
  : null;

for (const select of document.querySelectorAll("#filters select")) {
  select.addEventListener("change", () => select.form.submit());
}

// The inbox from the keyboard: j/k anywhere outside a text field (the arrows inside the list) move between
// conversations, Enter opens the focused one, r goes to the composer, Escape leaves it for the list.
const listRoot = document.getElementById("conversation-list");
const shortcuts = new Shortcuts()
  .on("ArrowDown", () => list.moveFocus(1), { within: listRoot, label: "Next conversation (in the list)" })
  .on("ArrowUp", () => list.moveFocus(-1), { within: listRoot, label: "Previous conversation (in the list)" })
  .on("j", () => list.moveFocus(1), { label: "Next conversation" })
  .on("k", () => list.moveFocus(-1), { label: "Previous conversation" })
  .note("Enter", "Open the focused conversation");
if (composer) {
  const composerRoot = document.getElementById("composer");
  shortcuts
    .on("r", () => composer.focus(), { label: "Write a reply" })
    .on("n", () => composer.setNoteMode(!composer.noteMode), { label: "Switch between a reply and a private note" })
    .note(["Enter", "Ctrl+Enter"], "Send (Shift+Enter: a new line)")
    .on("Escape", () => list.focusCurrent(), { within: composerRoot, inFields: true, label: "Leave the composer for the list" });
}
if (thread) {
  const threadRoot = document.getElementById("thread");
  shortcuts
    .on("ArrowDown", () => thread.moveFocus(1), { within: threadRoot, label: "Next message, to reply or react (in the thread)" })
    .on("ArrowUp", () => thread.moveFocus(-1), { within: threadRoot, label: "Previous message (in the thread)" });
}
if (workflow) {
  shortcuts
    .on("e", () => workflow.setStatus("resolved"), { label: "Resolve the conversation" })
    .on("p", () => workflow.setStatus("pending"), { label: "Mark it pending (waiting on the customer)" })
    .on("o", () => workflow.setStatus("open"), { label: "Reopen it" })
    .on("z", () => workflow.focusSnooze(), { label: "Snooze it" })
    .on("t", () => workflow.take(), { label: "Take it" })
    .on("h", () => workflow.handBack(), { label: "Hand it back" })
    .on("a", () => workflow.focusAssignee(), { label: "Go to its assignee" });
}
if (contactPanel) {
  shortcuts.on("i", () => (contactPanel.isOpen() ? contactPanel.close() : contactPanel.open()), { label: "Show or hide the contact panel" });
}
shortcuts.attachDialog({
  dialog: document.getElementById("shortcuts"),
  list: document.getElementById("shortcut-list"),
  toggle: document.getElementById("character-shortcuts"),
  opener: document.getElementById("show-shortcuts"),
  refocus: () => list.focusCurrent(),
});

socket.connect();

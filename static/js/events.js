// The realtime event names, mirroring realtime/events.py (a test keeps the two in step).
export const EVENTS = Object.freeze({
  MESSAGE_CREATED: "message.created",
  MESSAGE_STATUS_CHANGED: "message.status_changed",
  MESSAGE_REACTIONS_CHANGED: "message.reactions_changed",
  MESSAGE_UPDATED: "message.updated",
  CONVERSATION_UPDATED: "conversation.updated",
  CONVERSATION_MERGED: "conversation.merged",
  CONVERSATION_READ: "conversation.read",
  CONVERSATION_ACTIVITY: "conversation.activity",
  CONVERSATION_LABELS_CHANGED: "conversation.labels_changed",
  CONVERSATION_NOTE_CREATED: "conversation.note_created",
  NOTIFICATION_CREATED: "notification.created",
  NOTIFICATIONS_READ: "notification.read",
  CONTACT_NOTES_CHANGED: "contact.notes_changed",
  TYPING: "conversation.typing",
  RELOAD: "reload",
});

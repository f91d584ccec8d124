"""The catalogue of realtime events: names and payload shapes, defined once.

The browser's ES modules read the same names (``static/js/events.js`` mirrors ``EVENT_TYPES``; a test
keeps the two in step). Each event goes to the group of one business number, carries the id of its row
in the event log (the resume point for a reconnecting client) and a payload snapshot built once, so
consumers never query the database per event.
"""

from typing import TypedDict

MESSAGE_CREATED = "message.created"
MESSAGE_STATUS_CHANGED = "message.status_changed"
MESSAGE_REACTIONS_CHANGED = "message.reactions_changed"
# A message's media became available (or failed for good).
MESSAGE_UPDATED = "message.updated"
CONVERSATION_UPDATED = "conversation.updated"
# Two contacts were merged and their conversations on a number became one: the first is gone, its messages
# (and unread ones) are in the second now.
CONVERSATION_MERGED = "conversation.merged"
# Only to the staff member who read it: syncs their other tabs.
CONVERSATION_READ = "conversation.read"
# A conversation's status or assignee changed (an activity line for the thread): carries the conversation as it
# is now, which clients apply as a conversation.updated (none follows).
CONVERSATION_ACTIVITY = "conversation.activity"
# Labels were set on or taken off a conversation: its labels as they are now (a conversation.activity says who).
CONVERSATION_LABELS_CHANGED = "conversation.labels_changed"
# A member wrote a private note in a conversation's thread (the team's only: never sent to the customer).
CONVERSATION_NOTE_CREATED = "conversation.note_created"
# Only to its recipient (logged with their user id): a notification for them, e.g. a mention in a note.
NOTIFICATION_CREATED = "notification.created"
# Only to their recipient: notifications were read (in one tab, so the others follow).
NOTIFICATIONS_READ = "notification.read"

# A note about a contact was written, edited or deleted: the number's notes about that contact as they are now.
CONTACT_NOTES_CHANGED = "contact.notes_changed"

# What Meta says about a number or its account changed (quality, messaging limit, name review, restrictions):
# the number as it is now. Account-wide news goes to every number of the account.
NUMBER_UPDATED = "number.updated"
# A message template's status, quality or category changed: to every number of its account.
TEMPLATE_UPDATED = "template.updated"
# A number's alerts changed (one raised or ended, services/number_alerts.py): its open alerts as they are now.
NUMBER_ALERTS_CHANGED = "number.alerts_changed"
# A customer stopped or resumed marketing messages from the number.
CONTACT_MARKETING_CHANGED = "contact.marketing_changed"

EVENT_TYPES = (
    MESSAGE_CREATED,
    MESSAGE_STATUS_CHANGED,
    MESSAGE_REACTIONS_CHANGED,
    MESSAGE_UPDATED,
    CONVERSATION_UPDATED,
    CONVERSATION_MERGED,
    CONVERSATION_READ,
    CONVERSATION_ACTIVITY,
    CONVERSATION_LABELS_CHANGED,
    CONVERSATION_NOTE_CREATED,
    NOTIFICATION_CREATED,
    NOTIFICATIONS_READ,
    CONTACT_NOTES_CHANGED,
    NUMBER_UPDATED,
    TEMPLATE_UPDATED,
    NUMBER_ALERTS_CHANGED,
    CONTACT_MARKETING_CHANGED,
)

# Ephemeral, never logged nor replayed: a colleague typing in a conversation.
TYPING = "conversation.typing"
# Sent by the server when a reconnecting client is too far behind to catch up event by event.
RELOAD = "reload"

# The channel-layer message type that carries a list of the events above to consumers, in order
# (Channels dispatches it to the consumer method ``inbox_event``, which sends one frame per event).
GROUP_MESSAGE_TYPE = "inbox.event"
# The channel-layer message type for typing (consumer method ``inbox_typing``).
GROUP_TYPING_TYPE = "inbox.typing"
# The channel-layer message type telling one user's sockets that what the user may see changed (a membership,
# superuser status, deactivation): consumer method ``inbox_access_changed`` reads it again, leaves and joins
# number groups, and sends ``reload`` (or closes the socket of a deactivated user).
GROUP_ACCESS_CHANGED_TYPE = "inbox.access_changed"


# "from" (the wa_id or BSUID of whoever reacted) is a Python keyword, hence the functional form.
ReactionPayload = TypedDict("ReactionPayload", {"emoji": str, "from": str})


class PersonPayload(TypedDict):
    """A staff member: the sender of a reply, an assignee, who changed a conversation."""

    id: int
    name: str


class MessagePayload(TypedDict):
    id: int
    conversation_id: int
    wamid: str | None
    direction: str
    type: str
    text: str
    body: str
    preview: str
    content: dict
    timestamp: str
    status: str
    error: dict | None
    reply_to: str | None
    reactions: list[ReactionPayload]
    media: dict | None
    sent_by: PersonPayload | None


class LabelPayload(TypedDict):
    id: int
    name: str
    colour: str  # one of conversations.models.LabelColour


class ConversationPayload(TypedDict):
    id: int
    number_id: int
    contact: dict
    last_message_at: str
    last_message: str
    last_message_direction: str
    last_inbound_at: str | None
    status: str  # open, pending, snoozed, resolved
    snoozed_until: str | None
    assignee: PersonPayload | None
    labels: list[LabelPayload]


class ActivityPayload(TypedDict):
    id: int
    conversation_id: int
    kind: str  # status, assignment, label
    actor: PersonPayload | None  # null: the customer's message or the system
    details: dict
    text: str
    created_at: str


class ConversationLabelsChanged(TypedDict):
    conversation_id: int
    labels: list[LabelPayload]


class MentionPayload(TypedDict):
    id: int
    name: str
    username: str  # what follows the "@" in the note's text


class NotePayload(TypedDict):
    id: int
    conversation_id: int
    author: PersonPayload | None
    body: str
    mentions: list[MentionPayload]
    created_at: str


class ConversationNoteCreated(TypedDict):
    note: NotePayload


class NotificationPayload(TypedDict):
    id: int
    kind: str  # one of conversations.models.NotificationKind
    conversation_id: int | None  # None for a number alert's
    number_id: int
    note_id: int | None
    actor: PersonPayload | None
    title: str  # "Ana mentioned you"
    text: str  # the note's words, shortened
    contact_name: str
    url: str  # the conversation, at the note
    created_at: str
    read_at: str | None


class NotificationCreated(TypedDict):
    notification: NotificationPayload
    unread_count: int  # the recipient's, after this one


class NotificationsRead(TypedDict):
    ids: list[int]
    unread_count: int


class ConversationActivity(TypedDict):
    activity: ActivityPayload
    conversation: ConversationPayload


class MessageCreated(TypedDict):
    message: MessagePayload
    # The conversation as it is after this message (after every message of the same batch): clients apply
    # it as a conversation.updated, and none follows a message.created.
    conversation: ConversationPayload


class MessageStatusChanged(TypedDict):
    message_id: int
    conversation_id: int
    wamid: str
    status: str
    error: dict | None


class MessageReactionsChanged(TypedDict):
    conversation_id: int
    wamid: str
    message_id: int | None
    reactions: list


class ConversationUpdated(TypedDict):
    conversation: ConversationPayload


class ConversationMerged(TypedDict):
    conversation_id: int  # the one that is gone
    into: ConversationPayload


class ConversationRead(TypedDict):
    conversation_id: int
    last_read_message_id: int


class Typing(TypedDict):
    conversation_id: int
    user_id: int
    name: str


class ContactNotePayload(TypedDict):
    id: int
    contact_id: int
    author: PersonPayload | None
    body: str
    created_at: str
    updated_at: str


class ContactNotesChanged(TypedDict):
    number_id: int
    contact_id: int
    notes: list[ContactNotePayload]  # oldest first


class AccountPayload(TypedDict):
    """What holds for every number of a WhatsApp Business Account."""

    waba_id: str
    status_event: str
    restrictions: list[dict]  # [{"type", "expires_at"}]
    violation_type: str
    ban_state: str
    ban_date: str
    messaging_limit: str  # the portfolio's: TIER_2K ... TIER_UNLIMITED
    max_phone_numbers: int | None
    last_alert: dict
    review_decision: str  # Meta's review of the account: APPROVED, REJECTED, PENDING, DEFERRED, ...


class NumberPayload(TypedDict):
    id: int
    quality_rating: str
    quality_event: str
    messaging_limit_tier: str
    throughput_level: str
    meta_status: str
    name_status: str
    requested_name: str
    verified_name: str
    name_rejection_reason: str
    account: AccountPayload | None


class NumberUpdated(TypedDict):
    number: NumberPayload


class TemplatePayload(TypedDict):
    id: int
    name: str
    language: str
    status: str
    status_reason: str
    status_detail: str
    category: str
    pending_category: str
    category_switches_at: str | None
    quality_score: str


class TemplateUpdated(TypedDict):
    template: TemplatePayload


class ContactMarketingChanged(TypedDict):
    number_id: int
    contact_id: int
    opted_out: bool
    changed_at: str


class Envelope(TypedDict):
    """What a socket client receives for every event."""

    id: int
    type: str
    number_id: int
    payload: dict

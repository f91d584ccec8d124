"""What a message, a conversation and a contact look like to clients: the REST API and realtime events
share these shapes, so a message fetched over HTTP and one pushed over the socket are the same object."""

from collections.abc import Iterable
from datetime import datetime

from django.urls import reverse
from django.utils import timezone

from contacts.models import Contact
from conversations.alerts import alert_words
from conversations.models import (
    ActivityKind,
    BusinessAccount,
    BusinessNumber,
    Conversation,
    ConversationActivity,
    ConversationStatus,
    MediaFile,
    MediaState,
    Message,
    MessageTemplate,
    Notification,
    NotificationKind,
    Reaction,
)
from realtime.events import (
    AccountPayload,
    ActivityPayload,
    ContactNotePayload,
    ConversationPayload,
    LabelPayload,
    MentionPayload,
    MessagePayload,
    NotePayload,
    NotificationPayload,
    NumberPayload,
    PersonPayload,
    ReactionPayload,
    TemplatePayload,
)


def person_snapshot(user) -> PersonPayload | None:
    """A staff member as clients show them: their full name, else their username."""
    if user is None:
        return None
    return {"id": user.pk, "name": user.get_full_name() or user.get_username()}


def contact_snapshot(contact: Contact) -> dict:
    return {
        "id": contact.pk,
        "name": contact.display_name,
        "wa_id": contact.wa_id,
        "user_id": contact.user_id,
        "username": contact.username or None,
        "phone": contact.phone,
    }


def number_snapshot(number) -> dict:
    return {
        "id": number.pk,
        "phone_number_id": number.phone_number_id,
        "display_phone_number": number.display_phone_number,
    }


def conversation_snapshot(conversation: Conversation, *, labels: list[LabelPayload]) -> ConversationPayload:
    """Needs ``contact`` and ``assignee`` loaded (select_related) to stay query-free; ``labels`` from
    ``selectors.labels_by_conversation``. The labels come along so that a row first seen in an event shows them,
    and a list filtered by a label keeps the conversations that have it."""
    return {
        "id": conversation.pk,
        "number_id": conversation.number_id,
        "contact": contact_snapshot(conversation.contact),
        **conversation_summary(conversation),
        **conversation_state(conversation),
        "labels": labels,
    }


def conversation_state(conversation: Conversation) -> dict:
    """Where the conversation stands in the team's work: its status and who has it. Needs ``assignee`` loaded."""
    return {
        "status": conversation.status,
        "snoozed_until": conversation.snoozed_until.isoformat() if conversation.snoozed_until else None,
        "assignee": person_snapshot(conversation.assignee) if conversation.assignee_id else None,
    }


def conversation_summary(conversation: Conversation) -> dict:
    """The conversation's last message as its row in the list shows it (``Conversation.note_message``)."""
    return {
        "last_message_at": conversation.last_message_at.isoformat(),
        "last_message": conversation.last_message_preview,
        "last_message_direction": conversation.last_message_direction,
        "last_inbound_at": conversation.last_inbound_at.isoformat() if conversation.last_inbound_at else None,
    }


def reaction_snapshots(reactions: Iterable[Reaction]) -> list[ReactionPayload]:
    """Needs ``contact`` loaded; removed reactions (empty emoji) are not shown; the business's own
    reaction is ``from: "business"``."""
    return [
        {"emoji": r.emoji, "from": (r.contact.wa_id or r.contact.user_id or "") if r.contact else "business"}
        for r in sorted(reactions, key=lambda r: r.reacted_at)
        if r.emoji
    ]


def message_snapshot(message: Message, reactions: Iterable[Reaction] = ()) -> MessagePayload:
    if "revoked" in message.content:
        return _revoked_snapshot(message, reactions)
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "wamid": message.wamid,
        "direction": message.direction,
        "type": message.type,
        "text": message.body or message.preview,
        "body": message.body,
        "preview": message.preview,
        "content": message.content,
        "timestamp": message.timestamp.isoformat(),
        "status": message.status,
        "error": {"code": message.error_code, "title": message.error_title}
        if message.error_code is not None or message.error_title
        else None,
        "reply_to": message.reply_to_wamid or None,
        "reactions": reaction_snapshots(reactions),
        "media": media_snapshot(message),
        # Who sent a reply (needs ``sent_by`` loaded); null for the customer's messages and Meta's echoes.
        "sent_by": person_snapshot(message.sent_by) if message.sent_by_id else None,
    }


REVOKED_TEXT = "This message was deleted"


def _revoked_snapshot(message: Message, reactions: Iterable[Reaction]) -> MessagePayload:
    """A message deleted for everyone (Coexistence, docs/meta.md §3.7): its words and media stay in the database
    for the audit trail, out of every page and event (the sender took them back from the chat)."""
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "wamid": message.wamid,
        "direction": message.direction,
        "type": message.type,
        "text": REVOKED_TEXT,
        "body": "",
        "preview": REVOKED_TEXT,
        "content": {"revoked": message.content["revoked"]},
        "timestamp": message.timestamp.isoformat(),
        "status": message.status,
        "error": None,
        "reply_to": message.reply_to_wamid or None,
        "reactions": reaction_snapshots(reactions),
        "media": None,
        "sent_by": person_snapshot(message.sent_by) if message.sent_by_id else None,
    }


def media_snapshot(message: Message) -> dict | None:
    """Where staff fetch the file (an authorised view, never a public URL) and its state.
    Needs ``media`` loaded (select_related) to stay query-free."""
    try:
        media = message.media
    except MediaFile.DoesNotExist:
        return None
    return {
        "state": media.state,
        "url": reverse("media_file", args=[message.pk]) if media.state == MediaState.READY else None,
        "mime_type": media.mime_type,
        "filename": media.filename,
        "size": media.size,
        "error": media.error or None,
    }


_STATUS_DONE = {
    ConversationStatus.OPEN: "Reopened",
    ConversationStatus.PENDING: "Marked pending",
    ConversationStatus.RESOLVED: "Resolved",
}


def activity_snapshot(activity: ConversationActivity) -> ActivityPayload:
    """One activity line of the thread. Needs ``actor`` loaded (select_related) to stay query-free."""
    return {
        "id": activity.pk,
        "conversation_id": activity.conversation_id,
        "kind": activity.kind,
        "actor": person_snapshot(activity.actor) if activity.actor_id else None,
        "details": activity.details,
        "text": activity_text(activity),
        "created_at": activity.created_at.isoformat(),
    }


def label_snapshot(label) -> dict:
    return {"id": label.pk, "name": label.name, "colour": label.colour}


def conversation_labels(conversation: Conversation) -> list[dict]:
    """The conversation's labels by name; needs ``label_links`` prefetched with their labels
    (``selectors.labelled``) to stay query-free."""
    return sorted((label_snapshot(link.label) for link in conversation.label_links.all()), key=label_order)


def label_order(label: LabelPayload) -> str:
    """Labels read by name, whatever its case."""
    return label["name"].lower()


def _label_text(details: dict, *, actor: str | None) -> str:
    by = actor or "The system"
    if "added" in details:
        return f"{by} added the label {details['added']['name']}"
    return f"{by} removed the label {details['removed']['name']}"


# How an assignment line reads, by its reason; any other reason (an assignment by someone) reads as such.
_ASSIGNMENT_TEXTS = {
    "took": "{actor} took this",
    "handed_back": "{actor} handed this back",
    "replied": "Assigned to {assignee} on their reply",
    "auto": "Assigned to {assignee} automatically",
    "resolved": "Unassigned from {previous} on resolving",
    "left": "Unassigned from {previous}: no longer a member",
    "deactivated": "Unassigned from {previous}: account deactivated",
}


def _assignment_text(details: dict, *, actor: str | None) -> str:
    assignee = (details.get("assignee") or {}).get("name")
    previous = (details.get("previous") or {}).get("name")
    text = _ASSIGNMENT_TEXTS.get(details.get("reason"))
    if text:
        return text.format(actor=actor, assignee=assignee, previous=previous)
    by = actor or "The system"
    return f"{by} assigned this to {assignee}" if assignee else f"{by} unassigned {previous}"


def activity_text(activity: ConversationActivity) -> str:
    """The line a person reads: "Ana assigned this to Ben", "Resolved by Ana", "Reopened by the customer's
    message", "Snoozed until Tue 09:00 by Ana" (times in the server's time zone; pages may format
    ``details`` in the reader's own)."""
    details = activity.details
    actor = person_snapshot(activity.actor)["name"] if activity.actor_id else None
    if activity.kind == ActivityKind.ASSIGNMENT:
        return _assignment_text(details, actor=actor)
    if activity.kind == ActivityKind.LABEL:
        return _label_text(details, actor=actor)
    to = details.get("to")
    if details.get("reason") == "customer_message":
        return "Reopened by the customer's message"
    if details.get("reason") == "snooze_ended":
        return "Reopened: the snooze ended"
    by = f" by {actor}" if actor else ""
    if to == ConversationStatus.SNOOZED:
        until = timezone.localtime(datetime.fromisoformat(details["snoozed_until"]))
        return f"Snoozed until {until:%a %d %b %H:%M}{by}"
    return f"{_STATUS_DONE.get(to, to)}{by}"


def mention_snapshot(user) -> MentionPayload:
    return {**person_snapshot(user), "username": user.get_username()}


def note_snapshot(note) -> NotePayload:
    """A private note of the thread. Needs ``author`` loaded and ``mentions`` prefetched to stay query-free."""
    return {
        "id": note.pk,
        "conversation_id": note.conversation_id,
        "author": person_snapshot(note.author) if note.author_id else None,
        "body": note.body,
        "mentions": sorted((mention_snapshot(user) for user in note.mentions.all()), key=lambda m: m["username"]),
        "created_at": note.created_at.isoformat(),
    }


# How much of a note a notification shows.
NOTIFICATION_TEXT_LENGTH = 200


def notification_snapshot(notification: Notification) -> NotificationPayload:
    """One entry of a person's notification list. Needs ``actor``, ``note`` and ``conversation__contact`` loaded
    (``selectors.notifications_for``) to stay query-free; only for someone who may see the conversation."""
    if notification.alert_id:
        return _alert_notification_snapshot(notification)
    actor = person_snapshot(notification.actor)["name"] if notification.actor_id else "Someone"
    note = notification.note
    conversation = notification.conversation
    titles = {NotificationKind.MENTION: f"{actor} mentioned you"}
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "conversation_id": notification.conversation_id,
        "number_id": conversation.number_id,
        "note_id": notification.note_id,
        "actor": person_snapshot(notification.actor) if notification.actor_id else None,
        "title": titles.get(notification.kind, notification.get_kind_display()),
        "text": note.body[:NOTIFICATION_TEXT_LENGTH] if note is not None else "",
        "contact_name": conversation.contact.display_name,
        "url": reverse("inbox:conversation", args=[notification.conversation_id])
        + (f"#note-{notification.note_id}" if notification.note_id else ""),
        "created_at": notification.created_at.isoformat(),
        "read_at": notification.read_at.isoformat() if notification.read_at else None,
    }


def _alert_notification_snapshot(notification: Notification) -> NotificationPayload:
    """A number alert's notification (to the number's supervisors): opens the number's card on the Numbers page."""
    alert = notification.alert
    title, advice = alert_words(kind=alert.kind, condition=alert.condition)
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "conversation_id": None,
        "number_id": alert.number_id,
        "note_id": None,
        "actor": None,
        "title": title,
        "text": advice[:NOTIFICATION_TEXT_LENGTH],
        "contact_name": str(alert.template) if alert.template_id else "",
        "url": reverse("numbers") + f"#number-{alert.number_id}",
        "created_at": notification.created_at.isoformat(),
        "read_at": notification.read_at.isoformat() if notification.read_at else None,
    }


def contact_note_snapshot(note) -> ContactNotePayload:
    """A note about a contact, as the contact panel shows it. Needs ``author`` loaded to stay query-free."""
    return {
        "id": note.pk,
        "contact_id": note.contact_id,
        "author": person_snapshot(note.author) if note.author_id else None,
        "body": note.body,
        "created_at": note.created_at.isoformat(),
        "updated_at": note.updated_at.isoformat(),
    }


def number_state_snapshot(number: BusinessNumber, account: BusinessAccount | None) -> NumberPayload:
    """What Meta says about a number and its account (``number.updated``)."""
    return {
        "id": number.pk,
        "quality_rating": number.quality_rating,
        "quality_event": number.quality_event,
        "messaging_limit_tier": number.messaging_limit_tier,
        "throughput_level": number.throughput_level,
        "meta_status": number.meta_status,
        "name_status": number.name_status,
        "requested_name": number.requested_name,
        "verified_name": number.verified_name,
        "name_rejection_reason": number.name_rejection_reason,
        "account": account_snapshot(account) if account else None,
    }


def account_snapshot(account: BusinessAccount) -> AccountPayload:
    return {
        "waba_id": account.waba_id,
        "status_event": account.status_event,
        "restrictions": account.restrictions,
        "violation_type": account.violation_type,
        "ban_state": account.ban_state,
        "ban_date": account.ban_date,
        "messaging_limit": account.messaging_limit,
        "max_phone_numbers": account.max_phone_numbers,
        "last_alert": account.last_alert,
        "review_decision": account.review_decision,
    }


def template_snapshot(template: MessageTemplate) -> TemplatePayload:
    return {
        "id": template.pk,
        "name": template.name,
        "language": template.language,
        "status": template.status,
        "status_reason": template.status_reason,
        "status_detail": template.status_detail,
        "category": template.category,
        "pending_category": template.pending_category,
        "category_switches_at": template.category_switches_at.isoformat() if template.category_switches_at else None,
        "quality_score": template.quality_score,
    }

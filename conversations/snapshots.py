"""What a message, a conversation and a contact look like to clients: the REST API and realtime events
share these shapes, so a message fetched over HTTP and one pushed over the socket are the same object."""

from collections.abc import Iterable

from django.urls import reverse

from contacts.models import Contact
from conversations.models import Conversation, MediaFile, MediaState, Message, Reaction
from realtime.events import ConversationPayload, MessagePayload, ReactionPayload


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


def conversation_snapshot(conversation: Conversation) -> ConversationPayload:
    """Needs ``contact`` loaded (select_related) to stay query-free."""
    return {
        "id": conversation.pk,
        "number_id": conversation.number_id,
        "contact": contact_snapshot(conversation.contact),
        **conversation_summary(conversation),
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

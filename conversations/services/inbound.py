"""Inbound writes: customer messages, reactions, statuses and read state.

Every function that changes what staff see publishes its realtime event here.

Concurrency: Meta delivers the same webhook more than once and in parallel, and statuses out of order.
Idempotency comes from unique constraints (one message per wamid, one conversation per number and
contact, one status event per wamid and status), and order-independence from conditional updates that
only move state forward. Callers run these inside a transaction; each insert that may lose a race runs
in its own savepoint so the loser carries on with the winner's row.
"""
import uuid
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from contacts.models import Contact
from conversations.models import (
    STATUS_RANK,
    BusinessNumber,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    MessageStatusEvent,
    Reaction,
    ReadState,
)
from conversations.services.media import expect_inbound_media
from conversations.snapshots import conversation_snapshot, message_snapshot, reaction_snapshots
from realtime import events
from realtime.publish import publish_event
from webhooks.payloads import InboundMessage, ReactionChange, StatusUpdate


def get_or_create_conversation(*, number: BusinessNumber, contact: Contact, at: datetime, preview: str = "") -> Conversation:
    try:
        with transaction.atomic():
            conversation, _created = Conversation.objects.get_or_create(
                number=number,
                contact=contact,
                defaults={"last_message_at": at, "last_message_preview": preview[:300]},
            )
    except IntegrityError:
        conversation = Conversation.objects.get(number=number, contact=contact)
    return conversation


def receive_inbound_message(*, number: BusinessNumber, contact: Contact, message: InboundMessage) -> Message | None:
    """Store one customer message; ``None`` when this wamid is already stored (a redelivery)."""
    conversation = get_or_create_conversation(number=number, contact=contact, at=message.timestamp, preview=message.preview)
    try:
        with transaction.atomic():
            stored = Message.objects.create(
                conversation=conversation,
                wamid=message.wamid,
                direction=Direction.INBOUND,
                type=message.type,
                body=message.body,
                preview=message.preview[:300],
                content=message.content,
                context=message.context,
                reply_to_wamid=message.reply_to_wamid,
                timestamp=message.timestamp,
                status=MessageStatus.RECEIVED,
                error_code=message.errors[0].code if message.errors else None,
                error_title=message.errors[0].title[:300] if message.errors else "",
            )
    except IntegrityError:
        # The unique wamid constraint: another delivery of this message won (or stored it earlier).
        return None
    expect_inbound_media(message=stored)
    touch_conversation(conversation=conversation, message=stored)
    conversation = Conversation.objects.select_related("contact").get(pk=conversation.pk)
    reactions = Reaction.objects.filter(message_wamid=stored.wamid).select_related("contact")
    stored = Message.objects.select_related("media").get(pk=stored.pk)
    payload: events.MessageCreated = {
        "message": message_snapshot(stored, reactions),
        "conversation": conversation_snapshot(conversation),
    }
    publish_event(number_id=number.pk, type=events.MESSAGE_CREATED, payload=payload)
    publish_event(
        number_id=number.pk,
        type=events.CONVERSATION_UPDATED,
        payload={"conversation": payload["conversation"]},
    )
    return stored


def touch_conversation(*, conversation: Conversation, message: Message) -> None:
    """Move the conversation's last-message summary forward, never back (messages arrive out of order)."""
    Conversation.objects.filter(pk=conversation.pk, last_message_at__lte=message.timestamp).update(
        last_message_at=message.timestamp,
        last_message_preview=message.preview[:300],
        last_message_direction=message.direction,
    )
    if message.direction == Direction.INBOUND:
        Conversation.objects.filter(pk=conversation.pk).filter(
            Q(last_inbound_at__isnull=True) | Q(last_inbound_at__lt=message.timestamp)
        ).update(last_inbound_at=message.timestamp)


def apply_reaction(
    *, number: BusinessNumber, contact: Contact, reaction: ReactionChange, reaction_wamid: str, reacted_at: datetime
) -> Reaction | None:
    """Set (or clear, with an empty emoji) the contact's reaction on a message; older events lose."""
    get_or_create_conversation(number=number, contact=contact, at=reacted_at)
    fields = {"emoji": reaction.emoji, "reaction_wamid": reaction_wamid, "reacted_at": reacted_at}
    try:
        with transaction.atomic():
            stored, created = Reaction.objects.get_or_create(
                message_wamid=reaction.message_wamid, contact=contact, defaults=fields
            )
    except IntegrityError:
        stored, created = Reaction.objects.get(message_wamid=reaction.message_wamid, contact=contact), False
    if not created:
        changed = (
            Reaction.objects.filter(pk=stored.pk, reacted_at__lte=reacted_at)
            .exclude(reaction_wamid=reaction_wamid)
            .update(**fields)
        )
        if not changed:
            return None
    target = Message.objects.filter(wamid=reaction.message_wamid).only("id", "conversation_id").first()
    conversation_id = target.conversation_id if target else Conversation.objects.get(number=number, contact=contact).pk
    current = Reaction.objects.filter(message_wamid=reaction.message_wamid).select_related("contact")
    publish_event(
        number_id=number.pk,
        type=events.MESSAGE_REACTIONS_CHANGED,
        payload={
            "conversation_id": conversation_id,
            "wamid": reaction.message_wamid,
            "message_id": target.pk if target else None,
            "reactions": reaction_snapshots(current),
        },
    )
    return stored


def record_status(*, number: BusinessNumber, status: StatusUpdate) -> Message | None:
    """Keep the status event (even for a wamid we do not know yet) and advance the message if it exists."""
    error = status.first_error
    MessageStatusEvent.objects.bulk_create(
        [
            MessageStatusEvent(
                wamid=status.wamid,
                status=status.status,
                timestamp=status.timestamp,
                number=number,
                recipient_wa_id=status.recipient.wa_id or "",
                recipient_user_id=status.recipient.user_id or "",
                error_code=error.code if error else None,
                error_title=(error.title if error else "")[:300],
                payload=status.raw,
            )
        ],
        ignore_conflicts=True,
    )
    message = Message.objects.select_for_update().filter(wamid=status.wamid, direction=Direction.OUTBOUND).first()
    if message is None:
        # Meta echoes our idempotency key: the status may be for a message whose send response (and so
        # its wamid) we have not stored yet, or lost. Attaching it here also stops a retry re-sending it.
        unsent = _outbound_awaiting_wamid(key=status.raw.get("biz_opaque_callback_data"))
        if unsent is not None:
            return register_sent_message(message=unsent, wamid=status.wamid)
        return None
    advance_message_status(
        message=message,
        status=status.status,
        at=status.timestamp,
        error_code=error.code if error else None,
        error_title=error.title if error else "",
    )
    return message


def _outbound_awaiting_wamid(*, key) -> Message | None:
    try:
        key = uuid.UUID(str(key))
    except ValueError:
        return None
    return Message.objects.select_for_update().filter(idempotency_key=key, wamid__isnull=True).first()


@transaction.atomic
def register_sent_message(*, message: Message, wamid: str) -> Message:
    """Store the wamid Meta returned for an outbound message and apply any status that arrived first."""
    message = Message.objects.select_for_update().get(pk=message.pk)
    message.wamid = wamid
    message.save(update_fields=["wamid"])
    best = None
    for event in MessageStatusEvent.objects.filter(wamid=wamid):
        if best is None or STATUS_RANK[event.status] > STATUS_RANK[best.status]:
            best = event
    if best is not None:
        advance_message_status(
            message=message, status=best.status, at=best.timestamp, error_code=best.error_code, error_title=best.error_title
        )
    return message


def advance_message_status(*, message: Message, status: str, at: datetime, error_code: int | None, error_title: str) -> None:
    """Precondition: ``message`` is locked (select_for_update) by the caller's transaction."""
    if STATUS_RANK[status] <= message.status_rank:
        return
    message.status = status
    message.status_at = at
    if status == MessageStatus.FAILED:
        message.error_code = error_code
        message.error_title = error_title[:300]
    message.save(update_fields=["status", "status_at", "error_code", "error_title"])
    number_id = BusinessNumber.objects.filter(conversations__id=message.conversation_id).values_list("pk", flat=True).get()
    payload: events.MessageStatusChanged = {
        "message_id": message.pk,
        "conversation_id": message.conversation_id,
        "wamid": message.wamid or "",
        "status": message.status,
        "error": {"code": message.error_code, "title": message.error_title} if status == MessageStatus.FAILED else None,
    }
    publish_event(number_id=number_id, type=events.MESSAGE_STATUS_CHANGED, payload=payload)


@transaction.atomic
def mark_conversation_read(*, user, conversation: Conversation) -> ReadState:
    """Everything in the conversation up to now counts as read for this user (and only this user);
    the user's other tabs hear of it."""
    latest = conversation.messages.aggregate(latest=Max("id"))["latest"] or 0
    state, _created = ReadState.objects.get_or_create(user=user, conversation=conversation)
    moved = ReadState.objects.filter(pk=state.pk, last_read_message_id__lt=latest).update(last_read_message_id=latest)
    state.refresh_from_db()
    if moved and conversation.number.send_read_receipts:
        from conversations.tasks import send_read_receipt_task

        transaction.on_commit(lambda: send_read_receipt_task.delay(conversation.pk))
    if moved:
        payload: events.ConversationRead = {"conversation_id": conversation.pk, "last_read_message_id": latest}
        publish_event(number_id=conversation.number_id, type=events.CONVERSATION_READ, payload=payload, user_id=user.pk)
    return state

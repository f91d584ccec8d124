"""Inbound writes: customer messages, reactions, statuses and read state.

Every function that changes what staff see publishes its realtime event here.

Concurrency: Meta delivers the same webhook more than once and in parallel, and statuses out of order.
Idempotency comes from unique constraints (one message per wamid, one conversation per number and
contact, one status event per wamid and status), and order-independence from conditional updates that
only move state forward. Callers run these inside a transaction; each insert that may lose a race runs
in its own savepoint so the loser carries on with the winner's row.
"""
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When

from database.bulk import insert_rows, update_rows
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
from conversations.selectors import last_message_id
from conversations.services.media import expect_inbound_media
from conversations.snapshots import conversation_snapshot, message_snapshot, reaction_snapshots
from realtime import events
from realtime.publish import publish_event, publish_events
from webhooks.payloads import InboundMessage, ReactionChange, StatusUpdate


def get_or_create_conversation(*, number: BusinessNumber, contact: Contact, at: datetime, preview: str = "") -> Conversation:
    # Looked up first, outside any savepoint: nearly every message is for a conversation that exists.
    conversation = Conversation.objects.filter(number=number, contact=contact).first()
    if conversation is not None:
        return conversation
    try:
        with transaction.atomic():
            return Conversation.objects.create(
                number=number, contact=contact, last_message_at=at, last_message_preview=preview[:300]
            )
    except IntegrityError:  # the unique (number, contact) constraint: another worker created it first
        return Conversation.objects.get(number=number, contact=contact)


def receive_inbound_message(*, number: BusinessNumber, contact: Contact, message: InboundMessage) -> Message | None:
    """Store one customer message; ``None`` when this wamid is already stored (a redelivery)."""
    try:
        with transaction.atomic():
            stored = receive_inbound_messages(items=[InboundItem(number=number, contact=contact, message=message)])
    except IntegrityError:
        # The unique wamid constraint: another delivery of this message won while this one was stored.
        return None
    return stored[0] if stored else None


@dataclass(frozen=True)
class InboundItem:
    """One customer message of a drain's batch, with the number it was sent to and its contact."""

    number: BusinessNumber
    contact: Contact
    message: InboundMessage


def receive_inbound_messages(*, items: list[InboundItem]) -> list[Message]:
    """``receive_inbound_message`` for a batch, in a few queries per batch rather than a dozen per message;
    returns the messages stored (redeliveries are skipped). Each ``message.created`` carries its
    conversation as it is after the whole batch (clients apply it as they would a ``conversation.updated``,
    so none follows: that was half the realtime rows and pushes of a batch).

    Conversations are locked in id order before they are touched, so concurrent batches do not deadlock.
    A wamid stored concurrently by another worker makes the bulk INSERT raise IntegrityError: the caller's
    savepoint rolls the batch back (a drain then applies its deliveries one by one).
    """
    if not items:
        return []
    conversations = _conversations_for(items=items)
    known = set(Message.objects.filter(wamid__any={item.message.wamid for item in items}).values_list("wamid", flat=True))
    fresh: list[tuple[InboundItem, Message]] = []
    for item in items:
        if item.message.wamid in known:
            continue
        known.add(item.message.wamid)
        fresh.append((item, _inbound_row(conversation=conversations[(item.number.pk, item.contact.pk)], message=item.message)))
    if not fresh:
        return []
    stored = insert_rows(objects=[row for _item, row in fresh])
    for message in stored:
        Message.media.related.set_cached_value(message, expect_inbound_media(message=message))
    # The rows are locked and current (see _conversations_for): the summaries move forward in memory, by
    # the rule of touch_conversation, in delivery order (ties on Meta's one-second timestamps: the later
    # delivery wins), and are written back in one UPDATE.
    by_id = {conversation.pk: conversation for conversation in conversations.values()}
    touched = {message.conversation_id: by_id[message.conversation_id] for message in stored}
    for message in stored:
        _advance_summary(conversation=by_id[message.conversation_id], message=message)
    update_rows(objects=list(touched.values()), fields=SUMMARY_FIELDS)
    contacts = {item.contact.pk: item.contact for item in items}
    for conversation in touched.values():
        conversation.contact = contacts[conversation.contact_id]
    reactions: dict[str, list[Reaction]] = {}
    for reaction in Reaction.objects.filter(message_wamid__any=[m.wamid for m in stored]).select_related("contact"):
        reactions.setdefault(reaction.message_wamid, []).append(reaction)
    snapshots = {pk: conversation_snapshot(conversation) for pk, conversation in touched.items()}
    by_number: dict[int, list[tuple[str, dict]]] = {}
    for message in stored:
        payload: events.MessageCreated = {
            "message": message_snapshot(message, reactions.get(message.wamid, ())),
            "conversation": snapshots[message.conversation_id],
        }
        by_number.setdefault(touched[message.conversation_id].number_id, []).append((events.MESSAGE_CREATED, payload))
    for number_id, batch in by_number.items():
        publish_events(number_id=number_id, events=batch)
    return stored


def _conversations_for(*, items: list[InboundItem]) -> dict[tuple[int, int], Conversation]:
    """The conversation of every (number, contact) in the batch, locked in id order, created if new."""
    wanted = {(item.number.pk, item.contact.pk): item for item in items}
    found = {
        (c.number_id, c.contact_id): c
        for c in Conversation.objects.select_for_update(of=("self",))
        .filter(number_id__any={n for n, _c in wanted}, contact_id__any={c for _n, c in wanted})
        .order_by("pk")
    }
    for key, item in wanted.items():
        if key not in found:
            created = get_or_create_conversation(
                number=item.number, contact=item.contact, at=item.message.timestamp, preview=item.message.preview
            )
            # Another worker may have created it first and be touching it: lock it and read it as it is.
            found[key] = Conversation.objects.select_for_update(of=("self",)).get(pk=created.pk)
    return found


SUMMARY_FIELDS = ["last_message_at", "last_message_preview", "last_message_direction", "last_inbound_at"]


def _advance_summary(*, conversation: Conversation, message: Message) -> None:
    """``touch_conversation`` on a locked row in memory."""
    if conversation.last_message_at <= message.timestamp:
        conversation.last_message_at = message.timestamp
        conversation.last_message_preview = message.preview[:300]
        conversation.last_message_direction = message.direction
    if message.direction == Direction.INBOUND and (
        conversation.last_inbound_at is None or conversation.last_inbound_at < message.timestamp
    ):
        conversation.last_inbound_at = message.timestamp


def _inbound_row(*, conversation: Conversation, message: InboundMessage) -> Message:
    return Message(
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


def touch_conversation(*, conversation: Conversation, message: Message) -> None:
    """Move the conversation's last-message summary forward, never back (messages arrive out of order).
    One conditional UPDATE: each column compares with the row's current value inside the database."""
    newer = Q(last_message_at__lte=message.timestamp)
    changes = {
        "last_message_at": Case(When(newer, then=Value(message.timestamp)), default=F("last_message_at")),
        "last_message_preview": Case(When(newer, then=Value(message.preview[:300])), default=F("last_message_preview")),
        "last_message_direction": Case(When(newer, then=Value(message.direction)), default=F("last_message_direction")),
    }
    if message.direction == Direction.INBOUND:
        changes["last_inbound_at"] = Case(
            When(Q(last_inbound_at__isnull=True) | Q(last_inbound_at__lt=message.timestamp), then=Value(message.timestamp)),
            default=F("last_inbound_at"),
        )
    Conversation.objects.filter(pk=conversation.pk).update(**changes)


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
    insert_rows(objects=[_status_event(number=number, status=status)], ignore_conflicts=True)
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


def record_statuses(*, statuses: list[tuple[BusinessNumber, StatusUpdate]]) -> None:
    """``record_status`` for a batch of status updates (the bulk of a busy number's webhooks), in a handful
    of queries: every status event kept, each known message moved forward once to the best status in the
    batch, one ``message.status_changed`` per message that moved.

    The messages are locked in id order, so two batches never deadlock on them. Statuses for a wamid no
    outbound message has yet go through ``record_status`` one by one (it may match our idempotency key).
    """
    if not statuses:
        return
    insert_rows(objects=[_status_event(number=number, status=status) for number, status in statuses], ignore_conflicts=True)
    wamids = {status.wamid for _number, status in statuses}
    messages = {
        message.wamid: message
        for message in Message.objects.select_for_update(of=("self",))
        .filter(wamid__any=wamids, direction=Direction.OUTBOUND)
        .select_related("conversation")
        .order_by("pk")
    }
    moved: dict[int, Message] = {}
    for number, status in statuses:
        message = messages.get(status.wamid)
        if message is None:
            record_status(number=number, status=status)
            continue
        error = status.first_error
        if _advance_in_memory(message=message, status=status.status, at=status.timestamp,
                              error_code=error.code if error else None, error_title=error.title if error else ""):
            moved[message.pk] = message
    if not moved:
        return
    update_rows(objects=list(moved.values()), fields=["status", "status_at", "error_code", "error_title"])
    by_number: dict[int, list[dict]] = {}
    for message in moved.values():
        by_number.setdefault(message.conversation.number_id, []).append(_status_changed_payload(message))
    for number_id, payloads in by_number.items():
        publish_events(number_id=number_id, events=[(events.MESSAGE_STATUS_CHANGED, payload) for payload in payloads])


def _status_event(*, number: BusinessNumber, status: StatusUpdate) -> MessageStatusEvent:
    error = status.first_error
    return MessageStatusEvent(
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


def _advance_in_memory(*, message: Message, status: str, at: datetime, error_code: int | None, error_title: str) -> bool:
    """Move a locked message's status forward, never back; whether it moved (nothing is saved here)."""
    if STATUS_RANK[status] <= message.status_rank:
        return False
    message.status = status
    message.status_at = at
    if status == MessageStatus.FAILED:
        message.error_code = error_code
        message.error_title = error_title[:300]
    return True


def _status_changed_payload(message: Message) -> events.MessageStatusChanged:
    return {
        "message_id": message.pk,
        "conversation_id": message.conversation_id,
        "wamid": message.wamid or "",
        "status": message.status,
        "error": {"code": message.error_code, "title": message.error_title} if message.status == MessageStatus.FAILED else None,
    }


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
    if not _advance_in_memory(message=message, status=status, at=at, error_code=error_code, error_title=error_title):
        return
    message.save(update_fields=["status", "status_at", "error_code", "error_title"])
    publish_status_changed(message)


def publish_status_changed(message: Message) -> None:
    """Open inboxes learn the message's new status (inside the caller's transaction)."""
    number_id = BusinessNumber.objects.filter(conversations__id=message.conversation_id).values_list("pk", flat=True).get()
    publish_event(number_id=number_id, type=events.MESSAGE_STATUS_CHANGED, payload=_status_changed_payload(message))


@transaction.atomic
def mark_conversation_read(*, user, conversation: Conversation) -> ReadState:
    """Everything in the conversation up to now counts as read for this user (and only this user);
    the user's other tabs hear of it."""
    # The conversation's row lock orders this read against inserts (their trigger updates the row), so the
    # newest id and the count of customer messages describe the same set of messages.
    inbound_count = Conversation.objects.select_for_update().values_list("inbound_count", flat=True).get(pk=conversation.pk)
    latest = last_message_id(conversation=conversation)
    state, _created = ReadState.objects.get_or_create(user=user, conversation=conversation)
    moved = ReadState.objects.filter(pk=state.pk, last_read_message_id__lt=latest).update(
        last_read_message_id=latest, read_inbound_count=inbound_count
    )
    state.refresh_from_db()
    if moved and conversation.number.send_read_receipts:
        from conversations.services.outbound import request_read_receipt

        request_read_receipt(conversation=conversation)
    if moved:
        payload: events.ConversationRead = {"conversation_id": conversation.pk, "last_read_message_id": latest}
        publish_event(number_id=conversation.number_id, type=events.CONVERSATION_READ, payload=payload, user_id=user.pk)
    return state

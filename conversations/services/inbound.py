"""Inbound writes: customer messages, reactions and read state (statuses: ``statuses``).

Every function that changes what staff see publishes its realtime event here.

Concurrency: Meta delivers the same webhook more than once and in parallel. Idempotency comes from unique
constraints (one message per wamid, one conversation per number and contact), and order-independence from
updates that only move state forward. Callers run these inside a transaction; each insert that may lose a
race runs in its own savepoint so the loser carries on with the winner's row.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from contacts.models import Contact
from conversations.incoming import InboundMessage, ReactionChange
from conversations.models import (
    SUMMARY_FIELDS,
    BusinessNumber,
    Conversation,
    ConversationActivity,
    ConversationStatus,
    Direction,
    Message,
    MessageStatus,
    Reaction,
    ReadState,
)
from conversations.selectors import labels_by_conversation, last_message_id
from conversations.services.media import expect_inbound_media
from conversations.services.outbound import request_read_receipt
from conversations.services.workflow import activity_events, request_auto_assignment, status_activity
from conversations.snapshots import conversation_snapshot, message_snapshot, reaction_snapshots
from database.bulk import insert_rows, update_rows
from realtime import events
from realtime.publish import publish_event, publish_events


def get_or_create_conversation(*, number: BusinessNumber, contact: Contact, at: datetime) -> Conversation:
    """The conversation of the number and contact; a new one starts at ``at`` with no last message yet
    (the caller notes it: ``Conversation.note_message``)."""
    # Looked up first, outside any savepoint: nearly every message is for a conversation that exists.
    conversation = Conversation.objects.filter(number=number, contact=contact).first()
    if conversation is not None:
        return conversation
    try:
        with transaction.atomic():
            return Conversation.objects.create(number=number, contact=contact, last_message_at=at)
    except IntegrityError:  # the unique (number, contact) constraint: another worker created it first
        return Conversation.objects.get(number=number, contact=contact)


@dataclass(frozen=True)
class InboundItem:
    """One customer message of a drain's batch, with the number it was sent to and its contact."""

    number: BusinessNumber
    contact: Contact
    message: InboundMessage


def receive_inbound_messages(*, items: list[InboundItem]) -> list[Message]:
    """Store customer messages, in a few queries per batch rather than a dozen per message; returns the
    messages stored (redeliveries are skipped). Each ``message.created`` carries its conversation as it is
    after the whole batch (clients apply it as they would a ``conversation.updated``, so none follows: that
    was half the realtime rows and pushes of a batch).

    Conversations are locked in id order before they are touched, so concurrent batches do not deadlock.
    A wamid stored concurrently by another worker makes the bulk INSERT raise IntegrityError: the caller's
    savepoint rolls the batch back (a drain then applies its deliveries one by one).
    """
    if not items:
        return []
    conversations = locked_conversations(items=items)
    known = set(
        Message.objects.filter(wamid__any={item.message.wamid for item in items}).values_list("wamid", flat=True)
    )
    fresh: list[tuple[InboundItem, Message]] = []
    for item in items:
        if item.message.wamid in known:
            continue
        known.add(item.message.wamid)
        fresh.append(
            (item, _inbound_row(conversation=conversations[(item.number.pk, item.contact.pk)], message=item.message))
        )
    if not fresh:
        return []
    stored = insert_rows(objects=[row for _item, row in fresh])
    for message in stored:
        Message.media.related.set_cached_value(message, expect_inbound_media(message=message))
    # The rows are locked and current (see locked_conversations): each notes its messages in delivery order
    # (of two in the same second, the later delivery is the last message), written back in one UPDATE.
    by_id = {conversation.pk: conversation for conversation in conversations.values()}
    touched = {message.conversation_id: by_id[message.conversation_id] for message in stored}
    for message in stored:
        by_id[message.conversation_id].note_message(message)
    contacts = {item.contact.pk: item.contact for item in items}
    for conversation in touched.values():
        conversation.contact = contacts[conversation.contact_id]
    reopened = _reopen_conversations(conversations=list(touched.values()))
    publish_received(stored=stored, touched=touched, reopened=reopened)
    # New and reopened conversations nobody has: a worker hands them out, one task per number and batch.
    numbers = {item.number.pk: item.number for item in items}
    for number_id in {c.number_id for c in touched.values() if c.assignee_id is None}:
        request_auto_assignment(number=numbers[number_id])
    return stored


def publish_received(
    *, stored: list[Message], touched: dict[int, Conversation], reopened: list[ConversationActivity]
) -> None:
    """One ``message.created`` per message with its conversation as the batch left it (``touched``, with
    ``contact`` and ``assignee`` loaded), then the reopenings' activities: one INSERT of events per number."""
    reactions: dict[str, list[Reaction]] = {}
    for reaction in Reaction.objects.filter(message_wamid__any=[m.wamid for m in stored]).select_related("contact"):
        reactions.setdefault(reaction.message_wamid, []).append(reaction)
    labels = labels_by_conversation(touched)
    snapshots = {pk: conversation_snapshot(conversation, labels=labels[pk]) for pk, conversation in touched.items()}
    by_number: dict[int, list[tuple[str, dict]]] = {}
    for message in stored:
        payload: events.MessageCreated = {
            "message": message_snapshot(message, reactions.get(message.wamid, ())),
            "conversation": snapshots[message.conversation_id],
        }
        by_number.setdefault(touched[message.conversation_id].number_id, []).append((events.MESSAGE_CREATED, payload))
    for activity, event in zip(reopened, activity_events(reopened, labels=labels), strict=True):
        by_number[activity.conversation.number_id].append(event)
    for number_id, batch in by_number.items():
        publish_events(number_id=number_id, events=batch)


def _reopen_conversations(*, conversations: list[Conversation]) -> list[ConversationActivity]:
    """Write the conversations' summaries (rows locked, values in memory) in one UPDATE. The customer wrote: one
    resolved, snoozed or waiting on them is open again, by the same UPDATE (its status columns only in a batch
    that reopens one), recorded in one INSERT; its activities, to publish."""
    reopened = [
        status_activity(conversation=conversation, actor=None, before=before, reason="customer_message")
        for conversation in conversations
        if (before := _reopen(conversation)) is not None
    ]
    update_rows(objects=conversations, fields=SUMMARY_FIELDS + (["status", "snoozed_until"] if reopened else []))
    insert_rows(objects=reopened)
    return reopened


def _reopen(conversation: Conversation) -> str | None:
    """Open the conversation (in memory) if it is not; the status it had, or ``None`` if it was open."""
    if conversation.status == ConversationStatus.OPEN:
        return None
    before = conversation.status
    conversation.status, conversation.snoozed_until = ConversationStatus.OPEN, None
    return before


def locked_conversations(*, items: list[InboundItem]) -> dict[tuple[int, int], Conversation]:
    """The conversation of every (number, contact) in the batch, locked in id order, created if new."""
    wanted = {(item.number.pk, item.contact.pk): item for item in items}
    # The assignee comes in the same query (conversation payloads name them), not locked.
    found = {
        (c.number_id, c.contact_id): c
        for c in Conversation.objects.select_for_update(of=("self",))
        .select_related("assignee")
        .filter(number_id__any={n for n, _c in wanted}, contact_id__any={c for _n, c in wanted})
        .order_by("pk")
    }
    for key, item in wanted.items():
        if key not in found:
            created = get_or_create_conversation(number=item.number, contact=item.contact, at=item.message.timestamp)
            # Another worker may have created it first and be touching it: lock it and read it as it is.
            found[key] = (
                Conversation.objects.select_for_update(of=("self",)).select_related("assignee").get(pk=created.pk)
            )
    return found


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


def apply_reaction(
    *,
    number: BusinessNumber,
    contact: Contact,
    reaction: ReactionChange,
    reaction_wamid: str,
    reacted_at: datetime,
    by_business: bool = False,
) -> Reaction | None:
    """Set (or clear, with an empty emoji) the contact's reaction on a message, or with ``by_business`` the
    business's own (one it sent from the phone app of a Coexistence number) in the contact's conversation; older
    events lose."""
    get_or_create_conversation(number=number, contact=contact, at=reacted_at)
    fields = {"emoji": reaction.emoji, "reaction_wamid": reaction_wamid, "reacted_at": reacted_at}
    reactor = None if by_business else contact
    try:
        with transaction.atomic():
            stored, created = Reaction.objects.get_or_create(
                message_wamid=reaction.message_wamid, contact=reactor, defaults=fields
            )
    except IntegrityError:
        stored, created = Reaction.objects.get(message_wamid=reaction.message_wamid, contact=reactor), False
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


@transaction.atomic
def mark_conversation_read(*, user, conversation: Conversation) -> ReadState:
    """Everything in the conversation up to now counts as read for this user (and only this user);
    the user's other tabs hear of it."""
    # The conversation's row lock orders this read against inserts (their trigger updates the row), so the
    # newest id and the count of customer messages describe the same set of messages.
    inbound_count = (
        Conversation.objects.select_for_update().values_list("inbound_count", flat=True).get(pk=conversation.pk)
    )
    latest = last_message_id(conversation=conversation)
    state, _created = ReadState.objects.get_or_create(user=user, conversation=conversation)
    moved = ReadState.objects.filter(pk=state.pk, last_read_message_id__lt=latest).update(
        last_read_message_id=latest, read_inbound_count=inbound_count
    )
    state.refresh_from_db()
    if moved and conversation.number.send_read_receipts:
        request_read_receipt(conversation=conversation)
    if moved:
        payload: events.ConversationRead = {"conversation_id": conversation.pk, "last_read_message_id": latest}
        publish_event(number_id=conversation.number_id, type=events.CONVERSATION_READ, payload=payload, user_id=user.pk)
    return state

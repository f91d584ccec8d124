"""Where an outbound message stands: Meta's status webhooks, the wamid a send returned, and the outbox's own
moves (failed, unconfirmed, discarded). Meta's statuses arrive out of order and before the send's answer;
a message's status only moves forward (``STATUS_RANK``), and every move is published to open inboxes.

Every status event is kept, even for a wamid no message has yet: it is applied when the message gets its
wamid (``register_sent_message``).
"""

import uuid
from datetime import datetime

from django.db import transaction

from conversations.incoming import Pricing, StatusUpdate
from conversations.models import (
    PRICING_FIELDS,
    STATUS_RANK,
    BusinessNumber,
    Direction,
    Message,
    MessageStatus,
    MessageStatusEvent,
)
from database.bulk import insert_rows, update_rows
from realtime import events
from realtime.publish import publish_event, publish_events


def record_statuses(*, statuses: list[tuple[BusinessNumber, StatusUpdate]]) -> None:
    """Meta's status updates (the bulk of a busy number's webhooks), in a handful of queries: every status event
    kept, each known message moved forward once to the best status of the batch, one
    ``message.status_changed`` per message that moved.

    The messages are locked in id order, so two batches never deadlock on them. A status for a wamid no
    outbound message has may be for one whose send answer (and so its wamid) we have not stored yet, or lost:
    Meta echoes our idempotency key, which finds it (``_attach_to_unsent``).
    """
    if not statuses:
        return
    insert_rows(
        objects=[_status_event(number=number, status=status) for number, status in statuses], ignore_conflicts=True
    )
    wamids = {status.wamid for _number, status in statuses}
    messages = {
        message.wamid: message
        for message in Message.objects.select_for_update(of=("self",))
        .filter(wamid__any=wamids, direction=Direction.OUTBOUND)
        .select_related("conversation")
        .order_by("pk")
    }
    moved: dict[int, Message] = {}
    # Messages whose pricing the batch changed: written in the same UPDATE as the statuses.
    priced: dict[int, Message] = {}
    attached: set[str] = set()
    for _number, status in statuses:
        message = messages.get(status.wamid)
        if message is None:
            if status.wamid not in attached and _attach_to_unsent(status):
                attached.add(status.wamid)
            continue
        if status.pricing is not None and _price_in_memory(message=message, pricing=status.pricing):
            priced[message.pk] = message
        error = status.first_error
        if _advance_in_memory(
            message=message,
            status=status.status,
            at=status.timestamp,
            error_code=error.code if error else None,
            error_title=error.title if error else "",
        ):
            moved[message.pk] = message
    if not moved and not priced:
        return
    update_rows(
        objects=list({**priced, **moved}.values()),
        fields=["status", "status_at", "error_code", "error_title", *PRICING_FIELDS],
    )
    by_number: dict[int, list[dict]] = {}
    for message in moved.values():
        by_number.setdefault(message.conversation.number_id, []).append(_status_changed_payload(message))
    for number_id, payloads in by_number.items():
        publish_events(number_id=number_id, events=[(events.MESSAGE_STATUS_CHANGED, payload) for payload in payloads])


def _attach_to_unsent(status: StatusUpdate) -> bool:
    """Give the wamid to the outbound message whose idempotency key the status echoes, if one still awaits
    it; that also stops a retry from sending it again. Whether one did."""
    try:
        key = uuid.UUID(str(status.raw.get("biz_opaque_callback_data")))
    except ValueError:
        return False
    unsent = Message.objects.select_for_update().filter(idempotency_key=key, wamid__isnull=True).first()
    if unsent is None:
        return False
    register_sent_message(message=unsent, wamid=status.wamid)
    return True


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
        **_pricing_values(status.pricing),
    )


def _pricing_values(pricing: Pricing | None) -> dict:
    if pricing is None:
        return {}
    return {
        "pricing_billable": pricing.billable,
        "pricing_model": pricing.model,
        "pricing_type": pricing.type,
        "pricing_category": pricing.category,
    }


def _price_in_memory(*, message, pricing: Pricing) -> bool:
    """Give a locked message (or a status event) the pricing a status reported; whether it changed. Meta sends
    the same pricing on ``sent`` and on ``delivered`` or ``read``; a later one of another category wins."""
    changed = False
    for field, value in _pricing_values(pricing).items():
        if getattr(message, field) != value:
            setattr(message, field, value)
            changed = True
    return changed


@transaction.atomic
def register_sent_message(*, message: Message, wamid: str) -> Message:
    """Store the wamid Meta returned for an outbound message and apply any status that arrived first."""
    message = Message.objects.select_for_update().get(pk=message.pk)
    message.wamid = wamid
    best = None
    for event in MessageStatusEvent.objects.filter(wamid=wamid).order_by("timestamp", "pk"):
        if best is None or STATUS_RANK[event.status] > STATUS_RANK[best.status]:
            best = event
        if event.pricing_type or event.pricing_category:  # the status came before the send's answer
            for field in PRICING_FIELDS:
                setattr(message, field, getattr(event, field))
    message.save(update_fields=["wamid", *PRICING_FIELDS])
    if best is not None:
        advance_message_status(
            message=message,
            status=best.status,
            at=best.timestamp,
            error_code=best.error_code,
            error_title=best.error_title,
        )
    return message


def advance_message_status(
    *, message: Message, status: str, at: datetime, error_code: int | None, error_title: str
) -> None:
    """Precondition: ``message`` is locked (select_for_update) by the caller's transaction."""
    if not _advance_in_memory(message=message, status=status, at=at, error_code=error_code, error_title=error_title):
        return
    message.save(update_fields=["status", "status_at", "error_code", "error_title"])
    publish_status_changed(message)


def _advance_in_memory(
    *, message: Message, status: str, at: datetime, error_code: int | None, error_title: str
) -> bool:
    """Move a locked message's status forward, never back; whether it moved (nothing is saved here)."""
    if STATUS_RANK[status] <= message.status_rank:
        return False
    message.status = status
    message.status_at = at
    if status == MessageStatus.FAILED:
        message.error_code = error_code
        message.error_title = error_title[:300]
    return True


def publish_status_changed(message: Message) -> None:
    """Open inboxes learn the message's new status (inside the caller's transaction)."""
    number_id = (
        BusinessNumber.objects.filter(conversations__id=message.conversation_id).values_list("pk", flat=True).get()
    )
    publish_event(number_id=number_id, type=events.MESSAGE_STATUS_CHANGED, payload=_status_changed_payload(message))


def _status_changed_payload(message: Message) -> events.MessageStatusChanged:
    return {
        "message_id": message.pk,
        "conversation_id": message.conversation_id,
        "wamid": message.wamid or "",
        "status": message.status,
        "error": {"code": message.error_code, "title": message.error_title}
        if message.status == MessageStatus.FAILED
        else None,
    }

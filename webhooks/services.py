"""Writes for webhook deliveries: storing the raw event, processing it into the inbox, replaying it.

A delivery is stored before anything interprets it (Meta has no API to fetch a lost webhook), then
processed by a Celery task. Processing is idempotent (the inbox services rely on unique constraints),
so a redelivery, a replay or a task that runs twice changes nothing the second time.

Operators also read the stored events' health here and purge old ones (``check_meta``, ``inbox_stats``,
``purge_webhook_events``).
"""
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from contacts.services import change_contact_identity, resolve_contact
from conversations.models import BusinessNumber
from conversations.services import apply_reaction, receive_inbound_message, record_status
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.payloads import Change, parse_delivery, parse_message, parse_status, profile_for

logger = logging.getLogger(__name__)

# Deliveries on other fields (template status, account updates, ...) are stored and acknowledged, not processed yet.
PROCESSED_FIELDS = {"messages"}
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)


def store_webhook_event(*, raw_body: bytes, payload: dict, signature: str) -> WebhookEvent:
    """Persist one verified delivery and enqueue its processing once the row is committed."""
    from webhooks.tasks import process_webhook_event_task

    delivery = parse_delivery(payload)
    ids = delivery.phone_number_ids
    with transaction.atomic():
        event = WebhookEvent.objects.create(
            raw_body=raw_body.decode("utf-8"),
            payload=payload,
            signature=signature,
            phone_number_id=ids[0] if ids else "",
        )
        transaction.on_commit(lambda: enqueue_processing(event_id=event.pk, task=process_webhook_event_task))
    return event


def enqueue_processing(*, event_id: int, task=None) -> bool:
    """Hand an event to the worker; a broker outage is not an error here (the sweep retries later)."""
    if task is None:
        from webhooks.tasks import process_webhook_event_task as task
    try:
        task.delay(event_id)
    except Exception:
        logger.warning("could not enqueue webhook event %s; the sweep will pick it up", event_id, exc_info=True)
        return False
    return True


def process_webhook_event(*, event_id: int, force: bool = False) -> WebhookEvent | None:
    """Apply every entry, change, message and status of one delivery; ``None`` if another worker holds it.

    One bad item is recorded in ``item_errors`` and never blocks the others: each item runs in its own
    savepoint. The event row is locked for the whole run, so two workers never process it at once.
    """
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update(skip_locked=True).filter(pk=event_id).first()
        if event is None:
            return None
        if event.state != WebhookEventState.PENDING and not force:
            return event
        delivery = parse_delivery(event.payload)
        item_errors = [{"path": path, "error": reason} for path, reason in delivery.broken]
        numbers = {n.phone_number_id: n for n in BusinessNumber.objects.filter(phone_number_id__in=delivery.phone_number_ids)}
        routed = 0
        for change in delivery.changes:
            if change.field not in PROCESSED_FIELDS:
                continue
            number = numbers.get(change.phone_number_id)
            if number is None:
                item_errors.append({"path": change.path, "error": f"unknown phone_number_id {change.phone_number_id!r}"})
                continue
            routed += 1
            item_errors.extend(_apply_change(number=number, change=change))
        unroutable = routed == 0 and any(c.field in PROCESSED_FIELDS for c in delivery.changes)
        event.state = WebhookEventState.UNROUTABLE if unroutable else WebhookEventState.PROCESSED
        event.item_errors = item_errors
        event.error = ""
        event.processed_at = timezone.now()
        event.attempts += 1
        event.save(update_fields=["state", "item_errors", "error", "processed_at", "attempts"])
    for item_error in item_errors:
        logger.warning("webhook event %s: %s: %s", event.pk, item_error["path"], item_error["error"])
    return event


def _apply_change(*, number: BusinessNumber, change: Change) -> list[dict]:
    errors = []
    for index, raw in enumerate(change.raw_messages):
        path = f"{change.path}.messages[{index}]"
        try:
            with transaction.atomic():
                _apply_message(number=number, change=change, raw=raw)
        except TRANSIENT_DB_ERRORS:
            raise  # the whole event is retried (deadlock, lost connection): not the item's fault
        except Exception as exc:  # one bad item must not block the batch; it is recorded on the event
            errors.append({"path": path, "error": f"{type(exc).__name__}: {exc}"})
    for index, raw in enumerate(change.raw_statuses):
        path = f"{change.path}.statuses[{index}]"
        try:
            with transaction.atomic():
                record_status(number=number, status=parse_status(raw))
        except TRANSIENT_DB_ERRORS:
            raise
        except Exception as exc:
            errors.append({"path": path, "error": f"{type(exc).__name__}: {exc}"})
    for error in change.errors:
        errors.append({"path": f"{change.path}.errors", "error": f"Meta error {error.code}: {error.title} {error.details}".strip()})
    return errors


def _apply_message(*, number: BusinessNumber, change: Change, raw: dict) -> None:
    message = parse_message(raw)
    profile = profile_for(change, message.sender)
    contact = resolve_contact(
        wa_id=message.sender.wa_id or (profile.wa_id if profile else None),
        user_id=message.sender.user_id or (profile.user_id if profile else None),
        profile_name=profile.name if profile else "",
        username=profile.username if profile else "",
    )
    if message.reaction is not None:
        apply_reaction(
            number=number,
            contact=contact,
            reaction=message.reaction,
            reaction_wamid=message.wamid,
            reacted_at=message.timestamp,
        )
        return
    receive_inbound_message(number=number, contact=contact, message=message)
    if message.identity_change is not None:
        change_contact_identity(
            contact=contact,
            new_wa_id=message.identity_change.new_wa_id,
            new_user_id=message.identity_change.new_user_id,
        )


def mark_webhook_event_failed(*, event_id: int, error: str) -> None:
    WebhookEvent.objects.filter(pk=event_id, state=WebhookEventState.PENDING).update(
        state=WebhookEventState.FAILED, error=error[:5000]
    )


def select_webhook_event_ids(
    *,
    event_ids: list[int] | None = None,
    failed: bool = False,
    unroutable: bool = False,
    with_errors: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[int]:
    """Ids of the stored events an operator asked to replay, oldest first.

    ``event_ids``, ``failed``, ``unroutable`` and ``with_errors`` each add events (they are OR'ed); the
    ``since``/``until`` window (``received_at``, both bounds inclusive) then narrows the result, or selects
    every event in it when nothing else is given. Ids that do not exist are simply absent from the result.
    """
    wanted = Q()
    if event_ids:
        wanted |= Q(pk__in=event_ids)
    if failed:
        wanted |= Q(state=WebhookEventState.FAILED)
    if unroutable:
        wanted |= Q(state=WebhookEventState.UNROUTABLE)
    if with_errors:
        wanted |= ~Q(item_errors=[])
    events = WebhookEvent.objects.filter(wanted)
    if since is not None:
        events = events.filter(received_at__gte=since)
    if until is not None:
        events = events.filter(received_at__lte=until)
    return list(events.order_by("received_at", "pk").values_list("pk", flat=True))


def replay_webhook_events(*, event_ids: list[int]) -> int:
    """Put events back to pending and enqueue them; processing is idempotent, so nothing is doubled."""
    count = WebhookEvent.objects.filter(pk__in=event_ids).update(state=WebhookEventState.PENDING, error="")
    for event_id in event_ids:
        transaction.on_commit(lambda event_id=event_id: enqueue_processing(event_id=event_id))
    return count


def sweep_pending_webhook_events() -> int:
    """Re-enqueue events still pending after the grace period (e.g. Redis was down when they arrived)."""
    cutoff = timezone.now() - timedelta(seconds=settings.WEBHOOK_SWEEP_GRACE_SECONDS)
    event_ids = list(
        WebhookEvent.objects.filter(state=WebhookEventState.PENDING, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:1000]
    )
    for event_id in event_ids:
        enqueue_processing(event_id=event_id)
    return len(event_ids)



# --- operator reads and housekeeping (check_meta, inbox_stats, purge_webhook_events) ---------------------

# Processed and unroutable events are history once they are old; pending ones are still to be applied and
# failed ones are evidence for a replay, so neither goes without an explicit decision.
PURGEABLE_STATES = (WebhookEventState.PROCESSED, WebhookEventState.UNROUTABLE)


@dataclass(frozen=True)
class WebhookHealth:
    last_received_at: datetime | None
    pending: int
    oldest_pending_at: datetime | None
    failed: int


def summarize_webhook_health(*, phone_number_id: str | None = None) -> WebhookHealth:
    """What our side knows about webhook delivery, for one number's events or for all of them."""
    events = WebhookEvent.objects.all()
    if phone_number_id is not None:
        events = events.filter(phone_number_id=phone_number_id)
    pending = events.filter(state=WebhookEventState.PENDING).aggregate(count=Count("pk"), oldest=Min("received_at"))
    return WebhookHealth(
        last_received_at=events.aggregate(last=Max("received_at"))["last"],
        pending=pending["count"],
        oldest_pending_at=pending["oldest"],
        failed=events.filter(state=WebhookEventState.FAILED).count(),
    )


def count_webhook_events_by_state(*, since: datetime | None = None) -> dict[str, int]:
    """Events per state (every state present, zero included), received since ``since`` or ever."""
    events = WebhookEvent.objects.all()
    if since is not None:
        events = events.filter(received_at__gte=since)
    counts = {state: 0 for state in WebhookEventState.values}
    for row in events.values("state").annotate(count=Count("pk")).order_by():
        counts[row["state"]] = row["count"]
    return counts


def _purgeable_webhook_events(*, before: datetime, include_failed: bool):
    states = [*PURGEABLE_STATES, WebhookEventState.FAILED] if include_failed else list(PURGEABLE_STATES)
    return WebhookEvent.objects.filter(state__in=states, received_at__lt=before)


def count_purgeable_webhook_events(*, before: datetime, include_failed: bool = False) -> dict[str, int]:
    """How many events ``purge_webhook_events`` would delete, per state."""
    rows = _purgeable_webhook_events(before=before, include_failed=include_failed).values("state")
    return {row["state"]: row["count"] for row in rows.annotate(count=Count("pk")).order_by("state")}


def purge_webhook_events(
    *,
    before: datetime,
    include_failed: bool = False,
    batch_size: int = 1000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete processed and unroutable events received before ``before`` (and failed ones if asked), never
    pending ones, in batches of ``batch_size``: each batch is its own short transaction, so the webhook view
    and the workers are never blocked behind one huge DELETE. ``on_batch`` gets each batch's count."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    deleted_total = 0
    while True:
        with transaction.atomic():
            ids = list(
                _purgeable_webhook_events(before=before, include_failed=include_failed)
                .order_by("received_at", "pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return deleted_total
            # The state is checked again in the DELETE: an event replayed (set pending) meanwhile stays.
            deleted, _by_model = WebhookEvent.objects.filter(pk__in=ids, received_at__lt=before).exclude(
                state=WebhookEventState.PENDING
            ).delete()
        deleted_total += deleted
        if on_batch is not None:
            on_batch(deleted)

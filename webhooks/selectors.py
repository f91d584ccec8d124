"""Reads of the stored deliveries that commands, the admin and the probes share."""

from dataclasses import dataclass
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Count, Max, Min, Q

from webhooks.models import WebhookEvent, WebhookEventState

# Processed and unroutable events are history once they are old; pending ones are still to be applied and
# failed ones are evidence for a replay, so neither goes without an explicit decision.
PURGEABLE_STATES = (WebhookEventState.PROCESSED, WebhookEventState.UNROUTABLE)


def purgeable_webhook_events(*, before: datetime, include_failed: bool):
    states = [*PURGEABLE_STATES, WebhookEventState.FAILED] if include_failed else list(PURGEABLE_STATES)
    return WebhookEvent.objects.filter(state__in=states, received_at__lt=before)


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


@dataclass(frozen=True)
class WebhookHealth:
    last_received_at: datetime | None
    pending: int
    oldest_pending_at: datetime | None
    failed: int


def summarize_webhook_health(*, phone_number_id: str | None = None, using: str = DEFAULT_DB_ALIAS) -> WebhookHealth:
    """What our side knows about webhook delivery, for one number's events or for all of them; ``using``: the
    database a report reads (database/replica.py)."""
    events = WebhookEvent.objects.using(using)
    if phone_number_id is not None:
        events = events.filter(phone_number_id=phone_number_id)
    pending = events.filter(state=WebhookEventState.PENDING).aggregate(count=Count("pk"), oldest=Min("received_at"))
    return WebhookHealth(
        last_received_at=events.aggregate(last=Max("received_at"))["last"],
        pending=pending["count"],
        oldest_pending_at=pending["oldest"],
        failed=events.filter(state=WebhookEventState.FAILED).count(),
    )


def count_webhook_events_by_state(*, since: datetime | None = None, using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Events per state (every state present, zero included), received since ``since`` or ever."""
    events = WebhookEvent.objects.using(using)
    if since is not None:
        events = events.filter(received_at__gte=since)
    counts = dict.fromkeys(WebhookEventState.values, 0)
    for row in events.values("state").annotate(count=Count("pk")).order_by():
        counts[row["state"]] = row["count"]
    return counts


def count_purgeable_webhook_events(*, before: datetime, include_failed: bool = False) -> dict[str, int]:
    """How many events ``purge_webhook_events`` would delete, per state."""
    rows = purgeable_webhook_events(before=before, include_failed=include_failed).values("state")
    return {row["state"]: row["count"] for row in rows.annotate(count=Count("pk")).order_by("state")}

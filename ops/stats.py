"""Operational numbers for the inbox (``manage.py inbox_stats``): the Celery queue, webhook events, and
per business number conversations and message traffic. Reads only."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from django.db.models import Count, Q
from django.utils import timezone

from conversations.models import BusinessNumber, Direction, Message, MessageStatus
from database.replica import REPLICA, read_replica
from ops.redis_client import redis_client, redis_configured
from webhooks.selectors import count_webhook_events_by_state, summarize_webhook_health

# Celery's default queue: a Redis list of this name on the broker.
CELERY_QUEUE = "celery"
RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class NumberStats:
    phone_number_id: str
    name: str
    conversations: int
    messages_in_24h: int
    messages_out_24h: int


@dataclass(frozen=True)
class InboxStats:
    at: datetime
    # None when there is no broker queue to measure (embedded: tasks run in-process).
    celery_queue_depth: int | None
    celery_queue_problem: str
    oldest_pending_webhook_at: datetime | None
    pending_webhooks: int
    webhooks_by_state_24h: dict[str, int]
    failed_webhooks_ever: int
    numbers: list[NumberStats]
    outbound_pending: int
    outbound_failed: int
    database: str  # what the figures were read from: "primary" or "replica"

    @property
    def oldest_pending_webhook_age_seconds(self) -> float | None:
        if self.oldest_pending_webhook_at is None:
            return None
        return max(0.0, (self.at - self.oldest_pending_webhook_at).total_seconds())


def collect_inbox_stats() -> InboxStats:
    now = timezone.now()
    since = now - RECENT
    depth, problem = celery_queue_depth()
    # A report: the read replica when it is up and caught up (database/replica.py), every query from the same one.
    using = read_replica()
    webhooks = summarize_webhook_health(using=using)
    recent = Q(conversations__messages__timestamp__gte=since)
    numbers = (
        BusinessNumber.objects.using(using)
        .order_by("pk")
        .annotate(
            conversation_count=Count("conversations", distinct=True),
            inbound_24h=Count(
                "conversations__messages",
                filter=recent & Q(conversations__messages__direction=Direction.INBOUND),
                distinct=True,
            ),
            outbound_24h=Count(
                "conversations__messages",
                filter=recent & Q(conversations__messages__direction=Direction.OUTBOUND),
                distinct=True,
            ),
        )
    )
    outbound = (
        Message.objects.using(using)
        .filter(direction=Direction.OUTBOUND)
        .aggregate(
            pending=Count("pk", filter=Q(status=MessageStatus.PENDING)),
            failed=Count("pk", filter=Q(status=MessageStatus.FAILED)),
        )
    )
    return InboxStats(
        at=now,
        celery_queue_depth=depth,
        celery_queue_problem=problem,
        oldest_pending_webhook_at=webhooks.oldest_pending_at,
        pending_webhooks=webhooks.pending,
        webhooks_by_state_24h=count_webhook_events_by_state(since=since, using=using),
        failed_webhooks_ever=webhooks.failed,
        numbers=[
            NumberStats(
                phone_number_id=n.phone_number_id,
                name=str(n),
                conversations=n.conversation_count,
                messages_in_24h=n.inbound_24h,
                messages_out_24h=n.outbound_24h,
            )
            for n in numbers
        ],
        outbound_pending=outbound["pending"],
        outbound_failed=outbound["failed"],
        database="replica" if using == REPLICA else "primary",
    )


def celery_queue_depth() -> tuple[int | None, str]:
    """``LLEN celery`` on the Redis broker: (depth, "") or (None, why not)."""
    if not redis_configured():
        return None, "n/a (embedded)"
    try:
        client = redis_client(timeout=2)
        try:
            return int(client.llen(CELERY_QUEUE)), ""
        finally:
            client.close()
    except redis.RedisError as error:
        return None, f"unavailable ({type(error).__name__}: {error})"

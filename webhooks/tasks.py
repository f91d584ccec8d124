"""Celery tasks for webhook events: each calls one function of the drain."""

from celery import shared_task

from webhooks import drain
from webhooks.services import DRAIN_TASK


@shared_task(
    name=DRAIN_TASK,
    # Acknowledged when it starts, unlike the other tasks. A drain's work is the pending rows, not its
    # message: if its worker dies, the flag expires and the sweep asks for another. A drain runs for seconds,
    # and a late-ack message still unacknowledged when Redis drops made the worker exit ("Unrecoverable error"
    # in kombu's restore of unacked messages; the Redis fault drill).
    acks_late=False,
    # Transient: the database went away or a deadlock was detected; the drain is retried with backoff (its
    # events stay pending). A bug for one event marks that event failed, inside the drain.
    autoretry_for=drain.TRANSIENT_DB_ERRORS,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,  # past that, the beat sweep asks for a new drain while events are pending
)
def drain_webhook_events_task(slot: int = 0) -> int:
    return drain.drain_webhook_events(slot=slot)


@shared_task(acks_late=False)  # periodic and idempotent: a lost run is the next run
def sweep_pending_webhook_events() -> int:
    return drain.sweep_pending_webhook_events()

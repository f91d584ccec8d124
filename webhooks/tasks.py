"""Celery tasks for webhook events: interfaces that call one service each."""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from webhooks import services

# Transient: the database went away or a deadlock was detected; the drain is retried with backoff (its
# events stay pending). A bug in our code for one event marks that event failed, inside the drain.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@shared_task(
    # Acknowledged when it starts, unlike the other tasks. A drain's work is the pending rows, not its
    # message: if its worker dies, the flag goes stale and the sweep starts another. A drain runs for
    # seconds, and a late-ack message still unacknowledged when Redis drops made the worker exit
    # ("Unrecoverable error" in kombu's restore of unacked messages; the Redis fault drill).
    acks_late=False,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,  # past that, the beat sweep requests a new drain while events are pending
)
def drain_webhook_events_task(slot: int = 0) -> int:
    return services.drain_webhook_events(slot=slot)


@shared_task(acks_late=False)  # periodic and idempotent: a lost run is the next run (see the drain's note)
def sweep_pending_webhook_events() -> int:
    return services.sweep_pending_webhook_events()

"""Celery tasks for webhook events: interfaces that take ids and call one service each."""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from config.logs import log_context
from webhooks import services

# Transient: the database went away or a deadlock was detected. Anything else is a bug in our code
# for this event, recorded on the event for an admin to see and replay.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


def _record_failure(self, exc, task_id, args, kwargs, einfo):
    services.mark_webhook_event_failed(event_id=args[0], error=f"{type(exc).__name__}: {exc}\n{einfo}")


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
    on_failure=_record_failure,
)
def process_webhook_event_task(self, event_id: int) -> str:
    with log_context(webhook_event_id=event_id):  # every line logged for this event carries its id
        event = services.process_webhook_event(event_id=event_id)
    return "locked-elsewhere" if event is None else event.state


@shared_task(acks_late=True)
def sweep_pending_webhook_events() -> int:
    return services.sweep_pending_webhook_events()

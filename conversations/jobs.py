"""The inbox's work for Celery workers, by name: the services enqueue it here, and conversations/tasks.py
registers each task under its name and calls the services, so services and tasks never import each other.

Enqueueing never fails the caller: the work is already a row (a pending message, a pending download, a read
receipt owed), and the outbound sweep hands it to a worker again if the broker was away
(``config.celery.enqueue_on_commit``)."""

from celery import Task

from config.celery import app, enqueue_on_commit

# The names that messages already queued carry: a renamed task would leave them to no worker.
DELIVER_OUTBOUND_MESSAGE = "conversations.tasks.deliver_outbound_message_task"
DOWNLOAD_INBOUND_MEDIA = "conversations.tasks.download_inbound_media_task"
SEND_READ_RECEIPT = "conversations.tasks.send_read_receipt_task"
SEND_TYPING_INDICATOR = "conversations.tasks.send_typing_indicator_task"
# Enqueued by no service: Celery beat runs the sweep (CELERY_BEAT_SCHEDULE).
SWEEP_OUTBOUND_WORK = "conversations.tasks.sweep_outbound_work_task"
SYNC_TEMPLATES = "conversations.tasks.sync_templates_task"
ASSIGN_WAITING_CONVERSATIONS = "conversations.tasks.assign_waiting_conversations_task"
# Run by Celery beat: snoozes that ended, stale sockets, waiting conversations.
SWEEP_CONVERSATIONS = "conversations.tasks.sweep_conversations_task"
# Run by Celery beat: queues one POLL_NUMBER per number (Meta's number fields, backing the webhooks up).
POLL_NUMBERS = "conversations.tasks.poll_numbers_task"
POLL_NUMBER = "conversations.tasks.poll_number_task"


def enqueue(name: str, *args) -> None:
    """Hand ``name(*args)`` to a worker once the current transaction commits (at once outside one)."""
    enqueue_on_commit(_task(name), *args)


def enqueue_now(name: str, *args) -> None:
    """Hand ``name(*args)`` to a worker at once, for work worth nothing later; a broker away raises."""
    _task(name).delay(*args)


def _task(name: str) -> Task:
    """Every process registers every app's tasks at start-up (``config.apps``), so a name that is not
    registered raises here instead of going, by name, to a queue no worker reads."""
    return app.tasks[name]

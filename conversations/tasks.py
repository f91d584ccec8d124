"""Celery tasks for the inbox: interfaces that take ids, call one service and own the retry policy. Each is
registered under its name in conversations/jobs.py, by which the services enqueue it."""

from celery import shared_task
from django.conf import settings

from conversations import jobs
from conversations.services import account, media, outbound, templates, workflow
from conversations.services.errors import RetryLater

RETRY_POLICY = {
    "autoretry_for": (RetryLater,),
    # The outbound sweep counts on a retry coming within this backoff (services/outbound.py, _release_for_retry).
    "retry_backoff": settings.TASK_RETRY_BACKOFF_SECONDS,
    "retry_backoff_max": settings.TASK_RETRY_BACKOFF_MAX_SECONDS,
    "retry_jitter": True,
}


def _fail_message(self, exc, task_id, args, kwargs, einfo):
    outbound.fail_outbound_message(
        message_id=args[0], code=None, title=f"Not sent after {self.max_retries + 1} tries: {exc}"
    )


def _fail_media(self, exc, task_id, args, kwargs, einfo):
    media.fail_inbound_media(message_id=args[0], error=str(exc))


# Acknowledged as it starts, unlike the other tasks: Celery cancels the running late-acknowledged tasks of a
# worker that loses its broker (CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS), and a send cut
# off after its claim stays claimed, then unconfirmed, whether or not Meta had it. A send lost with its worker
# is the outbound sweep's, which finds it by its row either way (requeue_stranded_messages).
@shared_task(
    name=jobs.DELIVER_OUTBOUND_MESSAGE,
    bind=True,
    acks_late=False,
    max_retries=8,
    on_failure=_fail_message,
    **RETRY_POLICY,
)
def deliver_outbound_message_task(self, message_id: int) -> str:
    return outbound.deliver_outbound_message(message_id=message_id)


@shared_task(
    name=jobs.DOWNLOAD_INBOUND_MEDIA,
    bind=True,
    acks_late=True,
    max_retries=settings.MEDIA_DOWNLOAD_MAX_RETRIES,
    on_failure=_fail_media,
    **RETRY_POLICY,
)
def download_inbound_media_task(self, message_id: int) -> str:
    return media.download_inbound_media(message_id=message_id)


@shared_task(name=jobs.SEND_READ_RECEIPT, acks_late=True, max_retries=3, **RETRY_POLICY)
def send_read_receipt_task(conversation_id: int) -> bool:
    return outbound.send_read_receipt(conversation_id=conversation_id)


# Meta drops a typing indicator after 25 s anyway: one that cannot go out at once is not retried.
@shared_task(name=jobs.SEND_TYPING_INDICATOR, acks_late=True, ignore_result=True)
def send_typing_indicator_task(conversation_id: int) -> bool:
    try:
        return outbound.send_typing_indicator(conversation_id=conversation_id)
    except RetryLater:
        return False


@shared_task(name=jobs.SWEEP_OUTBOUND_WORK, acks_late=False)  # periodic and idempotent: a lost run is the next run
def sweep_outbound_work_task() -> dict[str, int]:
    return outbound.sweep_outbound_work()


@shared_task(name=jobs.SYNC_TEMPLATES, acks_late=True, max_retries=3, **RETRY_POLICY)
def sync_templates_task(number_id: int) -> int:
    return templates.sync_templates_for(number_id=number_id)


# Idempotent: it assigns only what is still waiting, under the members' limits as they are when it runs.
@shared_task(name=jobs.ASSIGN_WAITING_CONVERSATIONS, acks_late=True, ignore_result=True)
def assign_waiting_conversations_task(number_id: int) -> int:
    return workflow.assign_waiting_conversations(number_id=number_id)


@shared_task(name=jobs.SWEEP_CONVERSATIONS, acks_late=False)  # periodic and idempotent: a lost run is the next run
def sweep_conversations_task() -> dict[str, int]:
    return workflow.sweep_conversations()


@shared_task(name=jobs.POLL_NUMBERS, acks_late=False)  # periodic and idempotent: a lost run is the next run
def poll_numbers_task() -> int:
    return account.poll_numbers()


# Idempotent: a poll that finds nothing new records nothing.
@shared_task(name=jobs.POLL_NUMBER, acks_late=True, max_retries=5, **RETRY_POLICY)
def poll_number_task(number_id: int) -> bool:
    return account.poll_number(number_id=number_id)

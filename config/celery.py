"""The Celery application; its settings come from Django settings under the CELERY_ namespace.

Also the one way services hand work to a worker (``enqueue_on_commit``) and how a retry waits its backoff
when tasks run in-process (``InboxTask``)."""

import logging
import os
import threading
from datetime import datetime

from celery import Celery, Task, signals
from celery.exceptions import Ignore

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

logger = logging.getLogger(__name__)


class InboxTask(Task):
    """Under a worker a retry waits its countdown in the broker. Run in-process (embedded ``make run``,
    ``CELERY_TASK_ALWAYS_EAGER``) Celery would run it again at once, so a Graph API call that fails because
    the other side is not up yet failed every try within a second; with ``EAGER_RETRIES_WAIT`` the retry
    runs on a timer thread after the same countdown instead."""

    def retry(
        self, args=None, kwargs=None, exc=None, throw=True, eta=None, countdown=None, max_retries=None, **options
    ):
        from django.conf import settings

        if not (self.request.is_eager and settings.EAGER_RETRIES_WAIT):
            return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)
        # Raises the task's error once its retries are spent (on_failure runs as under a worker).
        retry = super().retry(args, kwargs, exc, False, eta, countdown, max_retries, **options)
        when = retry.when
        seconds = (when - datetime.now(when.tzinfo)).total_seconds() if isinstance(when, datetime) else float(when or 0)
        _apply_later(seconds=max(seconds, 0.0), signature=retry.sig)
        raise Ignore()  # this run is over; the timer's run is the retry


def _apply_later(*, seconds: float, signature) -> None:
    def run() -> None:
        from django.db import connections

        try:
            signature.apply()
        finally:
            connections.close_all()  # this thread's own connections, opened by the task

    timer = threading.Timer(seconds, run)
    timer.name = f"eager-retry-{signature.task}"
    timer.daemon = True  # a process that exits drops the retry; the outbound sweep finds the work still pending
    timer.start()


def enqueue_on_commit(task, *args) -> None:
    """Send ``task(*args)`` to a worker once the current transaction commits (at once outside one).

    The work itself is already a row (a pending message, a pending download, a read receipt owed), so a
    broker that cannot be reached must not fail what saved it: the failure is logged and the periodic
    outbound sweep (``conversations.services.outbound.sweep_outbound_work``) enqueues the row again later.
    Enqueueing twice does no harm: every task claims its row with a conditional UPDATE or checks its state."""
    from django.db import transaction

    def publish() -> None:
        try:
            task.delay(*args)
        except Exception:
            logger.warning("could not enqueue %s%r; the outbound sweep will", task.name, args, exc_info=True)

    transaction.on_commit(publish)


app = Celery("whatsapp_inbox", task_cls=InboxTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task ids on every log line and JSON worker logs (LOG_FORMAT=json).
import ops.celery_logs  # noqa: E402,F401


@signals.worker_process_init.connect
def _freeze_startup_objects(**kwargs) -> None:
    # Each prefork child, once started: the collector's full passes skip what the worker built before forking.
    from ops.heap import freeze_startup_objects

    freeze_startup_objects()


def prepare_producer() -> None:
    """Do at start-up what a web process's first ``.delay()`` would (~60 ms): import every app's tasks
    module (as a worker does at start), register the tasks, load the result backend and kombu's transport.
    Nothing connects: the pools connect on first use."""
    app.loader.import_default_modules()
    app.finalize(auto=True)
    app.backend  # noqa: B018
    app.amqp.producer_pool  # noqa: B018

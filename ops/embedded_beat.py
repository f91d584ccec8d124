"""Celery beat inside the one process of the embedded mode (``make run`` without DATABASE_URL and REDIS_URL).

There is no broker there, so no beat process: tasks run in the process that asks for them, and the channel layer
lives in Daphne's memory, so what a periodic task publishes reaches the sockets only from Daphne's own process.
``config/bin/run`` sets ``EMBEDDED_BEAT=1`` for that Daphne; ``config/asgi.py`` then starts this thread, which
runs every entry of ``CELERY_BEAT_SCHEDULE`` (snoozes ending, the sweeps, the token clean-up) at its interval, as
beat would. Every such task is idempotent, so a run that overlaps a request changes nothing twice.
"""

import logging
import threading
import time

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


def start_embedded_beat() -> threading.Thread:
    thread = threading.Thread(
        target=run_schedule, kwargs={"stop": threading.Event()}, name="embedded-beat", daemon=True
    )
    thread.start()
    logger.info("embedded beat: %s", ", ".join(sorted(settings.CELERY_BEAT_SCHEDULE)))
    return thread


def run_schedule(*, stop: threading.Event) -> None:
    """Run each scheduled task every ``schedule`` seconds, the first time one interval from now, until ``stop``."""
    schedule = {
        name: (entry["task"], float(entry["schedule"])) for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    }
    due = {name: time.monotonic() + interval for name, (_task, interval) in schedule.items()}
    try:
        while not stop.is_set():
            for name, (task, interval) in schedule.items():
                if time.monotonic() >= due[name]:
                    due[name] = time.monotonic() + interval
                    _run_once(task)
            stop.wait(max(0.05, min(due.values(), default=time.monotonic() + 60) - time.monotonic()))
    finally:
        connections.close_all()  # this thread's own


def _run_once(task_name: str) -> None:
    close_old_connections()
    try:
        current_app.tasks[task_name].apply(throw=True)
    except Exception:  # one failing sweep must not stop the others: it runs again at its next time
        logger.exception("embedded beat: %s failed", task_name)
    finally:
        close_old_connections()

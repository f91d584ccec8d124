"""The Celery application; its settings come from Django settings under the CELERY_ namespace."""
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("whatsapp_inbox")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task ids on every log line and JSON worker logs (LOG_FORMAT=json).
import config.celery_signals  # noqa: E402,F401


@signals.worker_process_init.connect
def _freeze_startup_objects(**kwargs) -> None:
    # Each prefork child, once started: the collector's full passes skip what the worker built before forking.
    from config.heap import freeze_startup_objects

    freeze_startup_objects()


@signals.worker_process_shutdown.connect
def _send_queued_realtime_pushes(**kwargs) -> None:
    # Prefork children may leave without running atexit; the pushes they queued go out first.
    from realtime.publish import flush_pushes

    flush_pushes(timeout=2.0)


def prepare_producer() -> None:
    """Do at start-up what a web process's first ``.delay()`` would (~60 ms): import every app's tasks
    module (as a worker does at start), register the tasks, load the result backend and kombu's transport.
    Nothing connects: the pools connect on first use."""
    app.loader.import_default_modules()
    app.finalize(auto=True)
    app.backend  # noqa: B018
    app.amqp.producer_pool  # noqa: B018

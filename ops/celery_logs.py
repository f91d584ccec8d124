"""Celery's side of structured logs: every line a task logs carries its ``celery_task_id``, and the worker's
own handlers (Celery replaces the root handlers Django configured) use the JSON formatter when
``LOG_FORMAT=json``; then what Celery prints rather than logs (its start-up banner, its shutdown notice) is
logged instead, so every line the worker writes is JSON. Connected from ``config/celery.py``."""

import logging

from celery import signals

from ops.logs import JsonFormatter, celery_task_id_var, request_id_var

logger = logging.getLogger("config.celery")

_task_tokens: dict[str, tuple] = {}


def _json_logs() -> bool:
    from django.conf import settings

    return getattr(settings, "LOG_FORMAT", "plain") == "json"


@signals.before_task_publish.connect
def _carry_request_id(headers=None, **kwargs) -> None:
    # A task enqueued while serving a request logs that request's id too (the webhook POST and the
    # processing of what it stored share one request_id across processes).
    request_id = request_id_var.get()
    if headers is not None and request_id and "request_id" not in headers:
        headers["request_id"] = request_id


@signals.task_prerun.connect
def _bind_task_id(task_id=None, task=None, **kwargs) -> None:
    request_id = getattr(task.request, "request_id", None) if task is not None else None
    tokens = (celery_task_id_var.set(task_id),)
    if request_id:
        tokens += (request_id_var.set(request_id),)
    _task_tokens[task_id] = tokens


@signals.task_postrun.connect
def _unbind_task_id(task_id=None, **kwargs) -> None:
    tokens = _task_tokens.pop(task_id, ())
    for var, token in reversed(list(zip((celery_task_id_var, request_id_var), tokens, strict=False))):
        try:
            var.reset(token)
        except ValueError:  # set in another context (a thread pool); clear it instead
            var.set(None)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_worker_logs(logger: logging.Logger | None = None, **kwargs) -> None:
    if logger is None or not _json_logs():
        return
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())


@signals.celeryd_init.connect
def _no_printed_banner(instance=None, **kwargs) -> None:
    # Celery prints its banner to stdout; with JSON logs it would be the only text a log shipper meets. The
    # warnings it raises next (running as root) go through logging too, as JSON.
    if instance is not None and _json_logs():
        instance.quiet = True
        logging.captureWarnings(True)


@signals.celeryd_after_setup.connect
def _log_start_up(sender=None, instance=None, **kwargs) -> None:
    # What the banner said that an operator needs: which worker, how many processes, which queues.
    if instance is not None and _json_logs():
        logger.info(
            "celery worker %s starting",
            sender,
            extra={
                "concurrency": instance.concurrency,
                "pool": getattr(instance.pool_cls, "__module__", str(instance.pool_cls)),
                "queues": sorted(instance.app.amqp.queues),
            },
        )


@signals.worker_ready.connect
def _no_printed_shutdown_notice(sender=None, **kwargs) -> None:
    # Celery's SIGTERM handler prints "worker: Warm shutdown (MainProcess)". Installed again without the print
    # (the same handler: it still stops the worker warm), and worker_shutting_down below logs the shutdown.
    worker = getattr(sender, "controller", None)
    if worker is not None and _json_logs():
        from celery.apps.worker import install_worker_term_handler

        install_worker_term_handler(worker, verbose=False)


@signals.worker_shutting_down.connect
def _log_shutdown(sig=None, how=None, exitcode=None, **kwargs) -> None:
    if _json_logs():
        logger.info("celery worker: %s shutdown on %s", str(how).lower(), sig, extra={"exitcode": exitcode})

"""Celery's side of structured logs: every line a task logs carries its ``celery_task_id``, and the worker's
own handlers (Celery replaces the root handlers Django configured) use the JSON formatter when
``LOG_FORMAT=json``. Connected from ``config/celery.py``."""
import logging

from celery import signals

from config.logs import JsonFormatter, celery_task_id_var, request_id_var

_task_tokens: dict[str, tuple] = {}


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
    for var, token in reversed(list(zip((celery_task_id_var, request_id_var), tokens))):
        try:
            var.reset(token)
        except ValueError:  # set in another context (a thread pool); clear it instead
            var.set(None)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_worker_logs(logger: logging.Logger | None = None, **kwargs) -> None:
    from django.conf import settings

    if logger is None or getattr(settings, "LOG_FORMAT", "plain") != "json":
        return
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())

"""Structured logs: which request, webhook event and Celery task a log line belongs to.

Three context variables carry the ids; whoever starts a unit of work sets them (``RequestIdMiddleware``
for HTTP, ``ops.celery_logs`` for Celery tasks, ``webhooks.tasks`` around one event) and
``JsonFormatter`` writes them on every line, one JSON object per line, when ``LOG_FORMAT=json``.
"""

import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
webhook_event_id_var: ContextVar[int | None] = ContextVar("webhook_event_id", default=None)
celery_task_id_var: ContextVar[str | None] = ContextVar("celery_task_id", default=None)

CONTEXT_VARS = {
    "request_id": request_id_var,
    "webhook_event_id": webhook_event_id_var,
    "celery_task_id": celery_task_id_var,
}

# An incoming X-Request-ID is kept only if it looks like an id: it ends up in every log line.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_logger = logging.getLogger("inbox.request")
_UNLOGGED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@contextlib.contextmanager
def log_context(**values) -> Iterator[None]:
    """Set ``request_id``, ``webhook_event_id`` and/or ``celery_task_id`` for the lines logged inside."""
    tokens = [(CONTEXT_VARS[name], CONTEXT_VARS[name].set(value)) for name, value in values.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context ids that are set, and any
    ``extra={...}`` fields; ``exc_info`` as a ``exception`` string."""

    _RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in CONTEXT_VARS.items():
            value = var.get()
            if value is not None:
                line[name] = value
        for key, value in record.__dict__.items():
            if key not in self._RESERVED and not key.startswith("_") and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class RequestIdMiddleware:
    """Takes the request id from ``X-Request-ID`` (nginx sets it) or makes one, keeps it in the log
    context for the whole request, echoes it in the response, and logs one access line per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # META, not request.headers: that builds a dict of every header, and Meta's deliveries need none other.
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        started = time.monotonic()
        with log_context(request_id=request_id):
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            # Probes every few seconds and static files (nginx serves them in production) are noise.
            if request.path not in _UNLOGGED_PATHS and not request.path.startswith("/static/"):
                access_logger.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "status": response.status_code,
                        "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    },
                )
        return response

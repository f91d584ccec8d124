"""What gunicorn takes from a config file and not from flags (``config/bin/web`` passes the rest): its own log
lines (start-up, workers booted, exited or timed out) in the app's format, and no access line of its own (the app
writes one). With ``LOG_FORMAT=json`` (production's default) every line the web process writes is then one JSON
object, not JSON from Django and text from gunicorn."""

import os

from django.conf import settings
from gunicorn.glogging import Logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

if settings.LOG_FORMAT == "json":
    logconfig_dict = {
        "formatters": {"json": {"()": "ops.logs.JsonFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
            "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        # Not propagated to the root logger as well: each line once. No gunicorn.access: AppLogger below.
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        },
    }


class AppLogger(Logger):
    """gunicorn's logger without gunicorn's access line. The app writes one line per request itself, with its request
    id, status and duration (``ops.logs.RequestIdMiddleware``); gunicorn turns its own on whenever a
    ``logconfig_dict`` is set, which doubled every request's line and cost ~4 % of a webhook's time in the worker
    (py-spy): the line's fields built, formatted and written for each delivery."""

    @property
    def access_log_enabled(self) -> bool:
        return False


logger_class = AppLogger

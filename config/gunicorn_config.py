"""What gunicorn takes from a config file and not from flags (``config/bin/web`` passes the rest): its own log
lines (start-up, workers booted, exited or timed out) in the app's format. With ``LOG_FORMAT=json`` (production's
default) every line the web process writes is then one JSON object, not JSON from Django and text from gunicorn."""
import os

from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

if settings.LOG_FORMAT == "json":
    logconfig_dict = {
        "formatters": {"json": {"()": "config.logs.JsonFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
            "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        # Not propagated to the root logger as well: each line once.
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }

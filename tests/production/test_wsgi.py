"""``config.wsgi`` as each gunicorn worker imports it while it boots."""

from tests.production.conftest import production_env, python

READY_FOR_THE_FIRST_WEBHOOK = """
import sys
import config.wsgi
from django.db import connection
from config.celery import app
assert "config.urls" in sys.modules and "webhooks.tasks" in sys.modules, "URL map or tasks not imported"
assert app.finalized, "Celery app not finalized"
assert connection.connection is None, "a database connection was opened before the fork"
print("ready")
"""


def test_a_worker_loads_what_the_first_webhook_needs_without_connecting_to_anything():
    # The first delivery a new worker served used to import the URL map and Celery's producer (~160 ms,
    # with the deliveries behind it queued). Connections must stay the worker's own, opened on first use:
    # with nothing listening at these addresses, the import still succeeds.
    env = production_env(DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere", REDIS_URL="redis://127.0.0.1:1/0")
    result = python(READY_FOR_THE_FIRST_WEBHOOK, env=env)
    assert result.returncode == 0 and "ready" in result.stdout, result.stdout + result.stderr

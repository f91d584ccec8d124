"""Test settings: the real PostgreSQL, fixed Meta secrets, fast hashing.

Unit tests run Celery tasks in-process and use the in-memory channel layer; the end-to-end tests start
Daphne and a Celery worker as real processes with ``config.settings.base`` and real Redis instead.
"""

import os

os.environ["DJANGO_READ_DOT_ENV_FILE"] = "0"
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")

from .base import *  # noqa: F403
from .base import env

CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
# A retry runs at once, in the test's own thread and transaction; a test of the embedded retry turns it on.
EAGER_RETRIES_WAIT = False
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
META_APP_SECRET = "test-app-secret"
META_VERIFY_TOKEN = "test-verify-token"
META_GRAPH_API_URL = env("TEST_META_GRAPH_API_URL", default="http://127.0.0.1:9")
MEDIA_ROOT = "/tmp/whatsapp-inbox-test-media"
# Two suites running at once (a developer and CI, or two developers) each need their own database.
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_whatsapp_inbox")}  # noqa: F405
# No replica here, even with DATABASE_REPLICA_URL in the environment: each test runs in a transaction of the
# primary's, which another connection (a replica's, or a test mirror's) never sees, and a read-only replica could
# not hold a test database anyway. tests/database/test_replica.py runs real replicas, in processes of their own.
DATABASES.pop("replica", None)  # noqa: F405
# PBKDF2 stays available so users made here can log in to the real servers of the end-to-end tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
# Throttle and sign-in counters live in the cache across the whole in-process suite; their tests set their own.
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": "10000/min", "user": "100000/min"}}  # noqa: F405
SIGN_IN_FAILURE_RATE = "10000/min"
# Celery runs eagerly here: a lingering drain would hold up every request that stores a webhook.
WEBHOOK_DRAIN_LINGER_SECONDS = 0.0

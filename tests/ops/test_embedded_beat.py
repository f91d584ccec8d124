"""The embedded mode's beat: Daphne's own thread runs beat's schedule, each task at its interval, and one that
fails does not stop the others."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from ops.embedded_beat import run_schedule
from tests.factories import UserFactory
from tests.production.conftest import python


@pytest.mark.django_db(transaction=True)  # the thread has a connection of its own: it sees committed rows only
def test_the_schedule_runs_in_a_thread_at_its_interval_and_a_failure_stops_nothing(settings, caplog):
    user = UserFactory()
    RefreshToken.for_user(user)
    OutstandingToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    settings.CELERY_BEAT_SCHEDULE = {
        "broken": {"task": "no.such.task", "schedule": 0.05},
        "flush-expired-tokens": {"task": "ops.flush_expired_tokens", "schedule": 0.1},
    }
    stop = threading.Event()
    thread = threading.Thread(target=run_schedule, kwargs={"stop": stop})
    started = time.monotonic()
    thread.start()
    try:
        deadline = started + 5
        while OutstandingToken.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not OutstandingToken.objects.exists()
        assert time.monotonic() - started >= 0.1  # not before its first interval
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert "embedded beat: no.such.task failed" in caplog.text


def test_only_make_runs_embedded_daphne_runs_it():
    code = "import os, django; django.setup(); from django.conf import settings; print(settings.EMBEDDED_BEAT)"
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.base", "DJANGO_READ_DOT_ENV_FILE": "0", "PATH": "/usr/bin:/bin"}
    assert python(code, env={**env, "EMBEDDED_BEAT": "1"}).stdout.strip() == "True"
    assert python(code, env=env).stdout.strip() == "False"
    real = {**env, "EMBEDDED_BEAT": "1", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres"}
    assert python(code, env={**real, "REDIS_URL": "redis://127.0.0.1:6379/0"}).stdout.strip() == "False"

"""``/healthz``, ``/readyz`` and ``/metrics`` in-process (ops/health.py)."""
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import OperationalError
from django.utils import timezone

from ops import health
from conversations.models import Direction, MessageStatus
from tests.e2e.conftest import free_port
from tests.factories import MessageFactory
from webhooks.models import WebhookEvent, WebhookEventState

pytestmark = pytest.mark.django_db


def _event(state: str = WebhookEventState.PENDING, *, age_seconds: float = 0) -> WebhookEvent:
    event = WebhookEvent.objects.create(raw_body="{}", state=state)
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - timedelta(seconds=age_seconds))
    return event


def test_healthz_is_ok_without_any_io(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Content-Type"].startswith("text/plain")


def test_readyz_ok_embedded(client, settings):
    settings.REDIS_URL = ""
    _event(age_seconds=10)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["webhook_lag"]["oldest_pending_seconds"] == pytest.approx(10, abs=5)
    assert "redis" not in body["checks"]


def test_readyz_fails_when_the_database_check_fails(client, settings, monkeypatch, caplog):
    settings.REDIS_URL = ""

    def broken():
        raise OperationalError("connection refused")

    monkeypatch.setattr(health, "check_database", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database", "webhook_lag"]
    # The kind of failure, not the driver's text (host names, database names): that goes to the log.
    assert body["checks"]["database"]["error"] == "OperationalError (details in the log)"
    assert "connection refused" not in response.content.decode()
    assert "connection refused" in caplog.text


def test_readyz_fails_when_a_pending_event_is_too_old(client, settings):
    settings.REDIS_URL = ""
    settings.READYZ_MAX_PENDING_WEBHOOK_AGE_SECONDS = 300
    _event(WebhookEventState.PROCESSED, age_seconds=3600)  # old but done: does not count
    _event(age_seconds=30)
    assert client.get("/readyz").status_code == 200
    _event(age_seconds=900)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["webhook_lag"]
    assert "limit 300s" in body["checks"]["webhook_lag"]["error"]


def test_readyz_fails_when_redis_is_down(client, settings):
    # A real connection attempt to a port nothing listens on.
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["celery_worker", "redis"]
    assert body["checks"]["redis"]["error"] == "ConnectionError (details in the log)"
    assert body["checks"]["celery_worker"]["error"].startswith("skipped")
    assert body["checks"]["database"]["ok"] is True


def test_readyz_fails_without_a_celery_worker(client, settings):
    # Redis answers (the suite's own, on 6379) but no worker consumes: the ping times out.
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    settings.READYZ_CELERY_PING_TIMEOUT_SECONDS = 0.3
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["celery_worker"]
    assert body["checks"]["redis"]["ok"] is True
    assert "no Celery worker answered" in body["checks"]["celery_worker"]["error"]


def test_metrics_404_without_a_configured_token(client, settings):
    settings.INTERNAL_API_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_metrics_401_without_and_403_with_a_wrong_token(client, settings):
    settings.INTERNAL_API_TOKEN = "metrics-token"
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == "Bearer"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic bWV0cmljcy10b2tlbg==").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_metrics_in_prometheus_text_format(client, settings):
    settings.INTERNAL_API_TOKEN = "metrics-token"
    settings.REDIS_URL = ""
    for state, count in [("processed", 3), ("failed", 1), ("unroutable", 2)]:
        for _ in range(count):
            _event(state)
    _event(age_seconds=42)
    MessageFactory(direction=Direction.OUTBOUND, status=MessageStatus.FAILED)
    MessageFactory(direction=Direction.OUTBOUND, status=MessageStatus.DELIVERED)
    MessageFactory(direction=Direction.OUTBOUND, status=MessageStatus.DELIVERED)
    MessageFactory(direction=Direction.INBOUND, status=MessageStatus.RECEIVED)

    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in response.content.decode().splitlines()
        if line and not line.startswith("#")
    }
    assert samples["inbox_webhooks_received_total"] == 7
    assert samples["inbox_webhooks_processed_total"] == 3
    assert samples["inbox_webhooks_failed_total"] == 1
    assert samples["inbox_webhooks_unroutable_total"] == 2
    assert samples["inbox_webhooks_pending"] == 1
    assert samples["inbox_webhook_processing_lag_seconds"] == pytest.approx(42, abs=5)
    assert samples['inbox_outbound_messages{status="delivered"}'] == 2
    assert samples['inbox_outbound_messages{status="failed"}'] == 1
    assert samples['inbox_outbound_messages{status="pending"}'] == 0
    assert "inbox_celery_queue_depth" not in samples  # no broker: tasks run in-process
    assert samples["inbox_websockets_open"] >= 0  # tests/realtime checks the gauge follows sockets
    assert "# TYPE inbox_webhooks_received_total counter" in response.content.decode()


def test_metrics_celery_queue_depth_from_the_broker(client, settings):
    import redis

    settings.INTERNAL_API_TOKEN = "metrics-token"
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of the suite's Redis nothing else uses
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.delete("celery")
    try:
        broker.rpush("celery", "task-1", "task-2")
        text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token").content.decode()
    finally:
        broker.delete("celery")
    assert "\ninbox_celery_queue_depth 2\n" in text
    assert "\ninbox_celery_broker_up 1\n" in text


def _samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and not line.startswith("#")
    }


def test_metrics_show_redis_memory_clients_and_evictions(client, settings):
    settings.INTERNAL_API_TOKEN = "metrics-token"
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    samples = _samples(client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token").content.decode())
    assert samples["inbox_redis_up"] == 1
    assert samples["inbox_redis_memory_used_bytes"] > 0
    assert samples["inbox_redis_memory_max_bytes"] >= 0
    assert samples["inbox_redis_connected_clients"] >= 1
    assert samples["inbox_redis_evicted_keys_total"] >= 0
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    down = _samples(client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token").content.decode())
    assert down["inbox_redis_up"] == 0 and "inbox_redis_memory_used_bytes" not in down


def test_metrics_show_database_connections_and_size(client, settings):
    settings.INTERNAL_API_TOKEN = "metrics-token"
    settings.REDIS_URL = ""
    samples = _samples(client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token").content.decode())
    assert samples['inbox_database_connections{state="active"}'] >= 1  # this request's own
    assert samples["inbox_database_max_connections"] >= 1
    assert samples["inbox_database_size_bytes"] > 1_000_000
    # The suite's PostgreSQL does not preload pg_stat_statements: off, and the view is never queried.
    assert samples["inbox_database_statement_stats_enabled"] == 0
    assert not any(name.startswith("inbox_database_slowest_statement") for name in samples)


@pytest.fixture
def postgres_with_statement_stats():
    """A PostgreSQL cluster of the test's own, started with pg_stat_statements preloaded (initdb runs as the
    postgres user, which owns the data directory); stopped and removed at the end."""
    import shutil
    import subprocess
    import tempfile

    bin_dir = Path(f"/usr/lib/postgresql/{_postgres_major()}/bin")
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    tmp_path = Path(tempfile.mkdtemp(prefix="inbox-pg-statements-"))
    data, port = tmp_path / "pgdata", free_port()
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp_path, user="postgres")
        shutil.chown(data, user="postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_postgres, bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    options = f"-p {port} -k {tmp_path} -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements"
    # The server's output goes to its log file: a pipe it inherited would keep run() waiting for its end.
    start = [*as_postgres, bin_dir / "pg_ctl", "-D", data, "-l", tmp_path / "server.log", "-o", options, "-w", "start"]
    subprocess.run(start, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        subprocess.run([*as_postgres, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], stdout=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(tmp_path, ignore_errors=True)


def _postgres_major() -> str:
    return sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])[-1]


def test_metrics_show_the_slowest_statements_where_pg_stat_statements_is_on(postgres_with_statement_stats):
    import psycopg

    with psycopg.connect(postgres_with_statement_stats, autocommit=True) as db:
        db.execute("CREATE EXTENSION pg_stat_statements")
        for _ in range(12):
            db.execute("SELECT pg_sleep(0.01)")
        out = health.Exposition()
        health.database_metrics(out, db=db)
    samples = _samples(out.render())
    assert samples["inbox_database_statement_stats_enabled"] == 1
    slowest = {name: value for name, value in samples.items() if name.startswith("inbox_database_slowest_statement_mean_seconds")}
    assert 1 <= len(slowest) <= health.SLOW_STATEMENTS_SHOWN
    assert max(slowest.values()) >= 0.01  # pg_sleep(0.01), called 12 times

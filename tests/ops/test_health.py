"""``/healthz``, ``/readyz`` and ``/metrics`` in-process (ops/health.py)."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conversations.models import BusinessAccount, Direction, MessageStatus, MessageTemplate
from ops import health
from tests.e2e.conftest import free_port
from tests.factories import (
    BusinessNumberFactory,
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    OutboundMessageFactory,
)
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


def _scrape(client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token")
    assert response.status_code == 200
    return response.content.decode()


def _samples(text: str) -> dict[str, float]:
    """Every sample as Prometheus reads it, keyed as a query names it: ``name`` or ``name{label="value"}``."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


# What dashboards and alerts are built on: each family as Prometheus reads it (a counter's family name without its
# _total; its samples keep it), with its type, help text and label names.
DASHBOARD_METRICS = {
    "inbox_webhooks_received": ("counter", "Webhook deliveries stored (rows in the webhook event table).", set()),
    "inbox_webhooks_processed": ("counter", "Webhook events in state processed.", set()),
    "inbox_webhooks_failed": ("counter", "Webhook events in state failed.", set()),
    "inbox_webhooks_unroutable": ("counter", "Webhook events in state unroutable.", set()),
    "inbox_webhooks_pending": ("gauge", "Webhook events stored but not processed yet.", set()),
    "inbox_webhook_processing_lag_seconds": ("gauge", "Age of the oldest pending webhook event (0 when none).", set()),
    "inbox_celery_broker_up": ("gauge", "1 when the Celery broker answered.", set()),
    "inbox_celery_queue_depth": ("gauge", "Tasks waiting in the Celery queue.", set()),
    "inbox_redis_up": ("gauge", "1 when Redis answered.", set()),
    "inbox_redis_memory_used_bytes": ("gauge", "Memory Redis uses.", set()),
    "inbox_redis_memory_max_bytes": ("gauge", "Redis maxmemory (0: no limit).", set()),
    "inbox_redis_connected_clients": ("gauge", "Clients connected to Redis.", set()),
    "inbox_redis_evicted_keys": ("counter", "Keys Redis evicted to stay under maxmemory.", set()),
    "inbox_database_connections": ("gauge", "Connections to this database by state (pg_stat_activity).", {"state"}),
    "inbox_database_max_connections": ("gauge", "PostgreSQL max_connections.", set()),
    "inbox_database_size_bytes": ("gauge", "Size of this database on disk.", set()),
    "inbox_database_statement_stats_enabled": (
        "gauge",
        "1 when pg_stat_statements is loaded and installed here.",
        set(),
    ),
    "inbox_websockets_open": ("gauge", "Inbox WebSockets open across every Daphne process.", set()),
    "inbox_outbound_messages": ("gauge", "Outbound messages by their current status.", {"status"}),
    "inbox_number_quality": (
        "gauge",
        "Quality Meta rates the number with: 3 green, 2 yellow, 1 red, 0 not rated.",
        {"phone_number_id", "rating"},
    ),
    "inbox_number_messaging_limit": (
        "gauge",
        "Distinct customers a day the number's portfolio may reach with business-initiated messages "
        "(-1: unlimited or not known).",
        {"phone_number_id", "tier"},
    ),
    "inbox_number_messaging_limit_used": (
        "gauge",
        "Distinct customers the number's portfolio reached with business-initiated messages in 24 hours.",
        {"phone_number_id"},
    ),
    "inbox_number_templates": ("gauge", "The number's account's templates by status.", {"phone_number_id", "status"}),
}


def test_metrics_keep_the_names_types_help_and_labels_dashboards_use(client, settings):
    number = BusinessNumberFactory()
    MessageTemplate.objects.create(waba_id=number.waba_id, name="welcome", language="en", status="APPROVED")
    settings.INTERNAL_API_TOKEN = "metrics-token"
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of the suite's Redis nothing else uses
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token")
    assert response.status_code == 200
    # Prometheus picks its parser by this header: its text format, at the version the body is written in.
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    assert response["Content-Type"].startswith("text/plain; version=")
    families = {
        family.name: (family.type, family.documentation, {name for sample in family.samples for name in sample.labels})
        for family in text_string_to_metric_families(response.content.decode())
    }
    assert families == DASHBOARD_METRICS
    # The names queries use for counters are the samples', with _total.
    samples = _samples(response.content.decode())
    assert {"inbox_webhooks_received_total", "inbox_redis_evicted_keys_total"} <= set(samples)


def test_metrics_count_webhook_events_and_outbound_messages(client, settings):
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

    samples = _samples(_scrape(client))
    assert samples["inbox_webhooks_received_total"] == 7
    assert samples["inbox_webhooks_processed_total"] == 3
    assert samples["inbox_webhooks_failed_total"] == 1
    assert samples["inbox_webhooks_unroutable_total"] == 2
    assert samples["inbox_webhooks_pending"] == 1
    assert samples["inbox_webhook_processing_lag_seconds"] == pytest.approx(42, abs=5)
    assert {name: value for name, value in samples.items() if name.startswith("inbox_outbound_messages")} == {
        'inbox_outbound_messages{status="pending"}': 0,
        'inbox_outbound_messages{status="unconfirmed"}': 0,
        'inbox_outbound_messages{status="sent"}': 0,
        'inbox_outbound_messages{status="delivered"}': 2,
        'inbox_outbound_messages{status="read"}': 0,
        'inbox_outbound_messages{status="played"}': 0,
        'inbox_outbound_messages{status="failed"}': 1,
    }  # the inbound message is not among them
    # No broker: tasks run in-process, so there is no queue (and no Redis) to report on.
    assert not any(name.startswith(("inbox_celery_", "inbox_redis_")) for name in samples)
    assert samples["inbox_websockets_open"] >= 0  # tests/realtime checks the gauge follows sockets


def test_metrics_show_no_lag_when_nothing_is_pending(client, settings):
    settings.INTERNAL_API_TOKEN = "metrics-token"
    settings.REDIS_URL = ""
    _event(WebhookEventState.PROCESSED, age_seconds=3600)
    samples = _samples(_scrape(client))
    assert samples["inbox_webhooks_pending"] == 0
    assert samples["inbox_webhook_processing_lag_seconds"] == 0


def test_metrics_celery_queue_depth_from_the_broker(client, settings):
    import redis

    settings.INTERNAL_API_TOKEN = "metrics-token"
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of the suite's Redis nothing else uses
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.delete("celery")
    try:
        broker.rpush("celery", "task-1", "task-2")
        samples = _samples(_scrape(client))
    finally:
        broker.delete("celery")
    assert samples["inbox_celery_queue_depth"] == 2
    assert samples["inbox_celery_broker_up"] == 1


def test_metrics_show_redis_memory_clients_and_evictions(client, settings):
    settings.INTERNAL_API_TOKEN = "metrics-token"
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    samples = _samples(_scrape(client))
    assert samples["inbox_redis_up"] == 1
    assert samples["inbox_redis_memory_used_bytes"] > 0
    assert samples["inbox_redis_memory_max_bytes"] >= 0
    assert samples["inbox_redis_connected_clients"] >= 1
    assert samples["inbox_redis_evicted_keys_total"] >= 0
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    down = _samples(_scrape(client))
    assert down["inbox_redis_up"] == 0 and "inbox_redis_memory_used_bytes" not in down
    # The broker is that Redis: down too, and no queue depth to guess at.
    assert down["inbox_celery_broker_up"] == 0 and "inbox_celery_queue_depth" not in down


def test_metrics_show_database_connections_and_size(client, settings):
    settings.INTERNAL_API_TOKEN = "metrics-token"
    settings.REDIS_URL = ""
    samples = _samples(_scrape(client))
    assert samples['inbox_database_connections{state="active"}'] >= 1  # this request's own
    assert samples["inbox_database_max_connections"] >= 1
    # Exact bytes, not rounded to six digits: a dashboard's growth rate needs them.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        assert samples["inbox_database_size_bytes"] == pytest.approx(cursor.fetchone()[0], rel=0.01)
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
    subprocess.run(
        [*as_postgres, bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "postgres"], check=True, capture_output=True
    )
    options = f"-p {port} -k {tmp_path} -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements"
    # The server's output goes to its log file: a pipe it inherited would keep run() waiting for its end.
    start = [*as_postgres, bin_dir / "pg_ctl", "-D", data, "-l", tmp_path / "server.log", "-o", options, "-w", "start"]
    subprocess.run(start, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        subprocess.run(
            [*as_postgres, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            timeout=60,
        )
        shutil.rmtree(tmp_path, ignore_errors=True)


def _postgres_major() -> str:
    return sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])[-1]


def test_metrics_show_the_slowest_statements_where_pg_stat_statements_is_on(postgres_with_statement_stats):
    import psycopg

    with psycopg.connect(postgres_with_statement_stats, autocommit=True) as db:
        db.execute("CREATE EXTENSION pg_stat_statements")
        for _ in range(12):
            db.execute("SELECT pg_sleep(0.01)")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(health.DatabaseCollector(db))
        text = generate_latest(registry).decode()
    samples = _samples(text)
    assert samples["inbox_database_statement_stats_enabled"] == 1
    slowest = {name: value for name, value in samples.items() if name.startswith("inbox_database_slowest")}
    assert 1 <= len(slowest) <= health.SLOW_STATEMENTS_SHOWN
    assert all(name.startswith('inbox_database_slowest_statement_mean_seconds{queryid="') for name in slowest)
    assert max(slowest.values()) >= 0.01  # pg_sleep(0.01), called 12 times
    family = next(f for f in text_string_to_metric_families(text) if f.name.startswith("inbox_database_slowest"))
    assert (family.type, family.documentation) == (
        "gauge",
        "Mean time of the 5 slowest statements (10+ calls), by pg_stat_statements query id.",
    )


def test_metrics_show_each_numbers_quality_messaging_limit_and_templates(client, settings):
    settings.INTERNAL_API_TOKEN = "metrics-token"
    settings.REDIS_URL = ""
    rated = BusinessNumberFactory(phone_number_id="1001", waba_id="waba-1", quality_rating="YELLOW")
    BusinessNumberFactory(phone_number_id="1002", waba_id="waba-2", messaging_limit_tier="TIER_1K")
    BusinessAccount.objects.create(waba_id="waba-1", messaging_limit="TIER_250")
    for name, status in [("welcome", "APPROVED"), ("promo", "PAUSED"), ("offer", "APPROVED")]:
        MessageTemplate.objects.create(waba_id=rated.waba_id, name=name, language="en", status=status)
    contact = ContactFactory()
    OutboundMessageFactory(
        conversation=ConversationFactory(number=rated, contact=contact),
        type="template",
        business_initiated=True,
        timestamp=timezone.now(),
    )
    samples = _samples(_scrape(client))
    assert samples['inbox_number_quality{phone_number_id="1001",rating="YELLOW"}'] == 2
    assert samples['inbox_number_quality{phone_number_id="1002",rating=""}'] == 0
    assert samples['inbox_number_messaging_limit{phone_number_id="1001",tier="TIER_250"}'] == 250
    assert samples['inbox_number_messaging_limit{phone_number_id="1002",tier="TIER_1K"}'] == 1000
    assert samples['inbox_number_messaging_limit_used{phone_number_id="1001"}'] == 1
    assert samples['inbox_number_templates{phone_number_id="1001",status="APPROVED"}'] == 2
    assert samples['inbox_number_templates{phone_number_id="1001",status="PAUSED"}'] == 1
    assert not any(name.startswith('inbox_number_templates{phone_number_id="1002"') for name in samples)
    # More numbers, the same queries: the scrape reads them together.
    with CaptureQueriesContext(connection) as two:
        _scrape(client)
    BusinessNumberFactory.create_batch(5)
    with CaptureQueriesContext(connection) as seven:
        _scrape(client)
    assert len(seven) == len(two)

"""The production processes as deployed: ``config/bin/web`` (gunicorn, config.wsgi) and ``config/bin/worker``
(Celery) with ``config.settings.production``, a Redis of the test's own and the test database; requests come in as
nginx passes them (Host of FRONTEND_URL, X-Forwarded-Proto: https). Everything started here is stopped here, by PID."""

import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from sandbox.simulation import envelope, message_change, signed_request
from tests.e2e.conftest import BIN, RedisServer, free_port, stop_process, wait_for
from tests.production.conftest import APP_SECRET, HOST, production_env, start_process
from webhooks.models import WebhookEvent, WebhookEventState

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

METRICS_TOKEN = "metrics-token-for-tests-0123456789"
# The production processes' connections carry this name: a test that cuts them cuts theirs only, never the test
# process's own or another suite's.
APPLICATION_NAME = "inbox-production-test"
NGINX_HEADERS = {"Host": HOST, "X-Forwarded-Proto": "https"}


@dataclass
class Production:
    base_url: str
    logs: Path

    def log_lines(self, name: str) -> list[dict]:
        return json_lines(self.logs / f"{name}.log")


def json_lines(log: Path) -> list[dict]:
    """Every line of a process's output, each parsed as one JSON object (a line that is not fails the test)."""
    return [json.loads(raw) for raw in log.read_text(errors="replace").splitlines()]


@pytest.fixture(scope="module")
def production(e2e_database_url, django_db_blocker) -> Iterator[Production]:
    logs = Path(tempfile.mkdtemp(prefix="production-logs-"))
    redis = RedisServer(port=free_port(), workdir=str(logs))
    redis.start()
    port = free_port()
    env = production_env(
        DATABASE_URL=e2e_database_url,
        REDIS_URL=redis.url,
        META_APP_SECRET=APP_SECRET,
        INTERNAL_API_TOKEN=METRICS_TOKEN,
        PYTHON=str(BIN / "python"),
        WEB_BIND=f"127.0.0.1:{port}",
        WEB_WORKERS="2",
        WORKER_CONCURRENCY="2",
        META_GRAPH_API_URL="http://127.0.0.1:9",
        PGAPPNAME=APPLICATION_NAME,
    )
    processes = []
    try:
        for name in ("web", "worker"):
            processes.append(start_process(name, env=env, log=logs / f"{name}.log"))
        base_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{base_url}/healthz", timeout=1).status_code == 200, timeout=30, what="gunicorn")
        wait_for(lambda: b"ready." in (logs / "worker.log").read_bytes(), timeout=40, what="celery worker")
        yield Production(base_url=base_url, logs=logs)
    finally:
        for process in processes:
            stop_process(process)
        redis.stop()
        if os.environ.get("E2E_KEEP_LOGS"):
            print(f"production logs kept in {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)


def test_signed_webhook_through_gunicorn_is_stored_processed_and_logged(production):
    payload = envelope(
        waba_id="1",
        changes=[message_change(phone_number_id="999000111", display_phone_number="15550009999", wa_id="15551234567")],
    )
    body, headers = signed_request(payload, app_secret=APP_SECRET)
    response = requests.post(
        f"{production.base_url}/api/webhook",
        data=body,
        headers={**headers, **NGINX_HEADERS, "X-Request-ID": "req-gunicorn-1"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == "req-gunicorn-1"
    # Sized, not chunked: gunicorn chunks an HTTP/1.1 answer that has no Content-Length (a write more per delivery).
    assert response.headers["Content-Length"] == str(len(response.content))
    assert "Transfer-Encoding" not in response.headers
    # Meta's answer takes the webhook's short middleware chain (webhooks.fastpath); pages keep every header.
    assert "Strict-Transport-Security" not in response.headers
    page = requests.get(f"{production.base_url}/login/", headers=NGINX_HEADERS, timeout=10)
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    event_id = response.json()["event_id"]

    event = wait_for(
        lambda: WebhookEvent.objects.exclude(state=WebhookEventState.PENDING).filter(pk=event_id).first(),
        timeout=30,
        what="the worker to process the event",
    )
    assert event.state == WebhookEventState.UNROUTABLE

    # The same request id on the web's line and on the worker's lines for this event, across processes.
    access = [line for line in production.log_lines("web") if line.get("request_id") == "req-gunicorn-1"]
    assert [line["message"] for line in access] == ["POST /api/webhook 200"]
    # One access line per request, the app's: gunicorn's own would repeat it without the request id.
    assert not [line for line in production.log_lines("web") if line.get("logger") == "gunicorn.access"]
    worker_lines = wait_for(
        lambda: [line for line in production.log_lines("worker") if line.get("webhook_event_id") == event_id],
        timeout=10,
        what="the worker's log lines for the event",
    )
    assert any("unknown phone_number_id" in line["message"] for line in worker_lines)
    assert {line["request_id"] for line in worker_lines} == {"req-gunicorn-1"}
    task_ids = {line["celery_task_id"] for line in worker_lines}
    assert len(task_ids) == 1 and all(task_ids)


def test_a_database_connection_the_server_closed_is_replaced_not_answered_503(production):
    def deliver(wa_id: str) -> requests.Response:
        payload = envelope(
            waba_id="1",
            changes=[message_change(phone_number_id="999000111", display_phone_number="15550009999", wa_id=wa_id)],
        )
        body, headers = signed_request(payload, app_secret=APP_SECRET)
        return requests.post(
            f"{production.base_url}/api/webhook", data=body, headers={**headers, **NGINX_HEADERS}, timeout=10
        )

    assert [deliver("15551230001").status_code for _ in range(4)] == [200] * 4  # the web workers hold a connection
    # PostgreSQL restarted, or an idle connection was cut: every connection the web workers keep is dead. Theirs
    # are idle after the webhook's INSERT; the Celery worker's may be busy with these very deliveries.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s AND state = 'idle' AND query LIKE 'INSERT INTO webhooks_webhookevent %%'",
            [APPLICATION_NAME],
        )
        assert cursor.fetchone()[0] >= 1
    responses = [deliver(f"1555123001{n}").status_code for n in range(4)]
    assert responses == [200] * 4, "Django's health check replaces the dead connection before the INSERT"
    # The worker done with them before the test's tables are emptied (its locks and the TRUNCATE would deadlock).
    wait_for(
        lambda: not WebhookEvent.objects.filter(state=WebhookEventState.PENDING).exists(),
        timeout=30,
        what="the worker to process the deliveries",
    )


def test_every_line_the_web_process_writes_is_one_json_object(production):
    requests.get(f"{production.base_url}/healthz", headers=NGINX_HEADERS, timeout=10)
    lines = production.log_lines("web")  # gunicorn's own lines included: a log shipper parses every one
    gunicorn = [line["message"] for line in lines if line["logger"] == "gunicorn.error"]
    assert any(message.startswith("Starting gunicorn") for message in gunicorn), gunicorn
    assert sum(message.startswith("Booting worker") for message in gunicorn) == 2, gunicorn


def test_every_line_the_worker_writes_from_start_to_warm_shutdown_is_one_json_object(e2e_database_url, tmp_path):
    redis = RedisServer(port=free_port(), workdir=str(tmp_path))
    redis.start()
    log = tmp_path / "worker.log"
    env = production_env(
        DATABASE_URL=e2e_database_url,
        REDIS_URL=redis.url,
        PYTHON=str(BIN / "python"),
        WORKER_CONCURRENCY="1",
        META_GRAPH_API_URL="http://127.0.0.1:9",
    )
    worker = start_process("worker", env=env, log=log)
    try:
        wait_for(lambda: b"ready." in log.read_bytes(), timeout=40, what="celery worker")
        worker.send_signal(signal.SIGTERM)  # what systemd and docker stop send
        assert worker.wait(timeout=30) == 0
    finally:
        stop_process(worker)
        redis.stop()
    lines = json_lines(log)  # the banner and notices included
    [start_up] = [line for line in lines if line["message"].endswith(" starting")]
    assert start_up["concurrency"] == 1 and "celery" in start_up["queues"], start_up
    assert any(line["message"] == "celery worker: warm shutdown on SIGTERM" for line in lines), lines


def test_plain_http_is_redirected_to_https_and_unknown_hosts_refused(production):
    redirect = requests.get(f"{production.base_url}/login/", headers={"Host": HOST}, allow_redirects=False, timeout=10)
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == f"https://{HOST}/login/"
    refused = requests.get(
        f"{production.base_url}/login/", headers={"Host": "evil.example.org", "X-Forwarded-Proto": "https"}, timeout=10
    )
    assert refused.status_code == 400


def test_readyz_through_gunicorn_sees_the_worker(production):
    # Probes come over plain HTTP from inside the network, with Host: localhost (config/bin/healthcheck).
    response = requests.get(f"{production.base_url}/readyz", timeout=10)
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] and checks["database"]["ok"]
    assert checks["celery_worker"]["workers"]


def test_metrics_through_gunicorn(production):
    url = f"{production.base_url}/metrics"
    assert requests.get(url, timeout=10).status_code == 401
    response = requests.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert response.status_code == 200
    depth = next(f for f in text_string_to_metric_families(response.text) if f.name == "inbox_celery_queue_depth")
    assert [sample.value for sample in depth.samples] == [0]  # the worker took every task

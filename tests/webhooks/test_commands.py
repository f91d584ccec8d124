"""The operator commands ``simulate_inbound`` and ``webhooks_replay``, each run as a real ``manage.py`` process.

The subprocess runs ``config.settings.base`` with no ``REDIS_URL`` (so Celery is eager inside it) and, for the
replay tests, the pytest-django test database: those tests are transactional, so what they store is
committed and visible to the other process.
"""

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from conversations.models import Message
from sandbox.simulation import MESSAGE_TYPES, envelope, message_change, new_wamid, signed_request
from tests.factories import BusinessNumberFactory
from webhooks.drain import process_webhook_event
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.payloads import parse_delivery, parse_message
from webhooks.services import store_webhook_event

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SECRET = "simulator-test-secret"
PHONE_NUMBER_ID = "106540352240001"
DISPLAY_PHONE_NUMBER = "15550781234"
# Nothing from the developer's environment may leak into the subprocess's settings.
INHERITED_ENV_DROPPED = ("REDIS_URL", "DATABASE_URL", "PORT", "DJANGO_SETTINGS_MODULE")


def manage(*args: str, database: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in INHERITED_ENV_DROPPED and not key.startswith("META_")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_READ_DOT_ENV_FILE="0",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    if database:
        env["DATABASE_URL"] = _test_database_url()
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _test_database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- A stand-in for the server: records what arrives and checks the HMAC independently ----------------


class WebhookRecorder:
    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/webhook"

    def _handler(self):
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                signature = self.headers.get("X-Hub-Signature-256", "")
                with recorder.lock:
                    recorder.requests.append(
                        {
                            "path": self.path,
                            "content_type": self.headers.get("Content-Type", ""),
                            "body": body,
                            "signature_valid": hmac.compare_digest(expected, signature),
                            "at": datetime.now(UTC),
                        }
                    )
                    status = recorder.status
                answer = json.dumps({"status": "received"} if status == 200 else {"error": "nope"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format, *args):
                pass

        return Handler


@pytest.fixture
def recorder():
    recorder = WebhookRecorder()
    thread = threading.Thread(target=recorder.server.serve_forever, daemon=True)
    thread.start()
    yield recorder
    recorder.server.shutdown()
    recorder.server.server_close()
    thread.join(timeout=5)


def simulate(recorder: WebhookRecorder, *args: str) -> subprocess.CompletedProcess:
    return manage(
        "simulate_inbound",
        "--url",
        recorder.url,
        "--app-secret",
        SECRET,
        "--phone-number-id",
        PHONE_NUMBER_ID,
        "--display-phone-number",
        DISPLAY_PHONE_NUMBER,
        *args,
    )


def delivered_messages(body: bytes) -> list[tuple]:
    """(change, parsed message) for every message of one delivery, parsed the way the server parses it."""
    delivery = parse_delivery(json.loads(body))
    assert delivery.broken == ()
    return [(change, parse_message(raw)) for change in delivery.changes for raw in change.raw_messages]


# --- simulate_inbound ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["simulate_inbound", "webhooks_replay"])
def test_help_works(command):
    result = manage(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_simulate_sends_signed_batches_and_exact_duplicates(recorder):
    result = simulate(
        recorder, "--count", "5", "--batch", "2", "--duplicates", "1", "--contacts", "2", "--rate", "0",
        "--types", "text,image,contacts",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    # 5 messages in batches of 2 = 3 deliveries, each sent once more as Meta's retry would.
    assert len(recorder.requests) == 6
    assert all(r["signature_valid"] for r in recorder.requests)
    assert {r["path"] for r in recorder.requests} == {"/api/webhook"}
    assert {r["content_type"] for r in recorder.requests} == {"application/json"}
    bodies = [r["body"] for r in recorder.requests]
    assert bodies[0] == bodies[1] and bodies[2] == bodies[3] and bodies[4] == bodies[5]
    assert len(set(bodies)) == 3

    per_delivery = [delivered_messages(body) for body in bodies[::2]]
    assert [len(messages) for messages in per_delivery] == [2, 2, 1]
    messages = [pair for delivery in per_delivery for pair in delivery]
    assert [m.type for _, m in messages] == ["text", "image", "contacts", "text", "image"]
    assert len({m.wamid for _, m in messages}) == 5
    numbers = {(change.phone_number_id, change.display_phone_number) for change, _ in messages}
    assert numbers == {(PHONE_NUMBER_ID, DISPLAY_PHONE_NUMBER)}
    senders = {m.sender.wa_id for _, m in messages}
    assert 1 <= len(senders) <= 2
    assert all(wa_id.isdigit() for wa_id in senders)
    for change, message in messages:
        (profile,) = change.contacts
        assert profile.wa_id == message.sender.wa_id and " " in profile.name
    assert "Sent 6 request(s)" in result.stdout
    assert "200: 6" in result.stdout


def test_simulate_default_types_are_every_type_and_all_parse(recorder):
    result = simulate(recorder, "--count", str(len(MESSAGE_TYPES)), "--rate", "0")

    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == len(MESSAGE_TYPES)
    assert all(r["signature_valid"] for r in recorder.requests)
    types = []
    for request in recorder.requests:
        # Meta's wire format: ASCII only, every '/' escaped.
        assert request["body"].isascii()
        assert b"/" not in request["body"].replace(b"\\/", b"")
        types += [message.type for _, message in delivered_messages(request["body"])]
    assert sorted(types) == sorted(MESSAGE_TYPES)


def test_simulate_is_reproducible_with_a_seed_and_paced_by_rate(recorder):
    first = simulate(recorder, "--count", "10", "--seed", "7", "--rate", "20")
    second = simulate(recorder, "--count", "10", "--seed", "7", "--rate", "0")

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    runs = [recorder.requests[:10], recorder.requests[10:]]
    identities = [
        [(m.wamid, m.type, m.sender.wa_id, m.body) for r in run for _, m in delivered_messages(r["body"])]
        for run in runs
    ]
    assert identities[0] == identities[1]
    # 10 requests at 20/s leave over 9 intervals (0.45 s). Arrivals are stamped by the recorder: a first request
    # held up on a busy machine shortens the span by as much, while the rest keep to the schedule.
    assert (runs[0][-1]["at"] - runs[0][0]["at"]).total_seconds() >= 0.35


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--types", "nope"], "unknown message type(s): nope"),
        (["--count", "-1"], "--count must be at least 1"),
        (["--batch", "0"], "--batch must be at least 1"),
        (["--duplicates", "-2"], "--duplicates must not be negative"),
        (["--rate", "-1"], "--rate must not be negative"),
        (["--url", "127.0.0.1:8000/api/webhook"], "--url must be an http(s) URL"),
    ],
)
def test_simulate_rejects_bad_input(recorder, args, message):
    result = simulate(recorder, *args)

    assert result.returncode != 0
    assert message in result.stderr
    assert recorder.requests == []


def test_simulate_without_a_secret_refuses_to_send(recorder):
    result = manage("simulate_inbound", "--url", recorder.url, "--count", "1")

    assert result.returncode != 0
    assert "no app secret" in result.stderr
    assert recorder.requests == []


def test_simulate_stops_at_a_refusal_and_fails(recorder):
    recorder.status = 403

    result = simulate(recorder, "--count", "5", "--rate", "0")

    assert result.returncode != 0
    assert "HTTP 403" in result.stderr
    assert "403: 1" in result.stdout
    # A 4xx would repeat for every delivery (wrong secret or URL): the first one ends the run.
    assert len(recorder.requests) == 1


def test_simulate_reports_server_errors_and_fails(recorder):
    recorder.status = 503

    result = simulate(recorder, "--count", "3", "--rate", "0")

    assert result.returncode != 0
    assert len(recorder.requests) == 3
    assert "3 of 3 request(s) were not answered 200" in result.stderr
    assert "503: 3" in result.stdout


def test_simulate_fails_when_the_server_is_unreachable():
    result = manage(
        "simulate_inbound", "--url", f"http://127.0.0.1:{_free_port()}/api/webhook", "--app-secret", SECRET,
        "--count", "2", "--rate", "0", "--timeout", "5",
    )  # fmt: skip

    assert result.returncode != 0
    assert "request 1 to http://127.0.0.1:" in result.stderr


# --- webhooks_replay -----------------------------------------------------------------------------------

replay_db = pytest.mark.django_db(transaction=True)


@pytest.fixture
def store(monkeypatch):
    """Store deliveries without processing them, as when Redis was down when they arrived."""
    monkeypatch.setattr("webhooks.services.request_drain", lambda **kwargs: False)

    def store_delivery(*, phone_number_id: str = PHONE_NUMBER_ID, **message) -> tuple[WebhookEvent, str]:
        wamid = new_wamid()
        change = message_change(
            phone_number_id=phone_number_id,
            display_phone_number=DISPLAY_PHONE_NUMBER,
            wa_id=message.pop("wa_id", "447700900461"),
            wamid=wamid,
            **message,
        )
        body, headers = signed_request(envelope(waba_id="318273645502211", changes=[change]), app_secret=SECRET)
        event_id = store_webhook_event(
            raw_body=body, payload=json.loads(body), signature=headers["X-Hub-Signature-256"]
        )
        return WebhookEvent.objects.get(pk=event_id), wamid

    return store_delivery


@replay_db
def test_replay_failed_sync_processes_the_event_once(store):
    BusinessNumberFactory(phone_number_id=PHONE_NUMBER_ID, display_phone_number=DISPLAY_PHONE_NUMBER)
    failed, wamid = store()
    WebhookEvent.objects.filter(pk=failed.pk).update(state=WebhookEventState.FAILED, error="RuntimeError: boom")
    untouched, untouched_wamid = store()

    result = manage("webhooks_replay", "--failed", "--sync", database=True)

    assert result.returncode == 0, result.stderr
    # Not on a terminal: plain progress lines, no line per event at the default verbosity.
    assert "  replayed 1/1 events, 100%" in result.stdout
    assert f"event {failed.pk}:" not in result.stdout
    assert "Replay: 1 of 1 event(s) processed here (processed: 1)." in result.stdout
    failed.refresh_from_db()
    assert (failed.state, failed.error, failed.attempts) == (WebhookEventState.PROCESSED, "", 1)
    assert Message.objects.filter(wamid=wamid).count() == 1
    # Only what was selected is replayed.
    untouched.refresh_from_db()
    assert untouched.state == WebhookEventState.PENDING
    assert not Message.objects.filter(wamid=untouched_wamid).exists()

    again = manage("webhooks_replay", "--failed", "--sync", database=True)
    assert again.returncode == 0, again.stderr
    assert "No events match" in again.stdout

    # Forcing the same event through once more is harmless: processing is idempotent.
    forced = manage("webhooks_replay", "--id", str(failed.pk), "--sync", "-v", "2", database=True)
    assert forced.returncode == 0, forced.stderr
    assert f"  [1/1] event {failed.pk}: processed" in forced.stdout
    failed.refresh_from_db()
    assert (failed.state, failed.attempts) == (WebhookEventState.PROCESSED, 2)
    assert Message.objects.filter(wamid=wamid).count() == 1


@replay_db
def test_replay_sync_progress_is_a_few_lines_not_one_per_event(store):
    BusinessNumberFactory(phone_number_id=PHONE_NUMBER_ID, display_phone_number=DISPLAY_PHONE_NUMBER)
    events = [store()[0] for _ in range(25)]
    WebhookEvent.objects.filter(pk__in=[e.pk for e in events]).update(state=WebhookEventState.FAILED)

    result = manage("webhooks_replay", "--failed", "--sync", database=True)

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("  replayed ")]
    # Every 3 events (a tenth of 25, rounded up) and the last; one more only if 5 s passed without a line.
    assert {f"{n}/25" for n in (3, 6, 9, 12, 15, 18, 21, 24, 25)} <= {line.split()[1] for line in lines}
    assert len(lines) <= 12
    assert lines[-1].startswith("  replayed 25/25 events, 100%, ")
    assert "s left" in lines[0]
    assert "Replay: 25 of 25 event(s) processed here (processed: 25)." in result.stdout


@replay_db
def test_replay_unroutable_through_celery_once_the_number_exists(store):
    event, wamid = store()
    process_webhook_event(event_id=event.pk)
    event.refresh_from_db()
    assert event.state == WebhookEventState.UNROUTABLE
    BusinessNumberFactory(phone_number_id=PHONE_NUMBER_ID, display_phone_number=DISPLAY_PHONE_NUMBER)

    # Without --sync the events are set pending and enqueued on commit (eager Celery in the subprocess).
    result = manage("webhooks_replay", "--unroutable", database=True)

    assert result.returncode == 0, result.stderr
    assert "1 event(s) set pending and enqueued, processed in this process" in result.stdout
    event.refresh_from_db()
    assert event.state == WebhookEventState.PROCESSED
    assert event.item_errors == []
    assert Message.objects.filter(wamid=wamid).count() == 1


@replay_db
def test_replay_reports_unknown_ids_and_still_replays_the_known_ones(store):
    BusinessNumberFactory(phone_number_id=PHONE_NUMBER_ID, display_phone_number=DISPLAY_PHONE_NUMBER)
    event, wamid = store()
    unknown = event.pk + 1000

    result = manage("webhooks_replay", "--id", str(event.pk), "--id", str(unknown), "--sync", database=True)

    assert result.returncode != 0
    assert f"unknown event id(s): {unknown}" in result.stderr
    event.refresh_from_db()
    assert event.state == WebhookEventState.PROCESSED
    assert Message.objects.filter(wamid=wamid).count() == 1


@replay_db
def test_replay_dry_run_lists_the_selection_and_changes_nothing(store):
    BusinessNumberFactory(phone_number_id=PHONE_NUMBER_ID, display_phone_number=DISPLAY_PHONE_NUMBER)
    failed, failed_wamid = store()
    WebhookEvent.objects.filter(pk=failed.pk).update(state=WebhookEventState.FAILED, error="RuntimeError: boom")
    # A message without a sender is an item error: the event is processed, the item recorded.
    with_errors, _ = store(wa_id=None)
    process_webhook_event(event_id=with_errors.pk)
    pending, _ = store()
    before = {e.pk: (e.state, e.attempts, e.processed_at, e.error) for e in WebhookEvent.objects.all()}

    result = manage("webhooks_replay", "--failed", "--with-errors", "--dry-run", database=True)

    assert result.returncode == 0, result.stderr
    assert f"event {failed.pk} " in result.stdout and "error=RuntimeError: boom" in result.stdout
    assert f"event {with_errors.pk} " in result.stdout and "item_errors=1" in result.stdout
    assert f"event {pending.pk} " not in result.stdout
    assert "2 event(s) would be replayed; nothing changed" in result.stdout
    assert {e.pk: (e.state, e.attempts, e.processed_at, e.error) for e in WebhookEvent.objects.all()} == before
    assert not Message.objects.filter(wamid=failed_wamid).exists()


@replay_db
def test_replay_selects_a_received_at_window(store):
    events = [store()[0] for _ in range(3)]
    for day, event in zip((1, 2, 3), events, strict=True):
        WebhookEvent.objects.filter(pk=event.pk).update(received_at=datetime(2026, 1, day, 12, tzinfo=UTC))

    result = manage(
        "webhooks_replay", "--since", "2026-01-02", "--until", "2026-01-02T23:59:59Z", "--dry-run", database=True
    )

    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines() if line.strip().startswith("event ")] == [
        str(events[1].pk)
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "select events with --id, --failed, --unroutable, --with-errors or --since/--until"),
        (["--since", "yesterday"], "--since: 'yesterday' is not an ISO 8601 date or datetime"),
        (["--since", "2026-02-01", "--until", "2026-01-01"], "--since is after --until"),
        (["--id", "abc"], "invalid int value"),
    ],
)
def test_replay_rejects_bad_input(args, message):
    result = manage("webhooks_replay", *args)

    assert result.returncode != 0
    assert message in result.stderr

"""The webhook endpoint as Meta and an attacker see it (in-process; the cross-process path is in tests/e2e)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import DatabaseError

from conversations.models import Message
from sandbox.signing import sign_body
from tests.webhooks.test_payloads import FILES, PAYLOADS
from webhooks.models import WebhookEvent, WebhookEventState

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_handshake_echoes_the_challenge_as_plain_text(client):
    response = client.get(
        "/api/webhook",
        {"hub.mode": "subscribe", "hub.verify_token": settings.META_VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "1"},
        {},
    ],
)
def test_handshake_refuses_anything_else(client, params):
    assert client.get("/api/webhook", params).status_code == 403


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_sample_delivery_is_stored_and_processed(path, post_webhook, number):
    response = post_webhook(json.loads(path.read_text()))
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEventState.PROCESSED
    assert event.item_errors == []
    assert event.phone_number_id == number.phone_number_id


def test_the_answer_names_the_stored_event(post_webhook, number):
    response = post_webhook(json.loads((PAYLOADS / "message_text.json").read_text()))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json() == {"status": "received", "event_id": WebhookEvent.objects.get().pk}


def test_raw_body_is_verified_byte_for_byte(client, number):
    # Meta escapes non-ASCII and '/' in what it signs; the stored raw body keeps those bytes.
    body = (PAYLOADS / "message_text.json").read_bytes().replace(b"Hi", b"\\u00c4 \\/ Hi")
    response = client.post(
        "/api/webhook",
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": sign_body(raw_body=body, app_secret=settings.META_APP_SECRET)},
    )
    assert response.status_code == 200
    assert WebhookEvent.objects.get().raw_body.encode() == body


def test_a_signature_with_trailing_blanks_is_stored_without_them(client, number):
    # Stored as it was verified (PostgreSQL would silently cut the padding at 100 characters, not the rest).
    body = (PAYLOADS / "message_text.json").read_bytes()
    signature = sign_body(raw_body=body, app_secret=settings.META_APP_SECRET)
    response = client.post(
        "/api/webhook",
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": signature + " " * 60},
    )
    assert response.status_code == 200
    assert WebhookEvent.objects.get().signature == signature


def test_missing_signature_is_401_and_nothing_is_stored(client):
    response = client.post("/api/webhook", data=b"{}", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signature_missing"
    assert not WebhookEvent.objects.exists()


def test_wrong_signature_is_403(client):
    body = (PAYLOADS / "message_text.json").read_bytes()
    response = client.post(
        "/api/webhook",
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": sign_body(raw_body=body, app_secret="someone-else")},
    )
    assert response.status_code == 403
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"<xml>nope</xml>",
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the parser's stack: RecursionError
        b'{"entry": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"entry": [], "n": ' + b"7" * 5000 + b"}",  # past Python's 4,300 digits: ValueError
        b"\xff\xfe{}",
    ],
    ids=["xml", "deep-array", "deep-in-an-object", "5000-digit-number", "not-utf-8"],
)
def test_signed_body_that_is_not_json_is_400(client, body):
    response = client.post(
        "/api/webhook",
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": sign_body(raw_body=body, app_secret=settings.META_APP_SECRET)},
    )
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_body_over_4_mb_is_413(client):
    body = b'{"pad":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    response = client.post(
        "/api/webhook",
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": sign_body(raw_body=body, app_secret=settings.META_APP_SECRET)},
    )
    assert response.status_code == 413


def test_a_3_mb_delivery_is_accepted(post_webhook, number):
    payload = json.loads((PAYLOADS / "message_text.json").read_text())
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "y" * (3 * 1024 * 1024)
    assert post_webhook(payload).status_code == 200
    assert len(Message.objects.get().body) == 3 * 1024 * 1024


def test_text_with_nul_and_half_an_emoji_is_stored_and_shown_cleaned(post_webhook, number):
    # JSON can escape what PostgreSQL text cannot hold; such a delivery once got 503 on every retry.
    payload = json.loads((PAYLOADS / "message_text.json").read_text())
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "a\x00b \ud83d!"
    assert post_webhook(payload).status_code == 200
    event = WebhookEvent.objects.get()
    assert "\\u0000" in event.raw_body and event.state == WebhookEventState.PROCESSED
    assert Message.objects.get().body == "ab \ufffd!"


def test_a_delivery_is_stored_and_processed_in_the_embedded_mode_too(tmp_path):
    """`make run` without PostgreSQL: the webhook stores through the ORM on SQLite and processes in-process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_", "META_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_READ_DOT_ENV_FILE="0",
        PYTHONPATH=str(ROOT),
        META_APP_SECRET="embedded-secret",
    )
    code = f"""
import django, json
from django.conf import settings
settings.DATABASES["default"]["NAME"] = {str(tmp_path / "embedded.sqlite3")!r}
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from conversations.models import Message
from tests.factories import BusinessNumberFactory
from webhooks.models import WebhookEvent
from sandbox.simulation import signed_request
payload = json.loads(open({str(PAYLOADS / "message_text.json")!r}).read())
number_id = payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"]
BusinessNumberFactory(phone_number_id=number_id)
body, headers = signed_request(payload, app_secret="embedded-secret")
response = Client(HTTP_HOST="localhost").post("/api/webhook", data=body, content_type="application/json",
                         headers={{"X-Hub-Signature-256": headers["X-Hub-Signature-256"]}})
event = WebhookEvent.objects.get()
print(response.status_code, response.json()["event_id"] == event.pk, event.state, event.phone_number_id == number_id,
      Message.objects.count())
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-5:] == ["200", "True", "processed", "True", "1"]


def test_database_error_while_storing_is_503(post_webhook, monkeypatch):
    def fail(**kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr("webhooks.apis.store_webhook_event", fail)
    payload = json.loads((PAYLOADS / "message_text.json").read_text())
    assert post_webhook(payload).status_code == 503


def test_unknown_field_is_acknowledged_and_stored(post_webhook, number):
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "a_field_from_2027", "value": {"event": "VERIFIED_ACCOUNT"}}]}],
    }
    assert post_webhook(payload).status_code == 200
    assert WebhookEvent.objects.get().state == WebhookEventState.PROCESSED


def test_unknown_phone_number_id_is_stored_as_unroutable(post_webhook):
    payload = json.loads((PAYLOADS / "message_text.json").read_text())  # no BusinessNumber exists
    assert post_webhook(payload).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEventState.UNROUTABLE
    assert "unknown phone_number_id" in event.item_errors[0]["error"]
    assert not Message.objects.exists()

"""Structured logs (ops/logs.py, ops/celery_logs.py): one JSON object per line, with the ids of
the request, webhook event and Celery task the line belongs to."""

import io
import json
import logging

import pytest

from ops.logs import JsonFormatter
from sandbox.simulation import envelope, message_change
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines():
    """Every record logged during the test, formatted by the production formatter and parsed back."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_formatter_writes_one_json_object_per_line_with_extra_fields_and_exceptions():
    record = logging.LogRecord("inbox.test", logging.ERROR, __file__, 1, "failed %s\nsecond line", ("x",), None)
    record.duration_ms = 12.5
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    text = JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert line["level"] == "ERROR" and line["logger"] == "inbox.test"
    assert line["message"] == "failed x\nsecond line"
    assert line["duration_ms"] == 12.5
    assert "ValueError: boom" in line["exception"]
    assert line["time"].endswith("+00:00")


def test_request_id_is_taken_from_the_header_and_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "not valid; <script>"})["X-Request-ID"]
    assert len(generated) == 32 and generated != "abc-123"
    assert client.get("/healthz")["X-Request-ID"] != generated


def test_webhook_post_and_its_processing_log_their_ids(post_webhook, json_lines):
    # A delivery for a number nobody registered: processing logs a warning per change it cannot route.
    payload = envelope(
        waba_id="1",
        changes=[message_change(phone_number_id="999000111", display_phone_number="15550009999", wa_id="15551234567")],
    )
    response = post_webhook(payload, **{"X-Request-ID": "req-webhook-1"})
    assert response.status_code == 200
    event_id = response.json()["event_id"]
    assert WebhookEvent.objects.get(pk=event_id).state == "unroutable"

    lines = json_lines()
    access = [line for line in lines if line["logger"] == "inbox.request"]
    assert access and all(line["request_id"] == "req-webhook-1" for line in access)
    assert access[0]["message"] == "POST /api/webhook 200"
    assert access[0]["status"] == 200

    task_lines = [line for line in lines if line.get("webhook_event_id") == event_id]
    assert task_lines, lines
    assert any("unknown phone_number_id" in line["message"] for line in task_lines)
    task_ids = {line.get("celery_task_id") for line in task_lines}
    assert len(task_ids) == 1 and None not in task_ids
    # Outside the task nothing keeps its ids.
    assert all("celery_task_id" not in line for line in access)

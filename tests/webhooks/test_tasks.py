"""The processing task: retried on transient errors, the event marked failed on a bug, idempotent."""
import json

import pytest
from django.db import OperationalError, transaction

from conversations.models import Message
from tests.webhooks.test_payloads import PAYLOADS
from webhooks import services
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.tasks import process_webhook_event_task, sweep_pending_webhook_events

pytestmark = pytest.mark.django_db


def stored_event() -> WebhookEvent:
    return WebhookEvent.objects.create(raw_body="{}", payload=json.loads((PAYLOADS / "message_text.json").read_text()))


def test_transient_database_errors_are_retried_until_success(number, monkeypatch):
    event = stored_event()
    real = services.process_webhook_event
    calls = []

    def flaky(*, event_id, force=False):
        calls.append(event_id)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return real(event_id=event_id, force=force)

    monkeypatch.setattr(services, "process_webhook_event", flaky)
    process_webhook_event_task.apply(args=[event.pk])
    assert len(calls) == 3
    event.refresh_from_db()
    assert event.state == WebhookEventState.PROCESSED
    assert Message.objects.count() == 1


def test_a_bug_marks_the_event_failed_with_the_error(number, monkeypatch):
    event = stored_event()

    def broken(*, event_id, force=False):
        raise KeyError("surprise")

    monkeypatch.setattr(services, "process_webhook_event", broken)
    process_webhook_event_task.apply(args=[event.pk])
    event.refresh_from_db()
    assert event.state == WebhookEventState.FAILED
    assert "KeyError" in event.error


def test_running_the_task_twice_changes_nothing(number):
    event = stored_event()
    process_webhook_event_task.apply(args=[event.pk])
    process_webhook_event_task.apply(args=[event.pk])
    event.refresh_from_db()
    assert (event.state, event.attempts, Message.objects.count()) == (WebhookEventState.PROCESSED, 1, 1)


def test_replay_reprocesses_without_doubling(number, django_capture_on_commit_callbacks):
    event = stored_event()
    process_webhook_event_task.apply(args=[event.pk])
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.replay_webhook_events(event_ids=[event.pk])
    event.refresh_from_db()
    assert (event.state, event.attempts, Message.objects.count()) == (WebhookEventState.PROCESSED, 2, 1)


def test_sweep_enqueues_only_events_pending_past_the_grace_period(number, settings):
    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 0
    old, done = stored_event(), stored_event()
    WebhookEvent.objects.filter(pk=done.pk).update(state=WebhookEventState.PROCESSED)
    assert sweep_pending_webhook_events.apply().get() == 1
    old.refresh_from_db()
    assert old.state == WebhookEventState.PROCESSED
    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 3600
    stored_event()
    assert sweep_pending_webhook_events.apply().get() == 0

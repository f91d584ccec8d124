"""Outbound work survives a broker outage: a reply, a customer's photo or a read receipt whose task could not be
enqueued (Celery's broker unreachable: a port nothing listens on) is accepted all the same, waits in the
database, and the periodic outbound sweep hands it to a worker once it has waited its grace period, once.
The Graph API is the sandbox, a real HTTP server."""

import logging
import random
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery import app as celery_app
from conversations.models import Conversation, MediaFile, MediaState, Message, MessageStatus
from conversations.services.errors import RetryLater
from conversations.services.outbound import STALE_CLAIM, deliver_outbound_message, sweep_outbound_work
from sandbox.customers import png_bytes
from sandbox.simulation import envelope, message_change, to_wire
from tests.conversations.conftest import graph_requests
from tests.e2e.conftest import free_port
from tests.factories import ContactFactory, ConversationFactory, MessageFactory, OutboundMessageFactory
from webhooks.drain import process_webhook_event
from webhooks.services import store_webhook_event

pytestmark = pytest.mark.django_db(transaction=True)  # tasks are enqueued when the request's transaction commits

CUSTOMER = "447700900461"
PNG = png_bytes(rng=random.Random(12))


@pytest.fixture
def conversation(number):
    """The customer wrote a minute ago: the 24-hour window is open."""
    conversation = ConversationFactory(number=number, contact=ContactFactory(wa_id=CUSTOMER))
    inbound = MessageFactory(conversation=conversation, timestamp=timezone.now() - timedelta(minutes=1))
    conversation.last_inbound_at = inbound.timestamp
    conversation.save()
    return conversation


@pytest.fixture
def broker_down():
    """Celery publishes to a broker that is not there, as a web process does while Redis is down; calling
    the fixture's value brings the in-process broker back (tasks run eagerly again, as in every unit test)."""
    saved = {"task_always_eager": celery_app.conf.task_always_eager, "broker_url": celery_app.conf.broker_url}

    def switch(**conf) -> None:
        celery_app.conf.update(conf)
        celery_app._pool = None  # connections and producers are pooled per broker URL
        celery_app.amqp._producer_pool = None

    switch(task_always_eager=False, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    yield lambda: switch(**saved)
    switch(**saved)


def sends(sandbox) -> list[dict]:
    with sandbox.lock:
        return list(sandbox.state.messages)


def reads(sandbox) -> list[dict]:
    with sandbox.lock:
        return list(sandbox.state.reads)


def longer_ago_than_the_grace() -> timezone.datetime:
    return timezone.now() - timedelta(seconds=settings.OUTBOUND_SWEEP_GRACE_SECONDS + 1)


def test_a_reply_queued_while_the_broker_is_down_is_accepted_and_the_sweep_sends_it_once(
    api, conversation, meta_sandbox, broker_down, caplog
):
    with caplog.at_level(logging.WARNING, logger="config.celery"):
        response = api.post(
            f"/api/conversations/{conversation.pk}/messages/", {"type": "text", "text": "On its way"}, format="json"
        )
    assert response.status_code == 202, response.content
    assert "the outbound sweep will" in caplog.text
    message = Message.objects.get(pk=response.json()["id"])
    assert message.status == MessageStatus.PENDING and sends(meta_sandbox) == []

    broker_down()  # the broker is back
    assert sweep_outbound_work()["messages"] == 0, "within its grace period the task may still be on its way"
    Message.objects.filter(pk=message.pk).update(created_at=longer_ago_than_the_grace())
    assert sweep_outbound_work()["messages"] == 1
    message.refresh_from_db()
    assert message.wamid and message.status == MessageStatus.PENDING  # accepted; Meta's status webhooks follow
    assert sweep_outbound_work()["messages"] == 0
    [sent] = sends(meta_sandbox)
    assert sent["wamid"] == message.wamid and sent["request"]["text"]["body"] == "On its way"


def test_a_customers_photo_stored_while_the_broker_is_down_is_downloaded_by_the_sweep(
    number, meta_sandbox, broker_down
):
    uploaded = meta_sandbox.inbound(
        phone_number_id=number.phone_number_id,
        wa_id=CUSTOMER,
        media={"type": "image", "mime_type": "image/png", "data": PNG},
    )
    with meta_sandbox.lock:
        image = next(
            item["message"]["image"] for item in meta_sandbox.state.inbound if item["wamid"] == uploaded["wamid"]
        )
    change = message_change(
        phone_number_id=number.phone_number_id,
        display_phone_number=number.display_phone_number,
        wa_id=CUSTOMER,
        message_type="image",
        wamid=uploaded["wamid"],
        content={"image": image},
    )
    payload = envelope(waba_id=number.waba_id, changes=[change])
    event_id = store_webhook_event(raw_body=to_wire(payload), payload=payload, signature="")
    process_webhook_event(event_id=event_id)  # a drain, whose download task cannot be enqueued
    media = MediaFile.objects.get(message__wamid=uploaded["wamid"])
    assert media.state == MediaState.PENDING and media.attempts == 0

    broker_down()
    assert sweep_outbound_work()["media"] == 0
    MediaFile.objects.filter(pk=media.pk).update(updated_at=longer_ago_than_the_grace())
    assert sweep_outbound_work()["media"] == 1
    media.refresh_from_db()
    assert media.state == MediaState.READY and media.file.read() == PNG
    assert sweep_outbound_work()["media"] == 0
    assert len([path for path in graph_requests(meta_sandbox) if path.startswith("/media-download/")]) == 1


def test_a_read_receipt_asked_for_while_the_broker_is_down_is_sent_by_the_sweep_once(
    api, conversation, meta_sandbox, broker_down
):
    latest = MessageFactory(conversation=conversation, timestamp=timezone.now())
    assert api.post(f"/api/conversations/{conversation.pk}/read/").status_code == 200
    conversation.refresh_from_db()
    assert conversation.read_receipt_message_id == latest.pk, "the receipt owed is on record"
    assert reads(meta_sandbox) == []

    broker_down()
    assert sweep_outbound_work()["read_receipts"] == 0
    Conversation.objects.filter(pk=conversation.pk).update(read_receipt_requested_at=longer_ago_than_the_grace())
    assert sweep_outbound_work()["read_receipts"] == 1
    [read] = reads(meta_sandbox)
    assert read["message_id"] == latest.wamid and not read["typing_indicator"]
    conversation.refresh_from_db()
    assert conversation.read_receipt_message_id is None
    Conversation.objects.filter(pk=conversation.pk).update(read_receipt_requested_at=longer_ago_than_the_grace())
    assert sweep_outbound_work()["read_receipts"] == 0
    assert len(reads(meta_sandbox)) == 1


def test_a_receipt_owed_up_to_a_later_message_stays_owed_when_an_earlier_one_is_sent(api, conversation, meta_sandbox):
    from conversations.services.outbound import send_read_receipt

    first = MessageFactory(conversation=conversation, timestamp=timezone.now())
    Conversation.objects.filter(pk=conversation.pk).update(
        read_receipt_message_id=first.pk, read_receipt_requested_at=timezone.now()
    )
    later = MessageFactory(conversation=conversation, timestamp=timezone.now())
    # The task reads the debt, and a colleague reads the newer message before the receipt is cleared.
    Conversation.objects.filter(pk=conversation.pk).update(read_receipt_message_id=later.pk)
    assert send_read_receipt(conversation_id=conversation.pk)
    assert send_read_receipt(conversation_id=conversation.pk) is False, "nothing owed twice"
    assert [read["message_id"] for read in reads(meta_sandbox)] == [later.wamid]


def test_a_reply_meta_asked_to_retry_is_swept_once_its_retry_is_overdue_not_minutes_later(conversation, meta_sandbox):
    """Meta's transient error makes the task retry within its backoff (2 s, then 4 s, ...); a retry lost with the
    broker leaves the reply to the sweep, which takes it once that backoff and its grace have passed."""
    lost = OutboundMessageFactory(conversation=conversation, body="lost", content={"body": "lost"})
    waiting = OutboundMessageFactory(conversation=conversation, body="waiting", content={"body": "waiting"})
    meta_sandbox.configure({"server_error_next": 3})
    for message, tries in ((lost, 1), (waiting, 2)):
        for _ in range(tries):
            with pytest.raises(RetryLater):
                deliver_outbound_message(message_id=message.pk)
    lost.refresh_from_db()
    waiting.refresh_from_db()
    backoff = settings.TASK_RETRY_BACKOFF_SECONDS
    assert lost.send_claimed_at is None and waiting.send_claimed_at is None
    assert lost.send_retry_due_at - lost.send_attempted_at == pytest.approx(
        timedelta(seconds=backoff), abs=timedelta(seconds=0.5)
    )
    assert waiting.send_retry_due_at - waiting.send_attempted_at == pytest.approx(
        timedelta(seconds=2 * backoff), abs=timedelta(seconds=0.5)
    )
    assert sweep_outbound_work()["messages"] == 0, "their retries may still come"

    overdue = timezone.now() - timedelta(seconds=settings.OUTBOUND_SWEEP_GRACE_SECONDS + 1)
    Message.objects.filter(pk=lost.pk).update(send_retry_due_at=overdue)
    assert sweep_outbound_work()["messages"] == 1
    assert [sent["request"]["text"]["body"] for sent in sends(meta_sandbox)] == ["lost"]
    assert Message.objects.get(pk=waiting.pk).wamid is None


def test_a_retry_never_waits_longer_than_the_backoffs_cap(conversation, meta_sandbox):
    message = OutboundMessageFactory(conversation=conversation, content={"body": "hi"}, send_attempts=5000)
    meta_sandbox.configure({"server_error_next": 1})
    with pytest.raises(RetryLater):
        deliver_outbound_message(message_id=message.pk)
    message.refresh_from_db()
    assert message.send_retry_due_at - message.send_attempted_at == pytest.approx(
        timedelta(seconds=settings.TASK_RETRY_BACKOFF_MAX_SECONDS), abs=timedelta(seconds=0.5)
    )


def test_the_sweep_hands_a_stale_claim_to_a_worker_that_marks_it_unconfirmed_without_sending(
    conversation, meta_sandbox
):
    claimed = OutboundMessageFactory(
        conversation=conversation,
        content={"body": "hi"},
        send_attempts=1,
        send_claimed_at=timezone.now() - STALE_CLAIM - timedelta(seconds=1),
    )
    assert sweep_outbound_work()["messages"] == 1
    assert Message.objects.get(pk=claimed.pk).status == MessageStatus.UNCONFIRMED
    assert sends(meta_sandbox) == []


def test_beat_runs_the_outbound_sweep():
    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].endswith("sweep_outbound_work_task")]
    assert entry["task"] in celery_app.tasks
    assert entry["schedule"] == settings.OUTBOUND_SWEEP_INTERVAL_SECONDS

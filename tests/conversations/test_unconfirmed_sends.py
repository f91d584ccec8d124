"""A send whose answer is lost may have reached Meta, and Meta has no idempotent send: it is never resent by
itself. It shows as unconfirmed until the status webhook (which echoes our idempotency key as
biz_opaque_callback_data) attaches its wamid, or a person decides to send it again or discard it. A send that
never reached Meta (nothing listening) is retried as before. The sandbox plays Meta as a real HTTP server and
loses its answers on request."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from conversations.models import Message, MessageStatus
from conversations.services.errors import RetryLater
from conversations.services.outbound import STALE_CLAIM, deliver_outbound_message, send_text, sweep_outbound_work
from realtime.models import Event
from sandbox.simulation import status_change
from tests.e2e.conftest import free_port
from tests.factories import ContactFactory, ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(number):
    """The customer wrote a minute ago: the 24-hour window is open."""
    contact = ContactFactory(wa_id="447700900461")
    return ConversationFactory(number=number, contact=contact, last_inbound_at=timezone.now() - timedelta(minutes=1))


@pytest.fixture
def queued(staff, conversation) -> Message:
    """A reply in the outbox (the commit's task never runs here: each test delivers it itself)."""
    return send_text(user=staff, conversation=conversation, text="Your refund is on its way")


def sends(sandbox) -> list[dict]:
    with sandbox.lock:
        return list(sandbox.state.messages)


def status_webhook(number, *, wamid: str, status: str, key) -> dict:
    """Meta's status webhook for a send, with the idempotency key it echoes."""
    change = status_change(
        phone_number_id=number.phone_number_id,
        display_phone_number=number.display_phone_number,
        wamid=wamid,
        status=status,
        recipient_wa_id="447700900461",
    )
    change["value"]["statuses"][0]["biz_opaque_callback_data"] = str(key)
    return change


def decide(api, message: Message, decision: str):
    return api.post(
        f"/api/conversations/{message.conversation_id}/messages/{message.pk}/decision/",
        {"decision": decision},
        format="json",
    )


@pytest.mark.parametrize("lost", [{"mode": "drop"}, {"mode": "delay", "seconds": 2}])
def test_a_send_whose_answer_is_lost_is_unconfirmed_and_never_sent_again_by_itself(
    meta_sandbox, queued, settings, lost
):
    settings.META_GRAPH_API_READ_TIMEOUT = 0.5
    meta_sandbox.configure({"answer_lost_next": lost})
    assert deliver_outbound_message(message_id=queued.pk) == "unconfirmed"
    queued.refresh_from_db()
    assert queued.status == MessageStatus.UNCONFIRMED and queued.wamid is None and queued.send_claimed_at is None
    assert Event.objects.filter(type="message.status_changed", payload__status="unconfirmed").exists()
    # A redelivered task, and the sweep, leave it alone.
    assert deliver_outbound_message(message_id=queued.pk) == "skipped"
    assert sweep_outbound_work()["messages"] == 0
    assert len(sends(meta_sandbox)) == 1


def test_the_status_webhook_that_comes_later_attaches_the_wamid_and_moves_it_on(meta_sandbox, queued, number, deliver):
    meta_sandbox.configure({"answer_lost_next": 1})
    deliver_outbound_message(message_id=queued.pk)
    [sent] = sends(meta_sandbox)
    deliver(status_webhook(number, wamid=sent["wamid"], status="sent", key=queued.idempotency_key))
    deliver(status_webhook(number, wamid=sent["wamid"], status="delivered", key=queued.idempotency_key))
    queued.refresh_from_db()
    assert (queued.wamid, queued.status) == (sent["wamid"], MessageStatus.DELIVERED)


def test_a_send_that_never_reached_meta_is_retried_and_sent_once(meta_sandbox, queued, settings):
    graph_api = settings.META_GRAPH_API_URL
    settings.META_GRAPH_API_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens: the connect is refused
    with pytest.raises(RetryLater):
        deliver_outbound_message(message_id=queued.pk)
    queued.refresh_from_db()
    assert queued.status == MessageStatus.PENDING and queued.send_claimed_at is None
    settings.META_GRAPH_API_URL = graph_api
    assert deliver_outbound_message(message_id=queued.pk) == "sent"
    assert len(sends(meta_sandbox)) == 1


def test_a_claim_left_by_a_worker_that_died_mid_send_becomes_unconfirmed_not_a_second_send(meta_sandbox, queued):
    Message.objects.filter(pk=queued.pk).update(send_claimed_at=timezone.now() - STALE_CLAIM - timedelta(seconds=1))
    assert deliver_outbound_message(message_id=queued.pk) == "unconfirmed"
    assert Message.objects.get(pk=queued.pk).status == MessageStatus.UNCONFIRMED
    assert sends(meta_sandbox) == []


def test_send_again_puts_it_back_in_the_outbox(meta_sandbox, api, queued, django_capture_on_commit_callbacks):
    meta_sandbox.configure({"answer_lost_next": 1})
    deliver_outbound_message(message_id=queued.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = decide(api, queued, "send_again")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending"
    queued.refresh_from_db()
    assert queued.wamid == sends(meta_sandbox)[1]["wamid"], "the person's choice: a second send"


def test_send_again_after_the_first_try_was_confirmed_sends_nothing(meta_sandbox, api, queued, number, deliver):
    meta_sandbox.configure({"answer_lost_next": 1})
    deliver_outbound_message(message_id=queued.pk)
    [sent] = sends(meta_sandbox)
    deliver(status_webhook(number, wamid=sent["wamid"], status="sent", key=queued.idempotency_key))
    response = decide(api, queued, "send_again")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_unconfirmed"
    assert len(sends(meta_sandbox)) == 1


def test_discard_fails_it_and_a_late_delivery_still_shows(meta_sandbox, api, queued, number, deliver):
    meta_sandbox.configure({"answer_lost_next": 1})
    deliver_outbound_message(message_id=queued.pk)
    response = decide(api, queued, "discard")
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert response.json()["error"]["title"] == "Not confirmed by Meta; discarded by ana"
    [sent] = sends(meta_sandbox)
    deliver(status_webhook(number, wamid=sent["wamid"], status="delivered", key=queued.idempotency_key))
    queued.refresh_from_db()
    assert (queued.wamid, queued.status) == (sent["wamid"], MessageStatus.DELIVERED), "Meta had it after all"


def test_a_decision_needs_an_unconfirmed_message_of_a_conversation_you_see(api, queued, number):
    assert decide(api, queued, "discard").status_code == 409  # still pending
    Message.objects.filter(pk=queued.pk).update(status=MessageStatus.UNCONFIRMED)
    assert decide(api, queued, "forget").status_code == 400
    stranger = UserFactory(username="bo")
    api.force_authenticate(stranger)
    assert decide(api, queued, "discard").status_code == 404


@pytest.mark.django_db(transaction=True)  # the command waits for the task its commit enqueued
def test_send_message_says_an_unconfirmed_send_is_for_a_person_to_decide(meta_sandbox, conversation, number):
    meta_sandbox.configure({"answer_lost_next": 1})
    with pytest.raises(CommandError, match="may or may not have gone out"):
        call_command(
            "send_message",
            "--number",
            number.phone_number_id,
            "--to",
            "447700900461",
            "--text",
            "Hello?",
            "--wait",
            "5",
        )
    assert len(sends(meta_sandbox)) == 1

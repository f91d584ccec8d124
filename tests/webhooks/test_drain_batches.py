"""A drain's round over a backlog: status-only deliveries applied together, everything else one by one,
with the same outcome as applying each delivery on its own."""

import json
import uuid

import pytest

from conversations.models import Message, MessageStatus, MessageStatusEvent
from realtime.models import Event
from sandbox.simulation import envelope, message_change, new_wamid, status_change
from tests.factories import ConversationFactory, OutboundMessageFactory
from webhooks import drain
from webhooks.models import WebhookEvent, WebhookEventState

pytestmark = pytest.mark.django_db

NUMBER = {"phone_number_id": "427715309981234", "display_phone_number": "15557730142"}
CUSTOMER = "447700900461"


def pending(*changes: dict) -> WebhookEvent:
    """A stored delivery nobody has processed yet (as in a backlog)."""
    payload = envelope(waba_id="318273645502211", changes=list(changes))
    return WebhookEvent.objects.create(raw_body=json.dumps(payload), phone_number_id=NUMBER["phone_number_id"])


def status(message: Message, value: str, ts: int, **kwargs) -> dict:
    return status_change(**NUMBER, wamid=message.wamid, status=value, recipient_wa_id=CUSTOMER, timestamp=ts, **kwargs)


@pytest.fixture
def sent(number):
    conversation = ConversationFactory(number=number, contact__wa_id=CUSTOMER)
    return [
        OutboundMessageFactory(conversation=conversation, wamid=new_wamid(), status=MessageStatus.SENT)
        for _ in range(3)
    ]


def test_a_backlog_of_statuses_ends_each_message_at_its_best_status_with_one_event_each(sent):
    first, second, third = sent
    events = [
        pending(status(first, "read", 1767263000)),
        pending(status(first, "delivered", 1767262000)),  # late and lower: kept as history, changes nothing
        pending(status(second, "delivered", 1767262000), status(second, "read", 1767262100)),
        pending(status(third, "failed", 1767262000, error_code=131047, error_title="Re-engagement message")),
        pending(status(third, "sent", 1767261000)),
    ]
    assert drain.process_pending_webhook_events(limit=100) == 5

    assert {e.state for e in WebhookEvent.objects.filter(pk__in=[e.pk for e in events])} == {
        WebhookEventState.PROCESSED
    }
    assert MessageStatusEvent.objects.count() == 6
    by_pk = {m.pk: m for m in Message.objects.all()}
    assert (by_pk[first.pk].status, by_pk[second.pk].status) == ("read", "read")
    assert (by_pk[third.pk].status, by_pk[third.pk].error_code, by_pk[third.pk].error_title) == (
        "failed",
        131047,
        "Re-engagement message",
    )
    assert Event.objects.filter(type="message.status_changed").count() == 3  # one per message that moved
    pushed = {e.payload["message_id"]: e.payload for e in Event.objects.filter(type="message.status_changed")}
    assert {pk: p["status"] for pk, p in pushed.items()} == {first.pk: "read", second.pk: "read", third.pk: "failed"}
    assert pushed[third.pk]["error"] == {"code": 131047, "title": "Re-engagement message"}


def test_statuses_and_messages_mixed_in_a_backlog_are_all_applied(sent):
    inbound_wamid = new_wamid()
    events = [
        pending(status(sent[0], "delivered", 1767262000)),
        pending(message_change(**NUMBER, wa_id=CUSTOMER, wamid=inbound_wamid, content={"text": {"body": "Thanks!"}})),
        pending(status(sent[1], "read", 1767262000)),
    ]
    assert drain.process_pending_webhook_events(limit=100) == 3
    assert {e.state for e in WebhookEvent.objects.filter(pk__in=[e.pk for e in events])} == {
        WebhookEventState.PROCESSED
    }
    assert Message.objects.get(wamid=inbound_wamid).body == "Thanks!"
    assert list(
        Message.objects.filter(pk__in=[sent[0].pk, sent[1].pk]).order_by("pk").values_list("status", flat=True)
    ) == ["delivered", "read"]


def test_a_status_that_arrives_before_our_send_response_is_matched_by_our_idempotency_key(sent, number):
    unsent = OutboundMessageFactory(conversation=sent[0].conversation, wamid=None, idempotency_key=uuid.uuid4())
    wamid = new_wamid()
    change = status_change(**NUMBER, wamid=wamid, status="delivered", recipient_wa_id=CUSTOMER, timestamp=1767262000)
    change["value"]["statuses"][0]["biz_opaque_callback_data"] = str(unsent.idempotency_key)
    pending(change, status(sent[0], "read", 1767262000))
    assert drain.process_pending_webhook_events(limit=100) == 1
    unsent.refresh_from_db()
    assert (unsent.wamid, unsent.status) == (wamid, "delivered")
    assert Message.objects.get(pk=sent[0].pk).status == "read"


def test_a_malformed_status_is_an_item_error_and_its_siblings_still_apply(sent):
    broken = status(sent[1], "delivered", 1767262000)
    del broken["value"]["statuses"][0]["id"]
    event = pending(status(sent[0], "read", 1767262000), broken)
    assert drain.process_pending_webhook_events(limit=100) == 1
    event.refresh_from_db()
    assert event.state == WebhookEventState.PROCESSED
    assert [e["path"] for e in event.item_errors] == ["entry[0].changes[1].statuses[0]"]
    assert Message.objects.get(pk=sent[0].pk).status == "read"


def test_an_item_that_breaks_the_round_is_pinned_on_its_event_and_the_rest_is_applied(sent, monkeypatch):
    real = drain.record_statuses

    def breaks_on_read(*, statuses):
        if any(update.status == "read" for _number, update in statuses):
            raise RuntimeError("a bug only a read status meets")
        return real(statuses=statuses)

    monkeypatch.setattr(drain, "record_statuses", breaks_on_read)
    good = pending(status(sent[0], "delivered", 1767262000))
    bad = pending(status(sent[1], "read", 1767262000))
    assert drain.process_pending_webhook_events(limit=100) == 2
    good.refresh_from_db()
    bad.refresh_from_db()
    assert (good.state, good.item_errors) == (WebhookEventState.PROCESSED, [])
    assert bad.state == WebhookEventState.PROCESSED
    assert bad.item_errors == [
        {"path": "entry[0].changes[0].statuses[0]", "error": "RuntimeError: a bug only a read status meets"}
    ]
    assert list(
        Message.objects.filter(pk__in=[sent[0].pk, sent[1].pk]).order_by("pk").values_list("status", flat=True)
    ) == ["delivered", "sent"]


def test_a_body_the_drain_cannot_read_fails_alone_and_the_rest_of_the_round_is_applied(sent, number):
    # Nested deeper than any parser's stack: the webhook answers such a body 400 now, but a row stored by an
    # older release (or one put back by hand) must not stop every drain at the same place, oldest first.
    before = pending(status(sent[0], "read", 1767262000))
    unreadable = WebhookEvent.objects.create(
        raw_body='{"entry": ' + "[" * 100_000 + "]" * 100_000 + "}", phone_number_id=NUMBER["phone_number_id"]
    )
    inbound_wamid = new_wamid()
    after = pending(
        message_change(**NUMBER, wa_id=CUSTOMER, wamid=inbound_wamid, content={"text": {"body": "still here"}})
    )
    assert drain.process_pending_webhook_events(limit=100) == 3
    unreadable.refresh_from_db()
    assert unreadable.state == WebhookEventState.FAILED and unreadable.error.startswith("RecursionError")
    assert {e.state for e in WebhookEvent.objects.filter(pk__in=[before.pk, after.pk])} == {WebhookEventState.PROCESSED}
    assert Message.objects.get(pk=sent[0].pk).status == "read"
    assert Message.objects.get(wamid=inbound_wamid).body == "still here"


def test_statuses_for_an_unknown_number_are_unroutable_not_batched(sent):
    change = status_change(
        phone_number_id="999", display_phone_number="1555", wamid=sent[0].wamid, status="read", recipient_wa_id=CUSTOMER
    )
    event = pending(change)
    assert drain.process_pending_webhook_events(limit=100) == 1
    event.refresh_from_db()
    assert event.state == WebhookEventState.UNROUTABLE
    assert Message.objects.get(pk=sent[0].pk).status == "sent"


# --- customer messages in a batch --------------------------------------------------------------------------


def text(wa_id: str, body: str, ts: int, *, wamid: str | None = None, name: str = "Amara Okafor") -> dict:
    return message_change(
        **NUMBER, wa_id=wa_id, wamid=wamid or new_wamid(), timestamp=ts, name=name, content={"text": {"body": body}}
    )


def test_a_backlog_of_customer_messages_is_stored_once_each_with_one_update_per_conversation(number):
    existing = ConversationFactory(number=number, contact__wa_id=CUSTOMER, contact__profile_name="Amara")
    redelivered = new_wamid()
    pending(text(CUSTOMER, "first", 1767262000, wamid=redelivered))
    assert drain.process_pending_webhook_events(limit=100) == 1
    Event.objects.all().delete()
    events = [
        pending(text(CUSTOMER, "newest", 1767262300, name="Amara O.")),
        pending(text(CUSTOMER, "older, delivered late", 1767262100, name="Amara O.")),
        pending(text(CUSTOMER, "first", 1767262000, wamid=redelivered, name="Amara O.")),  # redelivered: nothing new
        pending(text("447700900999", "hello from someone new", 1767262200, name="Bea")),
    ]
    assert drain.process_pending_webhook_events(limit=100) == 4

    assert {e.state for e in WebhookEvent.objects.filter(pk__in=[e.pk for e in events])} == {
        WebhookEventState.PROCESSED
    }
    assert Message.objects.filter(wamid=redelivered).count() == 1
    existing.refresh_from_db()
    assert existing.last_message_preview == "newest"  # the late, older message did not move it back
    assert existing.contact.profile_name == "Amara O."
    newcomer = Message.objects.select_related("conversation__contact").get(body="hello from someone new")
    assert newcomer.conversation.contact.profile_name == "Bea"
    created = [e.payload for e in Event.objects.filter(type="message.created").order_by("pk")]
    assert [p["message"]["text"] for p in created] == ["newest", "older, delivered late", "hello from someone new"]
    # Each carries its conversation as the batch left it (the late message too), and nothing else follows.
    assert [p["conversation"]["last_message"] for p in created] == ["newest", "newest", "hello from someone new"]
    assert not Event.objects.filter(type="conversation.updated").exists()


def test_messages_and_statuses_in_one_delivery_are_both_applied(sent):
    inbound = new_wamid()
    event = pending(text(CUSTOMER, "got it", 1767262000, wamid=inbound), status(sent[0], "read", 1767262000))
    assert drain.process_pending_webhook_events(limit=100) == 1
    event.refresh_from_db()
    assert (event.state, event.item_errors) == (WebhookEventState.PROCESSED, [])
    assert Message.objects.get(wamid=inbound).conversation_id == sent[0].conversation_id
    assert Message.objects.get(pk=sent[0].pk).status == "read"


def test_a_wamid_stored_by_another_worker_meanwhile_sends_the_round_event_by_event(number, monkeypatch):
    from django.db import IntegrityError

    real, calls = drain.receive_inbound_messages, []

    def loses_the_race_once(**kwargs):
        calls.append(len(kwargs["items"]))
        if len(calls) == 1:
            raise IntegrityError('duplicate key value violates unique constraint "message_unique_wamid"')
        return real(**kwargs)

    monkeypatch.setattr(drain, "receive_inbound_messages", loses_the_race_once)
    events = [pending(text(CUSTOMER, f"message {n}", 1767262000 + n)) for n in range(3)]
    assert drain.process_pending_webhook_events(limit=100) == 3
    assert calls == [3, 1, 1, 1]  # the round, then each event alone
    assert {e.state for e in WebhookEvent.objects.filter(pk__in=[e.pk for e in events])} == {
        WebhookEventState.PROCESSED
    }
    assert Message.objects.filter(direction="in").count() == 3


def test_reactions_and_number_changes_join_the_round(number):
    target = new_wamid()
    pending(text(CUSTOMER, "photo of my order", 1767262000, wamid=target))
    reaction = message_change(
        **NUMBER,
        wa_id=CUSTOMER,
        message_type="reaction",
        timestamp=1767262100,
        content={"reaction": {"message_id": target, "emoji": "\U0001f44d"}},
    )
    pending(reaction)
    assert drain.process_pending_webhook_events(limit=100) == 2
    message = Message.objects.get(wamid=target)
    assert [r.emoji for r in message.conversation.contact.reactions.all()] == ["\U0001f44d"]

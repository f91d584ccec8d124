"""Ingestion across real processes: signed webhooks → Daphne → PostgreSQL → Celery worker → channel layer,
checked through the REST API (and the Redis channel layer) from outside."""

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from channels_redis.core import RedisChannelLayer

from realtime.groups import number_group
from sandbox.simulation import MESSAGE_TYPES, envelope, message_change, new_wamid, status_change
from tests.e2e.conftest import NUMBER, WABA, free_port, stack_env, start_daphne, stop_process, wait_for
from tests.webhooks.test_payloads import FILES
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.services import drain_keys

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def all_events_done() -> bool:
    return not WebhookEvent.objects.filter(state=WebhookEventState.PENDING).exists()


def test_every_sample_delivery_lands_in_the_api(stack, api):
    for path in FILES:
        assert stack.post_webhook(json.loads(path.read_text())).status_code == 200, path.name
    wait_for(all_events_done, what="all events processed")
    messages = api.all_messages()
    message_samples = [p for p in FILES if p.name.startswith("message_") and "reaction" not in p.name]
    assert len({m["wamid"] for m in messages}) == len(
        {json.loads(p.read_text())["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for p in message_samples}
    )
    assert {m["type"] for m in messages} >= {
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "button",
        "system",
        "request_welcome",
        "unsupported",
        "unknown",
    }
    assert all(m["text"] for m in messages), "every message has a text or preview line"
    assert WebhookEvent.objects.exclude(item_errors=[]).count() == 0


def test_a_batch_of_every_type_in_one_delivery(stack, api):
    changes = [message_change(**NUMBER, wa_id=f"4477009{i:05d}", message_type=t) for i, t in enumerate(MESSAGE_TYPES)]
    assert stack.post_webhook(envelope(waba_id=WABA, changes=changes)).status_code == 200
    wait_for(lambda: len(api.conversations()) == len(MESSAGE_TYPES), what="one conversation per sender")
    assert sorted(m["type"] for m in api.all_messages()) == sorted(MESSAGE_TYPES)


def test_twenty_concurrent_duplicates_give_one_message(stack, api):
    payload = envelope(waba_id=WABA, changes=[message_change(**NUMBER, wa_id="447700900461", name="Amara")])
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda _: stack.post_webhook(payload).status_code, range(20)))
    assert statuses == [200] * 20
    wait_for(lambda: WebhookEvent.objects.filter(state=WebhookEventState.PROCESSED).count() == 20, what="20 events")
    [conversation] = api.conversations()
    assert len(api.messages(conversation["id"])) == 1
    assert conversation["unread_count"] == 1


def test_statuses_out_of_order_end_at_the_highest_and_status_before_message(stack, api, number):
    from conversations.models import Message, MessageStatus
    from conversations.services import register_sent_message
    from tests.factories import ConversationFactory, OutboundMessageFactory

    wamid = new_wamid()
    for status, ts in (("read", 1767263000), ("sent", 1767261000), ("delivered", 1767262000)):
        change = status_change(**NUMBER, wamid=wamid, status=status, recipient_wa_id="447700900461", timestamp=ts)
        assert stack.post_webhook(envelope(waba_id=WABA, changes=[change])).status_code == 200
    wait_for(all_events_done, what="statuses stored")
    # The message appears only now (the send response was slower than Meta's status webhooks).
    message = OutboundMessageFactory(conversation=ConversationFactory(number=number), status=MessageStatus.PENDING)
    register_sent_message(message=message, wamid=wamid)
    [item] = api.messages(message.conversation_id)
    assert item["status"] == "read"
    # And statuses for a message we know, shuffled: the highest wins whatever the arrival order.
    for status, ts in (("delivered", 1767264000), ("sent", 1767263500), ("played", 1767265000), ("read", 1767264500)):
        change = status_change(**NUMBER, wamid=wamid, status=status, recipient_wa_id="447700900461", timestamp=ts)
        stack.post_webhook(envelope(waba_id=WABA, changes=[change]))
    wait_for(lambda: api.messages(message.conversation_id)[0]["status"] == "played", what="played")
    assert Message.objects.get(pk=message.pk).status == "played"


def test_bad_signature_json_and_size_are_refused(stack, number):
    payload = envelope(waba_id=WABA, changes=[message_change(**NUMBER, wa_id="447700900461")])
    assert stack.post_webhook(payload, secret="not-the-app-secret").status_code == 403
    url = f"{stack.base_url}/api/webhook"
    assert requests.post(url, data=b"{}", headers={"Content-Type": "application/json"}, timeout=10).status_code == 401
    from django.conf import settings

    from sandbox.signing import sign_body

    bad = b"{not json"
    headers = {"X-Hub-Signature-256": sign_body(raw_body=bad, app_secret=settings.META_APP_SECRET)}
    assert requests.post(url, data=bad, headers=headers, timeout=10).status_code == 400
    big = b'{"x":"' + b"a" * (4 * 1024 * 1024 + 10) + b'"}'
    headers = {"X-Hub-Signature-256": sign_body(raw_body=big, app_secret=settings.META_APP_SECRET)}
    assert requests.post(url, data=big, headers=headers, timeout=30).status_code == 413
    assert not WebhookEvent.objects.exists()


def test_unknown_number_is_stored_as_unroutable(stack, api):
    change = message_change(phone_number_id="999999999", display_phone_number="15550000000", wa_id="447700900461")
    assert stack.post_webhook(envelope(waba_id=WABA, changes=[change])).status_code == 200
    wait_for(lambda: WebhookEvent.objects.filter(state=WebhookEventState.UNROUTABLE).exists(), what="unroutable")
    assert api.conversations() == []


def test_events_reach_the_redis_channel_layer(stack, api, number):
    async def listen() -> list[dict]:
        layer = RedisChannelLayer(hosts=[stack.redis.url])
        channel = await layer.new_channel()
        await layer.group_add(number_group(number.pk), channel)
        await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: stack.post_webhook(
                envelope(waba_id=WABA, changes=[message_change(**NUMBER, wa_id="447700900461")])
            ),
        )
        received = (await asyncio.wait_for(layer.receive(channel), timeout=10))["events"]
        await layer.flush()
        return received

    received = asyncio.run(listen())
    assert [event["type"] for event in received] == ["message.created"]  # carrying its conversation
    assert received[0]["payload"]["message"]["type"] == "text"
    assert received[0]["payload"]["conversation"]["contact"]["phone"]


def test_redis_down_during_ingest_loses_nothing(stack, api):
    # A drain of the previous test may still be lingering (it polls the table for a second): it would
    # apply these deliveries without Redis. Wait until none is queued or running, as after a quiet spell.
    broker = redis.Redis.from_url(stack.redis.url)
    wait_for(lambda: not broker.exists(*drain_keys()), timeout=30, what="the last drain to stop lingering")
    broker.close()
    stack.redis.stop()
    try:
        sent = []
        for _i in range(5):
            wamid = new_wamid()
            started = time.monotonic()
            response = stack.post_webhook(
                envelope(waba_id=WABA, changes=[message_change(**NUMBER, wa_id="447700900461", wamid=wamid)])
            )
            assert response.status_code == 200, "the event is stored, so Meta gets its 200"
            assert time.monotonic() - started < 5
            sent.append(wamid)
        assert WebhookEvent.objects.filter(state=WebhookEventState.PENDING).count() == 5
    finally:
        stack.redis.start()
    # Redis came back empty: the sweep finds the stored events and the worker processes them.
    wait_for(all_events_done, timeout=60, what="sweep to process events stored while Redis was down")
    assert sorted(m["wamid"] for m in api.all_messages()) == sorted(sent)


def test_database_unreachable_is_503(stack, tmp_path: Path):
    dead_db = f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"
    env = stack_env(database_url=dead_db, redis_url=stack.redis.url)
    process, base_url = start_daphne(env=env, logs=tmp_path, name="daphne-no-db")
    try:
        from django.conf import settings

        from sandbox.simulation import signed_request

        body, headers = signed_request(
            envelope(waba_id=WABA, changes=[message_change(**NUMBER, wa_id="447700900461")]),
            app_secret=settings.META_APP_SECRET,
        )
        response = requests.post(f"{base_url}/api/webhook", data=body, headers=headers, timeout=30)
        assert response.status_code == 503
    finally:
        stop_process(process)

"""Pushing events to the real Redis channel layer from sync code (the worker, the web processes)."""
import asyncio
import contextlib
import os
import threading

import pytest
from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer
from django.db import transaction

from realtime.events import MESSAGE_CREATED
from realtime.groups import number_group
from realtime.publish import RedisPusher, flush_pushes, publish_events, push_to_group

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def envelope(n: int) -> dict:
    return {"id": n, "type": "message.created", "number_id": 1, "payload": {"n": n}}


async def receive_events(layer, channel, count: int, *, timeout: float = 5.0) -> tuple[list[dict], int]:
    events, messages = [], 0
    while len(events) < count:
        message = await asyncio.wait_for(layer.receive(channel), timeout=timeout)
        events += message["events"]
        messages += 1
    return events, messages


# As in production (config/settings/base.py): with the layer's default of 100 messages a channel, pushes that
# happened to go out one message each overflowed it and were dropped, and the test failed now and then.
CAPACITY = 1500


@pytest.fixture
def redis_layer(settings):
    """The settings' channel layer is this Redis (as in production), built anew for the test."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def test_pushes_from_many_threads_arrive_in_order():
    sender_layer = RedisChannelLayer(hosts=[REDIS_URL], capacity=CAPACITY)
    pusher = RedisPusher(sender_layer)

    async def scenario():
        listener = RedisChannelLayer(hosts=[REDIS_URL], capacity=CAPACITY)
        first, second = await listener.new_channel(), await listener.new_channel()
        await listener.group_add("number.901", first)
        await listener.group_add("number.902", second)

        def produce(group: str, start: int):
            for n in range(start, start + 200):
                pusher.submit(group=group, envelopes=[envelope(n)])

        threads = [threading.Thread(target=produce, args=("number.901", 0)), threading.Thread(target=produce, args=("number.902", 1000))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert await asyncio.get_running_loop().run_in_executor(None, lambda: pusher.flush(timeout=10))
        got_first, _ = await receive_events(listener, first, 200)
        got_second, _ = await receive_events(listener, second, 200)
        await listener.flush()
        return got_first, got_second

    got_first, got_second = asyncio.run(scenario())
    assert [e["id"] for e in got_first] == list(range(200))
    assert [e["id"] for e in got_second] == list(range(1000, 1200))


def pushed_and_received(pusher: RedisPusher, group: str, push, count: int) -> tuple[list[dict], int]:
    """``push()`` queues ``count`` events for ``group``; the events a listener then receives, and in how many
    channel-layer messages."""
    async def scenario():
        listener = RedisChannelLayer(hosts=[REDIS_URL], capacity=CAPACITY)
        channel = await listener.new_channel()
        await listener.group_add(group, channel)
        push()
        assert await asyncio.get_running_loop().run_in_executor(None, lambda: pusher.flush(timeout=10))
        got, messages = await receive_events(listener, channel, count)
        await listener.flush()
        return got, messages

    return asyncio.run(scenario())


def test_pushes_queued_behind_a_send_go_out_together_at_most_50_a_message():
    pusher = RedisPusher(RedisChannelLayer(hosts=[REDIS_URL], capacity=CAPACITY))

    def push():
        # Hold the pusher's loop, as a send in flight would, while a batch's events are submitted.
        release = threading.Event()
        pusher.loop.call_soon_threadsafe(release.wait)
        for n in range(120):
            pusher.submit(group="number.904", envelopes=[envelope(n)])
        release.set()

    got, messages = pushed_and_received(pusher, "number.904", push, 120)
    assert [e["id"] for e in got] == list(range(120))
    assert messages == 3  # 50 + 50 + 20


def test_a_failed_push_is_logged_and_later_pushes_still_go_out(caplog):
    pusher = RedisPusher(RedisChannelLayer(hosts=[REDIS_URL]))

    async def scenario():
        listener = RedisChannelLayer(hosts=[REDIS_URL])
        channel = await listener.new_channel()
        await listener.group_add("number.903", channel)
        pusher.submit(group="not a valid group name!", envelopes=[envelope(1)])  # the layer refuses it
        pusher.submit(group="number.903", envelopes=[envelope(2)])
        assert await asyncio.get_running_loop().run_in_executor(None, lambda: pusher.flush(timeout=10))
        events, _ = await receive_events(listener, channel, 1)
        await listener.flush()
        return events

    assert [e["id"] for e in asyncio.run(scenario())] == [2]
    assert "realtime push of events [1] to not a valid group name! failed" in caplog.text


def test_flush_reports_a_push_that_cannot_finish():
    class StuckLayer:
        async def group_send(self, group, message):
            await asyncio.sleep(3600)

    pusher = RedisPusher(StuckLayer())
    pusher.submit(group="number.904", envelopes=[envelope(1)])
    assert pusher.flush(timeout=0.3) is False


def test_push_to_group_goes_through_this_process_pusher_to_redis(redis_layer):
    async def scenario():
        listener = RedisChannelLayer(hosts=[REDIS_URL])
        channel = await listener.new_channel()
        await listener.group_add("number.905", channel)
        for n in (1, 2):
            push_to_group(group="number.905", envelopes=[envelope(n)])
        assert await asyncio.get_running_loop().run_in_executor(None, lambda: flush_pushes(timeout=10))
        events, _ = await receive_events(listener, channel, 2)
        await listener.flush()
        return events

    assert [e["id"] for e in asyncio.run(scenario())] == [1, 2]
    assert RedisPusher.current.pid == os.getpid()


def test_a_publish_goes_out_as_one_message_and_a_rolled_back_savepoint_takes_its_own_events(
    redis_layer, number, django_capture_on_commit_callbacks
):
    group = number_group(number.pk)

    async def listen():
        listener = RedisChannelLayer(hosts=[REDIS_URL])
        channel = await listener.new_channel()
        await listener.group_add(group, channel)
        return listener, channel

    async def received(listener, channel):
        messages = [await asyncio.wait_for(listener.receive(channel), timeout=5)]
        with contextlib.suppress(TimeoutError):  # anything more would come right behind it
            messages.append(await asyncio.wait_for(listener.receive(channel), timeout=0.5))
        await listener.flush()
        return messages

    loop = asyncio.new_event_loop()
    listener, channel = loop.run_until_complete(listen())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        kept = publish_events(number_id=number.pk, events=[(MESSAGE_CREATED, {"n": n}) for n in range(3)])
        with contextlib.suppress(RuntimeError), transaction.atomic():
            publish_events(number_id=number.pk, events=[(MESSAGE_CREATED, {"n": n}) for n in range(3, 5)])
            raise RuntimeError("rolled back")
    assert len(callbacks) == 1  # one per publish (it was one per event), none for the rolled-back one
    assert flush_pushes(timeout=10)
    messages = loop.run_until_complete(received(listener, channel))
    loop.close()
    assert [[event["id"] for event in message["events"]] for message in messages] == [[event.pk for event in kept]]
    assert [event["payload"] for event in messages[0]["events"]] == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_one_push_of_more_events_than_a_message_holds_is_split_in_order():
    pusher = RedisPusher(RedisChannelLayer(hosts=[REDIS_URL], capacity=CAPACITY))

    def push():
        pusher.submit(group="number.906", envelopes=[envelope(n) for n in range(120)])

    got, messages = pushed_and_received(pusher, "number.906", push, 120)
    assert [e["id"] for e in got] == list(range(120))
    assert messages == 3  # 50 + 50 + 20

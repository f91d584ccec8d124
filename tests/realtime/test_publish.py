"""Pushing events to the real Redis channel layer from sync code (the worker, the web processes)."""

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid

import pytest
import redis
from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer
from django.db import transaction

import realtime.publish
from realtime.events import GROUP_ACCESS_CHANGED_TYPE, MESSAGE_CREATED
from realtime.groups import number_group, user_group
from realtime.publish import notify_access_changed, publish_events, push_to_group

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# As in production (config/settings/base.py): with the layer's default of 100 messages a channel, a test
# pushing one message per event overflowed it and lost some.
CAPACITY = 1500


def envelope(n: int) -> dict:
    return {"id": n, "type": "message.created", "number_id": 1, "payload": {"n": n}}


class Listener:
    """A socket's side of the layer: a layer and an event loop of its own, as a Daphne consumer has."""

    def __init__(self, group: str):
        self.group = group
        self.loop = asyncio.new_event_loop()
        self.layer = RedisChannelLayer(hosts=[REDIS_URL], capacity=CAPACITY)
        self.channel = self.loop.run_until_complete(self.layer.new_channel())
        self.loop.run_until_complete(self.layer.group_add(group, self.channel))

    def receive(self, *, timeout: float = 5.0) -> dict:
        return self.loop.run_until_complete(asyncio.wait_for(self.layer.receive(self.channel), timeout))

    def events(self, count: int) -> tuple[list[dict], int]:
        """The next ``count`` events, and in how many channel-layer messages they came."""
        events, messages = [], 0
        while len(events) < count:
            events += self.receive()["events"]
            messages += 1
        return events, messages

    def nothing_more(self) -> bool:
        with contextlib.suppress(TimeoutError):  # anything more would come right behind
            self.receive(timeout=0.5)
            return False
        return True

    def close(self) -> None:
        self.loop.run_until_complete(self.layer.group_discard(self.group, self.channel))
        self.loop.close()  # closes the layer's connections on this loop


@pytest.fixture
def listen():
    listeners = []

    def listen_to(group: str) -> Listener:
        listeners.append(Listener(group))
        return listeners[-1]

    yield listen_to
    for listener in listeners:
        listener.close()


@pytest.fixture
def use_redis_layer(settings):
    """Make the settings' channel layer a Redis one (as in production), built anew: ``use(**host_options)``."""

    def use(url: str = REDIS_URL, **host_options) -> None:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [{"address": url, **host_options}], "capacity": CAPACITY},
            }
        }
        channel_layers.backends.clear()

    yield use
    channel_layers.backends.clear()


def connections_named(name: str) -> list[int]:
    """The ids of the Redis connections open now under this client name (Redis numbers each new one)."""
    with redis.Redis.from_url(REDIS_URL) as client:
        return [entry["id"] for entry in client.client_list() if entry["name"] == name]


def test_pushes_from_many_threads_arrive_in_order(use_redis_layer, listen):
    use_redis_layer()
    first, second = listen("number.901"), listen("number.902")

    def produce(group: str, start: int):
        for n in range(start, start + 200):
            push_to_group(group=group, envelopes=[envelope(n)])

    threads = [
        threading.Thread(target=produce, args=("number.901", 0)),
        threading.Thread(target=produce, args=("number.902", 1000)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e["id"] for e in first.events(200)[0]] == list(range(200))
    assert [e["id"] for e in second.events(200)[0]] == list(range(1000, 1200))


def test_one_push_of_more_events_than_a_message_holds_is_split_in_order(use_redis_layer, listen):
    use_redis_layer()
    listener = listen("number.906")
    push_to_group(group="number.906", envelopes=[envelope(n) for n in range(120)])
    events, messages = listener.events(120)
    assert [e["id"] for e in events] == list(range(120))
    assert messages == 3  # 50 + 50 + 20


def test_a_failed_push_is_logged_and_later_pushes_still_go_out(use_redis_layer, listen, caplog):
    use_redis_layer()
    listener = listen("number.903")
    push_to_group(group="not a valid group name!", envelopes=[envelope(1)])  # the layer refuses it
    push_to_group(group="number.903", envelopes=[envelope(2)])
    assert [e["id"] for e in listener.events(1)[0]] == [2]
    assert "realtime push of events [1] to not a valid group name! failed" in caplog.text


def test_the_pushes_of_a_process_share_one_redis_connection(use_redis_layer, listen):
    """async_to_sync would run each push on a new event loop, and channels-redis opens a connection per loop:
    ~5 times the CPU of a push on the connection kept open."""
    name = f"test-push-{uuid.uuid4().hex[:8]}"
    use_redis_layer(client_name=name)
    listener = listen("number.907")
    push_to_group(group="number.907", envelopes=[envelope(0)])
    after_first_push = connections_named(name)
    for n in range(1, 20):
        push_to_group(group="number.907", envelopes=[envelope(n)])
    assert len(after_first_push) == 1
    assert connections_named(name) == after_first_push
    assert [e["id"] for e in listener.events(20)[0]] == list(range(20))


def test_a_forked_process_pushes_on_a_connection_of_its_own(use_redis_layer, listen):
    """Celery's prefork children: writing on the parent's socket would mix both processes' replies."""
    name = f"test-push-{uuid.uuid4().hex[:8]}"
    use_redis_layer(client_name=name)
    listener = listen("number.908")
    push_to_group(group="number.908", envelopes=[envelope(1)])  # the parent's connection is open
    pid = os.fork()
    if pid == 0:  # the child: push, report whether that took a second connection, and leave at once
        code = 1
        try:
            push_to_group(group="number.908", envelopes=[envelope(2)])
            code = 0 if len(connections_named(name)) == 2 else 2
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    push_to_group(group="number.908", envelopes=[envelope(3)])
    assert [e["id"] for e in listener.events(3)[0]] == [1, 2, 3]


def test_a_silent_redis_holds_a_push_up_for_the_timeout_only(use_redis_layer, listen, monkeypatch, caplog):
    monkeypatch.setattr(realtime.publish, "PUSH_TIMEOUT_SECONDS", 0.3)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connections wait in its backlog, never answered
        use_redis_layer(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        started = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="realtime.publish"):
            push_to_group(group="number.909", envelopes=[envelope(1)])
        assert 0.3 <= time.monotonic() - started < 2
    assert "realtime push of events [1] to number.909 failed" in caplog.text
    use_redis_layer()  # Redis answers again: the next push goes out
    listener = listen("number.909")
    push_to_group(group="number.909", envelopes=[envelope(2)])
    assert [e["id"] for e in listener.events(1)[0]] == [2]


def test_a_publish_goes_out_as_one_message_and_a_rolled_back_savepoint_takes_its_own_events(
    use_redis_layer, listen, number, django_capture_on_commit_callbacks
):
    use_redis_layer()
    listener = listen(number_group(number.pk))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        kept = publish_events(number_id=number.pk, events=[(MESSAGE_CREATED, {"n": n}) for n in range(3)])
        with contextlib.suppress(RuntimeError), transaction.atomic():
            publish_events(number_id=number.pk, events=[(MESSAGE_CREATED, {"n": n}) for n in range(3, 5)])
            raise RuntimeError("rolled back")
    assert len(callbacks) == 1  # one per publish (it was one per event), none for the rolled-back one
    message = listener.receive()
    assert listener.nothing_more()
    assert [event["id"] for event in message["events"]] == [event.pk for event in kept]
    assert [event["payload"] for event in message["events"]] == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_a_change_of_access_reaches_each_user_once(use_redis_layer, listen, db, django_capture_on_commit_callbacks):
    use_redis_layer()
    first, second = listen(user_group(9101)), listen(user_group(9102))
    with django_capture_on_commit_callbacks(execute=True):
        notify_access_changed(user_ids=[9102, 9101, 9102])
    for listener in (first, second):
        assert listener.receive() == {"type": GROUP_ACCESS_CHANGED_TYPE}
        assert listener.nothing_more()

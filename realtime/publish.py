"""Publishing realtime events: logged in the caller's transaction, pushed to the channel layer after commit.

Only services call ``publish_event``. The log row makes every event replayable for a client that
reconnects; the push is best-effort (a Redis hiccup loses the push, never the event).

Pushing to Redis goes through one long-lived event loop per process (``RedisPusher``). ``async_to_sync``
would start a fresh loop for every push, and channels-redis keeps its connections per loop, so each push
paid for a new Redis connection (~4 ms against ~0.15 ms here; the worker pushes two events per message).
The pusher also lets the caller go on without waiting, keeps the order of pushes, and sends the events
that queued up meanwhile for one group in one channel-layer message.
"""
import asyncio
import atexit
import logging
import os
import threading
from itertools import groupby

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from database.bulk import insert_rows
from realtime.events import EVENT_TYPES, GROUP_ACCESS_CHANGED_TYPE, GROUP_MESSAGE_TYPE, Envelope
from realtime.groups import number_group, user_group
from realtime.models import Event

logger = logging.getLogger(__name__)

# Events for one group sent in one channel-layer message, at most (keeps each message small).
MAX_EVENTS_PER_MESSAGE = 50


def publish_event(*, number_id: int, type: str, payload: dict, user_id: int | None = None) -> Event:
    """Log the event and push it after commit to everyone who may see the number (or to one user)."""
    return publish_events(number_id=number_id, events=[(type, payload)], user_id=user_id)[0]


def publish_events(*, number_id: int, events: list[tuple[str, dict]], user_id: int | None = None) -> list[Event]:
    """Log several ``(type, payload)`` events of one number in one INSERT and push them after commit, in this
    order, to everyone who may see the number (or to one user)."""
    for type, _payload in events:
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown realtime event type {type!r}")
    logged = insert_rows(
        objects=[Event(number_id=number_id, user_id=user_id, type=type, payload=payload) for type, payload in events]
    )
    group = user_group(user_id) if user_id is not None else number_group(number_id)
    envelopes: list[Envelope] = [
        {"id": event.pk, "type": event.type, "number_id": number_id, "payload": event.payload} for event in logged
    ]
    # One callback for the events of this INSERT, which a rolled-back savepoint drops together (not one per
    # transaction: an inner savepoint rolled back must drop only its own). It was one per event: a drain's round
    # of 500 messages queued 500 callbacks and woke the pusher's loop 500 times.
    transaction.on_commit(lambda: push_to_group(group=group, envelopes=envelopes))
    return logged


def group_message(envelopes: list[Envelope]) -> dict:
    """The channel-layer message for consumers: events in order (``InboxConsumer.inbox_event``)."""
    return {"type": GROUP_MESSAGE_TYPE, "events": envelopes}


def push_to_group(*, group: str, envelopes: list[Envelope]) -> None:
    """Send these events, in order, to a group's sockets: at most ``MAX_EVENTS_PER_MESSAGE`` per message."""
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        # Embedded mode and unit tests: the layer lives in the caller's event loop (asgiref finds it).
        for chunk in _chunks(envelopes):
            try:
                async_to_sync(layer.group_send)(group, group_message(chunk))
            except Exception:
                logger.exception("realtime push of events %s to %s failed", [e["id"] for e in chunk], group)
        return
    RedisPusher.for_this_process(layer).submit(group=group, envelopes=envelopes)


def _chunks(envelopes: list[Envelope]) -> list[list[Envelope]]:
    size = MAX_EVENTS_PER_MESSAGE
    return [envelopes[start : start + size] for start in range(0, len(envelopes), size)]


def notify_access_changed(*, user_ids) -> None:
    """After commit, tell these users' open sockets that the numbers they may see changed. Rare (an admin's
    edit), so sent directly rather than through the pusher."""
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return

    def send() -> None:
        layer = get_channel_layer()
        for user_id in user_ids:
            try:
                async_to_sync(layer.group_send)(user_group(user_id), {"type": GROUP_ACCESS_CHANGED_TYPE})
            except Exception:
                # The socket keeps its old access until it reconnects: say so loudly, it matters for removals.
                logger.exception("could not tell user %s's sockets that their access changed", user_id)

    transaction.on_commit(send)


def flush_pushes(*, timeout: float = 5.0) -> bool:
    """Wait until this process has sent every push it queued; ``False`` if that took longer than ``timeout``."""
    pusher = RedisPusher.current
    return True if pusher is None or pusher.pid != os.getpid() else pusher.flush(timeout=timeout)


class RedisPusher:
    """A daemon thread running one event loop that sends queued pushes in order, batching per group."""

    current: "RedisPusher | None" = None
    _lock = threading.Lock()

    @classmethod
    def for_this_process(cls, layer) -> "RedisPusher":
        pusher = cls.current
        # After a fork (Celery's prefork pool) the parent's thread does not exist in the child.
        if pusher is None or pusher.pid != os.getpid() or pusher.layer is not layer:
            with cls._lock:
                pusher = cls.current
                if pusher is None or pusher.pid != os.getpid() or pusher.layer is not layer:
                    pusher = cls.current = cls(layer)
        return pusher

    def __init__(self, layer):
        self.layer = layer
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.thread = threading.Thread(target=self._run, name="realtime-pusher", daemon=True)
        self.thread.start()

    def submit(self, *, group: str, envelopes: list[Envelope]) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (group, envelopes))

    def flush(self, *, timeout: float) -> bool:
        try:
            asyncio.run_coroutine_threadsafe(self.queue.join(), self.loop).result(timeout)
        except TimeoutError:
            return False
        return True

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._send_forever())

    async def _send_forever(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            # Consecutive pushes to the same group travel together; the order of all pushes is kept.
            for group, items in groupby(batch, key=lambda item: item[0]):
                for chunk in _chunks([envelope for _group, envelopes in items for envelope in envelopes]):
                    try:
                        await self.layer.group_send(group, group_message(chunk))
                    except Exception:
                        ids = [envelope["id"] for envelope in chunk]
                        logger.exception("realtime push of events %s to %s failed; clients catch up from the log", ids, group)
            for _item in batch:
                self.queue.task_done()


# Pushes still queued when a process exits would be lost; give them a moment (the log has them anyway).
atexit.register(flush_pushes, timeout=2.0)

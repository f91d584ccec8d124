"""Publishing realtime events: logged in the caller's transaction, pushed to the channel layer after commit.

Only services call ``publish_event``. The log row makes every event replayable for a client that
reconnects; the push is best-effort (a Redis hiccup loses the push, never the event).

A push is channels' own ``group_send``, run in the caller on one event loop kept for the life of the process.
channels-redis keeps its Redis connections per event loop and closes them with the loop, and asgiref's
``async_to_sync``, called from sync code, runs each call in ``asyncio.run`` on a new loop in a new thread: a
thread and a Redis connection per message. CPU per push, sync caller, local Redis: 2 events, 3.4 ms that way
against 0.7 ms on the kept loop; a drain round's 250 events (5 messages), 13 ms against 2 ms. A round of 500
updates costs the worker ~150 ms and pushes twice per number (messages, statuses): ~15 % more through
``async_to_sync``, ~3 % on the kept loop. Sending from a thread of our own saved ~0.2 ms a push (0.3 % of a
round); the caller now waits for its push, ~2 ms for 250 events.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable

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
# The longest one message may hold up its caller (a drain round, a request) when Redis does not answer
# (unbounded, a silent Redis held it for minutes).
PUSH_TIMEOUT_SECONDS = 1.0


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
    # of 500 messages queued 500 callbacks and sent 500 channel-layer messages.
    transaction.on_commit(lambda: push_to_group(group=group, envelopes=envelopes))
    return logged


def group_message(envelopes: list[Envelope]) -> dict:
    """The channel-layer message for consumers: events in order (``InboxConsumer.inbox_event``)."""
    return {"type": GROUP_MESSAGE_TYPE, "events": envelopes}


def push_to_group(*, group: str, envelopes: list[Envelope]) -> None:
    """Send these events, in order, to a group's sockets: at most ``MAX_EVENTS_PER_MESSAGE`` per message. A
    failure is logged, never raised: clients catch up from the log."""
    layer = get_channel_layer()
    for chunk in _chunks(envelopes):
        try:
            _send_to_group(layer, group, group_message(chunk))
        except Exception:
            ids = [envelope["id"] for envelope in chunk]
            logger.exception("realtime push of events %s to %s failed; clients catch up from the log", ids, group)


def _chunks(envelopes: list[Envelope]) -> list[list[Envelope]]:
    size = MAX_EVENTS_PER_MESSAGE
    return [envelopes[start : start + size] for start in range(0, len(envelopes), size)]


def notify_access_changed(*, user_ids) -> None:
    """After commit, tell these users' open sockets that the numbers they may see changed."""
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return

    def send() -> None:
        layer = get_channel_layer()
        for user_id in user_ids:
            try:
                _send_to_group(layer, user_group(user_id), {"type": GROUP_ACCESS_CHANGED_TYPE})
            except Exception:
                # The socket keeps its old access until it reconnects: say so loudly, it matters for removals.
                logger.exception("could not tell user %s's sockets that their access changed", user_id)

    transaction.on_commit(send)


def _send_to_group(layer, group: str, message: dict) -> None:
    """``layer.group_send`` from sync code, returning once the layer has the message."""
    if isinstance(layer, InMemoryChannelLayer):
        # Embedded mode and unit tests: the layer lives in the caller's event loop (asgiref finds it).
        async_to_sync(layer.group_send)(group, message)
    else:
        _run_on_push_loop(layer.group_send(group, message))


# The loop every push of this process runs on: channels-redis keeps one Redis connection for it. One push at
# a time, whichever thread pushes (gunicorn's threads, Daphne's sync threads).
_push_loop: asyncio.AbstractEventLoop | None = None
_push_loop_lock = threading.Lock()


def _run_on_push_loop(send: Awaitable) -> None:
    global _push_loop
    with _push_loop_lock:
        if _push_loop is None:
            _push_loop = asyncio.new_event_loop()
        _push_loop.run_until_complete(asyncio.wait_for(send, PUSH_TIMEOUT_SECONDS))


def _forget_push_loop() -> None:
    # A forked child (Celery's prefork pool) must not write on its parent's Redis connection, nor inherit a
    # lock some parent thread held: it starts its own loop, and connection, on its first push.
    global _push_loop, _push_loop_lock
    _push_loop, _push_loop_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_push_loop)

"""Writes for Meta's deliveries: storing each one as it comes, asking for a drain to process it, replaying
and purging stored events.

A delivery is stored before anything interprets it (Meta has no API to fetch a lost webhook), then applied
by a drain (``webhooks/drain.py``, which describes how no stored event is ever stranded).
"""

import logging
import os
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime

import redis
from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from ops.logs import request_id_var
from ops.redis_client import redis_client, redis_configured
from webhooks.fastpath import insert_webhook_event
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.selectors import purgeable_webhook_events

logger = logging.getLogger(__name__)

# The fields whose items reach the inbox on the drain's per-message path. Account-level fields
# (conversations.account_events.ACCOUNT_FIELDS) have their own branch; any other is stored and acknowledged.
PROCESSED_FIELDS = {"messages"}
# The drain task's name (webhooks/tasks.py registers it under it): enqueued by name, so this module, which the
# tasks call, does not import them.
DRAIN_TASK = "webhooks.drain"


def store_webhook_event(*, raw_body: bytes, payload: dict, signature: str) -> int:
    """Persist one verified delivery and make sure a drain will process it; returns the event's id.
    ``raw_body`` is UTF-8 (the caller has parsed it as JSON)."""
    fields = {
        "raw_body": raw_body.decode("utf-8"),
        "signature": signature,
        "phone_number_id": first_phone_number_id(payload),
        "request_id": (request_id_var.get() or "")[:64],
    }
    event_id = insert_webhook_event(**fields) or WebhookEvent.objects.create(**fields).pk
    transaction.on_commit(request_drain)  # at once in autocommit: the row is durable before Meta hears 200
    return event_id


def first_phone_number_id(payload: dict) -> str:
    """The business number a delivery is addressed to (the first one), stored beside the raw body for the admin
    and the health checks without parsing the rest. Meta's ids are digits: anything else is stored as none (the
    drain routes by the parsed body, and PostgreSQL would refuse a NUL in the column)."""
    entries = payload.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else ():
            value = change.get("value") if isinstance(change, dict) else None
            metadata = value.get("metadata") if isinstance(value, dict) else None
            number_id = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
            if number_id:
                number_id = str(number_id)
                return number_id if number_id.isascii() and number_id.isdigit() and len(number_id) <= 64 else ""
    return ""


def drain_flag(slot: int) -> str:
    return f"webhooks:drain:{slot}"


# The drain's promise (step 2 of the protocol in webhooks/drain.py): "I will look again before I stop, and I
# will not stop before this key expires". A web process that read its time left skips Redis until then.
DRAIN_PROMISE = "webhooks:drain:promise"
# Kept off the end of a promise a web process read: room for the two processes' clocks to run at other rates.
PROMISE_MARGIN_SECONDS = 0.05


class _PromiseSeen:
    """Until when (this process's monotonic clock) a drain is known to look again before it stops."""

    until = 0.0


promise_seen = _PromiseSeen()


class _Flags:
    """Where the drain flags and the promise live: Redis when there is Redis, through one client per process
    (Django's Redis cache builds a client on every call, a third of a millisecond per delivery); Django's cache
    otherwise (the embedded mode, which makes no promise)."""

    def __init__(self):
        self._client = None
        self._pid = None

    def _redis(self) -> redis.Redis | None:
        if not redis_configured():
            return None
        if self._client is None or self._pid != os.getpid():  # a forked worker opens its own
            self._client = redis_client(timeout=2)
            self._pid = os.getpid()
        return self._client

    def add_and_read_promise(self, key: str, *, ttl: int) -> tuple[bool, int]:
        """Set ``key`` if unset, and read the milliseconds left of the drain's promise, in one round trip."""
        client = self._redis()
        if not client:
            return cache.add(key, "1", timeout=ttl), 0
        added, promise_ms = (
            client.pipeline(transaction=False).set(key, "1", nx=True, ex=ttl).pttl(DRAIN_PROMISE).execute()
        )
        return bool(added), max(promise_ms, 0)

    def promise(self, *, seconds: float) -> None:
        client = self._redis()
        if client and seconds > 0:
            client.set(DRAIN_PROMISE, "1", px=int(seconds * 1000))

    def promise_left(self) -> bool:
        client = self._redis()
        return bool(client) and client.pttl(DRAIN_PROMISE) > 0

    def set(self, key: str, *, ttl: int) -> None:
        client = self._redis()
        if client:
            client.set(key, "1", ex=ttl)
        else:
            cache.set(key, "1", timeout=ttl)

    def delete(self, *keys: str) -> None:
        client = self._redis()
        if client:
            client.delete(*keys)
        else:
            cache.delete_many(keys)


flags = _Flags()


def drain_keys() -> list[str]:
    """Every Redis key of the drain protocol: while one exists, a drain is queued or running."""
    return [DRAIN_PROMISE, *[drain_flag(slot) for slot in range(max(settings.WEBHOOK_DRAIN_CONCURRENCY, 8))]]


def clear_drain_flags() -> None:
    """Forget every drain flag (the bench between phases, the tests between tests)."""
    flags.delete(*drain_keys())
    promise_seen.until = 0.0


def request_drain(*, slot: int = 0) -> bool:
    """Make sure a drain (in ``slot``) is queued or running; ``False`` if Redis could not be reached (the sweep
    then asks later)."""
    if slot == 0 and time.monotonic() < promise_seen.until:
        return True  # the drain will look again before it stops
    flag = drain_flag(slot)
    try:
        asked_at = time.monotonic()
        added, promise_ms = flags.add_and_read_promise(flag, ttl=settings.WEBHOOK_DRAIN_CLAIM_SECONDS)
        if slot == 0 and promise_ms:
            promise_seen.until = asked_at + promise_ms / 1000 - PROMISE_MARGIN_SECONDS
        if added:
            enqueue_drain(slot=slot)
    except Exception:
        logger.warning("could not request webhook processing; the sweep will", exc_info=True)
        with suppress(Exception):
            flags.delete(flag)
        return False
    return True


def enqueue_drain(*, slot: int) -> None:
    current_app.tasks[DRAIN_TASK].delay(slot)  # an unregistered name raises, never goes to the broker


def replay_webhook_events(*, event_ids: list[int]) -> int:
    """Put events back to pending and ask for a drain; processing is idempotent, so nothing is doubled."""
    count = WebhookEvent.objects.filter(pk__in=event_ids).update(state=WebhookEventState.PENDING, error="")
    transaction.on_commit(request_drain)
    return count


def purge_webhook_events(
    *,
    before: datetime,
    include_failed: bool = False,
    batch_size: int = 1000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete processed and unroutable events received before ``before`` (and failed ones if asked), never
    pending ones, in batches of ``batch_size``: each batch is its own short transaction, so the webhook view
    and the workers are never blocked behind one huge DELETE. ``on_batch`` gets each batch's count."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    deleted_total = 0
    while True:
        with transaction.atomic():
            ids = list(
                purgeable_webhook_events(before=before, include_failed=include_failed)
                .order_by("received_at", "pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return deleted_total
            # The state is checked again in the DELETE: an event replayed (set pending) meanwhile stays. Only the
            # ids are read: the account changes' link to their delivery is set to null first, so Django reads the
            # rows it deletes, and their raw bodies would come with them.
            deleted, _by_model = (
                WebhookEvent.objects.filter(pk__in=ids, received_at__lt=before)
                .exclude(state=WebhookEventState.PENDING)
                .only("pk")
                .delete()
            )
        deleted_total += deleted
        if on_batch is not None:
            on_batch(deleted)

"""Writes for Meta's deliveries: storing each one as it comes, asking for a drain to process it, replaying
and purging stored events.

A delivery is stored before anything interprets it (Meta has no API to fetch a lost webhook), then applied
by a drain (``webhooks/drain.py``, which describes how no stored event is ever stranded).
"""

import logging
import os
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime

import redis
from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from ops.logs import request_id_var
from webhooks.fastpath import insert_webhook_event
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.selectors import purgeable_webhook_events

logger = logging.getLogger(__name__)

# Deliveries on other fields (template status, account updates, ...) are stored and acknowledged, not applied yet.
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


class _Flags:
    """Where the drain flags live: Redis when there is Redis, through one client per process (Django's Redis
    cache builds a client on every call, a third of a millisecond per delivery); Django's cache otherwise
    (the embedded mode)."""

    def __init__(self):
        self._client = None
        self._pid = None

    def _redis(self) -> redis.Redis | None:
        if not settings.REDIS_URL:
            return None
        if self._client is None or self._pid != os.getpid():  # a forked worker opens its own
            self._client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
            self._pid = os.getpid()
        return self._client

    def add(self, key: str, *, ttl: int) -> bool:
        client = self._redis()
        return bool(client.set(key, "1", nx=True, ex=ttl)) if client else cache.add(key, "1", timeout=ttl)

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
    """Every drain flag: while one exists, a drain is queued or running."""
    return [drain_flag(slot) for slot in range(max(settings.WEBHOOK_DRAIN_CONCURRENCY, 8))]


def clear_drain_flags() -> None:
    """Forget every drain flag (the bench between phases, the tests between tests)."""
    flags.delete(*drain_keys())


def request_drain(*, slot: int = 0) -> bool:
    """Make sure a drain (in ``slot``) is queued or running; ``False`` if Redis could not be reached (the sweep
    then asks later)."""
    flag = drain_flag(slot)
    try:
        if flags.add(flag, ttl=settings.WEBHOOK_DRAIN_CLAIM_SECONDS):
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
            # The state is checked again in the DELETE: an event replayed (set pending) meanwhile stays.
            deleted, _by_model = (
                WebhookEvent.objects.filter(pk__in=ids, received_at__lt=before)
                .exclude(state=WebhookEventState.PENDING)
                .delete()
            )
        deleted_total += deleted
        if on_batch is not None:
            on_batch(deleted)

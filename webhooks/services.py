"""Writes for webhook deliveries: storing the raw event, processing it into the inbox, replaying it.

A delivery is stored before anything interprets it (Meta has no API to fetch a lost webhook), then
processed by a Celery task. Processing is idempotent (the inbox services rely on unique constraints),
so a redelivery, a replay or a task that runs twice changes nothing the second time.

Operators also read the stored events' health here and purge old ones (``check_meta``, ``inbox_stats``,
``purge_webhook_events``).
"""
import logging
import os
import time
import traceback
import weakref
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, F, Max, Min, Q
from django.utils import timezone
from psycopg.pq import ConnStatus, ExecStatus

from ops.logs import log_context, request_id_var
from contacts.services import Sender, change_contact_identity, resolve_contact, resolve_contacts
from conversations.models import BusinessNumber
from conversations.services import (
    InboundItem,
    apply_reaction,
    receive_inbound_message,
    receive_inbound_messages,
    record_status,
    record_statuses,
)
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.payloads import (
    Change,
    InboundMessage,
    StatusUpdate,
    first_phone_number_id,
    parse_delivery,
    parse_message,
    parse_status,
    profile_for,
    storable_text,
)

logger = logging.getLogger(__name__)

# Deliveries on other fields (template status, account updates, ...) are stored and acknowledged, not processed yet.
PROCESSED_FIELDS = {"messages"}
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)


# One statement, prepared once per connection: the webhook's whole database cost. The columns left out
# take their database defaults or are filled the same way here (state pending, no attempts, no errors).
_INSERT_EVENT = (
    b"INSERT INTO webhooks_webhookevent"
    b" (received_at, raw_body, signature, phone_number_id, request_id, state, attempts, error, item_errors)"
    b" VALUES (now(), $1, $2, $3, $4, 'pending', 0, '', '[]') RETURNING id"
)
_INSERT_EVENT_NAME = b"inbox_store_webhook_event"


def store_webhook_event(*, raw_body: bytes, payload: dict, signature: str) -> int:
    """Persist one verified delivery (one durable INSERT) and make sure a drain will process it; returns
    the event's id. ``raw_body`` is UTF-8 (the caller has parsed it as JSON)."""
    phone_number_id = first_phone_number_id(payload)
    request_id = (request_id_var.get() or "")[:64]
    # The connection looked up once: each use of django.db.connection (and transaction.on_commit's lookup) goes
    # through the connection handler's asgiref Local again (~2 µs, AttributeErrors raised and caught inside), six
    # times per delivery: 6 % of the webhook's instructions (callgrind).
    db = connections[DEFAULT_DB_ALIAS]
    # Committed on its own (autocommit): the row is durable before Meta hears 200. Inside a caller's transaction
    # (tests, scripts) or on SQLite, the ORM: a statement sent around psycopg there could commit on its own (it
    # sends BEGIN with its first statement of a transaction).
    if db.vendor == "postgresql" and db.get_autocommit():
        event_id = _insert_event(db, (raw_body, signature.encode(), phone_number_id.encode(), request_id.encode()))
    else:
        event_id = WebhookEvent.objects.create(
            raw_body=raw_body.decode("utf-8"), signature=signature, phone_number_id=phone_number_id, request_id=request_id
        ).pk
    db.on_commit(request_processing)  # at once in autocommit; after the caller's commit otherwise
    return event_id


def _insert_event(db: BaseDatabaseWrapper, params: tuple[bytes, bytes, bytes, bytes]) -> int:
    """The INSERT on PostgreSQL. Django's per-request connection health check is skipped (a round trip
    per webhook); instead a connection found dead is replaced and the INSERT tried once more. That can
    store a delivery twice if the first commit landed before the connection broke: processing is
    idempotent, as for Meta's retries."""
    db.ensure_connection()
    raw = db.connection
    try:
        return _execute_insert(db, raw, params)
    except OperationalError:
        if not raw.closed:
            raise
    logger.warning("database connection was closed; reconnecting to store the webhook")
    db.close()
    db.ensure_connection()
    return _execute_insert(db, db.connection, params)


# The connections the statement is prepared on (a new connection, after a restart or CONN_MAX_AGE, has not).
_prepared_on: "weakref.WeakSet[psycopg.Connection]" = weakref.WeakSet()


def _execute_insert(db: BaseDatabaseWrapper, raw: psycopg.Connection, params: tuple[bytes, bytes, bytes, bytes]) -> int:
    """Straight through libpq: a server-side prepared statement, its text parameters already bytes (the
    body as it came, without a decode and an encode). psycopg's cursor (a Transformer, the query
    converted, each parameter dumped, the row loaded) took 49 µs of CPU per INSERT where this takes 17 µs
    (a loop of INSERTs in one process): ~3 % of a web process's time per delivery."""
    with db.wrap_database_errors, raw.lock:
        if raw not in _prepared_on:
            _check(raw, raw.pgconn.prepare(_INSERT_EVENT_NAME, _INSERT_EVENT), ExecStatus.COMMAND_OK)
            _prepared_on.add(raw)
        result = raw.pgconn.exec_prepared(_INSERT_EVENT_NAME, params)
        _check(raw, result, ExecStatus.TUPLES_OK)
        return int(result.get_value(0, 0))


def _check(raw: psycopg.Connection, result: psycopg.pq.abc.PGresult, expected: ExecStatus) -> None:
    if result.status == expected:
        return
    if raw.pgconn.status == ConnStatus.BAD:
        # A lost connection's result carries no SQLSTATE; psycopg's cursor calls it OperationalError too.
        raise psycopg.OperationalError(result.get_error_message())
    raise psycopg.errors.error_from_result(result)


# --- processing: drains ----------------------------------------------------------------------------------
#
# The webhook does not enqueue a task per delivery (a Celery publish costs more than the INSERT). It sets a
# flag in Redis, "a drain is queued or running", and enqueues a drain only when it set the flag. A drain
# processes pending events in rounds, oldest first (process_pending_webhook_events), until none is left and
# its linger is over. Before it stops it clears the flag and looks once more: a delivery committed before
# the flag was cleared is seen by that last look, one committed after it sets the flag again and enqueues a
# new drain, so none is stranded. With a backlog, or events waiting too long, a drain asks for a second one
# (slot 1, ...) up to WEBHOOK_DRAIN_CONCURRENCY; rows are claimed with SKIP LOCKED, so drains never wait for
# each other. The beat sweep covers the rest (Redis was down; a worker died holding a flag, which then goes
# stale: a live drain refreshes it every third of WEBHOOK_DRAIN_CLAIM_SECONDS, and it expires after all of it).
#
# Under steady traffic even that SET is most of a webhook's Redis cost, so the first drain also makes a
# promise: after each round with work it sets a short-lived key, "I will look again before I stop, and I
# will not stop before this key expires". A web process that reads the promise's remaining time (with its
# SET, one round trip) skips Redis until then, measured from before it asked: any delivery it commits in
# that window is committed before the drain's last look. The drain waits for the promise to expire before
# it clears its flag; with WEBHOOK_DRAIN_LINGER_SECONDS 0 (the tests) no promise is made.


def _drain_flag(slot: int) -> str:
    return f"webhooks:drain:{slot}"


_DRAIN_PROMISE = "webhooks:drain:promise"
# Kept off the end of a promise a web process read: room for the two clocks' rates to differ.
_PROMISE_MARGIN_SECONDS = 0.05


def _promise_seconds() -> float:
    return min(0.5, settings.WEBHOOK_DRAIN_LINGER_SECONDS / 2)


class _PromiseSeen:
    """Until when (this process's monotonic clock) a drain is known to look again before it stops."""

    until = 0.0


_promise_seen = _PromiseSeen()


class _Flags:
    """Where the drain flags live: Redis, through one client per process, when there is Redis (Django's
    Redis cache builds a client object on every call, a third of a millisecond of CPU per webhook);
    Django's cache otherwise (embedded mode, the in-process tests)."""

    def __init__(self):
        self._client = None
        self._pid = None

    def _redis(self):
        if not settings.REDIS_URL:
            return None
        if self._client is None or self._pid != os.getpid():
            self._client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
            self._pid = os.getpid()
        return self._client

    def add_and_read_promise(self, key: str, value: str, *, ttl: int) -> tuple[bool, int]:
        """``add``, and the milliseconds left of the drain's promise, in one round trip (0: none)."""
        client = self._redis()
        if not client:
            return cache.add(key, value, timeout=ttl), 0
        added, promise_ms = client.pipeline(transaction=False).set(key, value, nx=True, ex=ttl).pttl(_DRAIN_PROMISE).execute()
        return bool(added), max(promise_ms, 0)

    def promise(self, *, seconds: float) -> None:
        client = self._redis()
        if client and seconds > 0:
            client.set(_DRAIN_PROMISE, "1", px=int(seconds * 1000))

    def promise_left(self) -> bool:
        client = self._redis()
        return bool(client) and client.pttl(_DRAIN_PROMISE) > 0

    def set(self, key: str, value: str, *, ttl: int) -> None:
        client = self._redis()
        if client:
            client.set(key, value, ex=ttl)
        else:
            cache.set(key, value, timeout=ttl)

    def get(self, key: str) -> str | None:
        client = self._redis()
        value = client.get(key) if client else cache.get(key)
        return value.decode() if isinstance(value, bytes) else value

    def delete(self, *keys: str) -> None:
        client = self._redis()
        if client:
            client.delete(*keys)
        else:
            cache.delete_many(keys)


flags = _Flags()


def drain_keys() -> list[str]:
    """Every Redis key of the drain protocol: while one exists, a drain is queued or running."""
    return [_DRAIN_PROMISE, *[_drain_flag(slot) for slot in range(max(settings.WEBHOOK_DRAIN_CONCURRENCY, 8))]]


def clear_drain_flags() -> None:
    """Forget every drain flag (the bench between phases, the tests between tests)."""
    flags.delete(*drain_keys())
    _promise_seen.until = 0.0


def request_processing(*, slot: int = 0) -> bool:
    """Make sure a drain (in ``slot``) is queued or running; ``False`` if Redis could not be reached."""
    from webhooks.tasks import drain_webhook_events_task

    if slot == 0 and time.monotonic() < _promise_seen.until:
        return True  # the drain will look again before it stops (see the protocol above)
    flag = _drain_flag(slot)
    try:
        asked_at = time.monotonic()
        added, promise_ms = flags.add_and_read_promise(flag, _stamp("queued"), ttl=settings.WEBHOOK_DRAIN_CLAIM_SECONDS)
        if slot == 0 and promise_ms:
            _promise_seen.until = asked_at + promise_ms / 1000 - _PROMISE_MARGIN_SECONDS
        if not added:
            return True
        drain_webhook_events_task.delay(slot)
    except Exception:
        logger.warning("could not request webhook processing; the sweep will", exc_info=True)
        with suppress(Exception):
            flags.delete(flag)
        return False
    return True


# How often a lingering drain looks for new events (one indexed EXISTS each time).
DRAIN_POLL_SECONDS = 0.01
# The shortest time between two rounds that did not fill up (at most this much latency is added).
DRAIN_ROUND_SECONDS = 0.05
# A round costs about a dozen queries and a few milliseconds of CPU whatever its size. From this arrival
# rate on (events per second, measured over the last round), rounds come every DRAIN_BUSY_ROUND_SECONDS
# instead and gather five times as many events each: measured with new messages on 2 cores, the worker's
# CPU per event fell by about a fifth and the webhooks answered rose with it. Below that rate CPU is
# not what is short, and latency stays at DRAIN_ROUND_SECONDS.
DRAIN_BUSY_RATE = 500
DRAIN_BUSY_ROUND_SECONDS = 0.25
# A drain that finds events older than this after a round asks for a second drain: one drain is not
# keeping up (slow deliveries applied one by one, or more traffic than one process can apply). Not less:
# on a busy machine a round's own events wait up to its interval and its duration, and there a second
# drain only takes CPU from the web processes (measured: fewer webhooks answered, more CPU per event).
# A backlog brings one in at once anyway (a round that came back full).
DRAIN_LAG_SECONDS = 0.5


def round_interval(*, done: int, seconds_since_last_round: float | None) -> float:
    """How long after the start of a round that did not fill up the next one starts. The rate is taken
    over at least DRAIN_ROUND_SECONDS: a lingering drain looks again 10 ms after an empty round, and a few
    deliveries found then are not 500 a second."""
    if seconds_since_last_round is None:
        return DRAIN_ROUND_SECONDS
    if done / max(seconds_since_last_round, DRAIN_ROUND_SECONDS) >= DRAIN_BUSY_RATE:
        return DRAIN_BUSY_ROUND_SECONDS
    return DRAIN_ROUND_SECONDS


def drain_webhook_events(*, slot: int = 0) -> int:
    """Process pending events until none is left or the time budget is spent; returns how many.

    When it runs out of work the first drain lingers for ``WEBHOOK_DRAIN_LINGER_SECONDS``, looking for new
    events every 10 ms: under steady traffic it keeps its flag, so deliveries neither enqueue a task each
    nor wait for a worker to pick one up. Past the budget (``WEBHOOK_DRAIN_SECONDS``) the drain re-enqueues
    itself, keeping its flag, so sends and media downloads queued behind it get a worker in between.
    """
    from webhooks.tasks import drain_webhook_events_task

    flag = _drain_flag(slot)
    deadline = time.monotonic() + settings.WEBHOOK_DRAIN_SECONDS
    linger = settings.WEBHOOK_DRAIN_LINGER_SECONDS if slot == 0 else 0.0
    round_size = settings.WEBHOOK_DRAIN_BATCH
    refresh_every = settings.WEBHOOK_DRAIN_CLAIM_SECONDS / 3
    total = 0
    flag_set_at = last_work = float("-inf")
    last_round_started = None
    try:
        while True:
            if time.monotonic() - flag_set_at > refresh_every:
                flags.set(flag, _stamp("running"), ttl=settings.WEBHOOK_DRAIN_CLAIM_SECONDS)
                flag_set_at = time.monotonic()
            round_started = time.monotonic()
            since_last_round = round_started - last_round_started if last_round_started is not None else None
            last_round_started = round_started
            done = process_pending_webhook_events(limit=round_size)
            total += done
            now = time.monotonic()
            if done:
                last_work = now
                if slot == 0:
                    flags.promise(seconds=_promise_seconds())
            elif now - last_work < linger and now < deadline:
                # Sleep at least once: pending events may be rows another drain holds right now.
                time.sleep(DRAIN_POLL_SECONDS)
                while time.monotonic() - last_work < linger and not _has_pending_events():
                    time.sleep(DRAIN_POLL_SECONDS)
                continue
            if done == 0:
                if slot == 0 and flags.promise_left():
                    time.sleep(DRAIN_POLL_SECONDS)  # web processes count on a look after their commit
                    continue
                flags.delete(flag)
                flag_set_at = float("-inf")  # set again at once if the last look finds work
                done = process_pending_webhook_events(limit=round_size)  # the last look (see above)
                total += done
                if done == 0:
                    return total
                continue
            if slot + 1 < settings.WEBHOOK_DRAIN_CONCURRENCY and (done == round_size or _falling_behind()):
                request_processing(slot=slot + 1)  # a backlog: a second drain shares it
            if time.monotonic() > deadline:
                drain_webhook_events_task.delay(slot)
                return total
            if done < round_size:
                # Keeping up: let the next round gather what arrives meanwhile. A round costs a dozen
                # queries whatever its size, so rounds of one event each would keep a core busy.
                interval = round_interval(done=done, seconds_since_last_round=since_last_round)
                time.sleep(max(0.0, round_started + interval - time.monotonic()))
    except BaseException:
        with suppress(Exception):
            # The promise goes too: the next delivery after a web process's copy runs out asks anew, and
            # that drain takes whatever is pending (the sweep covers a quiet spell).
            flags.delete(flag, *([_DRAIN_PROMISE] if slot == 0 else []))
        raise


def _falling_behind() -> bool:
    """Whether the oldest pending event has waited longer than ``DRAIN_LAG_SECONDS``."""
    oldest = WebhookEvent.objects.filter(state=WebhookEventState.PENDING).aggregate(oldest=Min("received_at"))["oldest"]
    return oldest is not None and (timezone.now() - oldest).total_seconds() > DRAIN_LAG_SECONDS


def _has_pending_events() -> bool:
    return WebhookEvent.objects.filter(state=WebhookEventState.PENDING).exists()


def process_pending_webhook_events(*, limit: int) -> int:
    """Process up to ``limit`` pending events, oldest first; returns how many were processed.

    Deliveries made only of statuses and plain customer messages for known numbers (nearly all traffic)
    are applied together, in one short transaction and a few queries per batch. Every other delivery
    (reactions, number changes, errors, malformed items, unknown numbers) gets its own transaction
    afterwards, item by item, which records exactly what went wrong where. Whatever goes wrong with one
    event (a body that cannot be read, a bug) is pinned on that event alone, in the pre-pass or after it;
    only transient database errors stop the round (the drain is retried).
    """
    with transaction.atomic():
        _commit_without_waiting_for_disk()
        claimed = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(state=WebhookEventState.PENDING)
            .only("raw_body", "phone_number_id")  # what a round reads of them (the rest: one by one, below)
            .order_by("pk")[:limit]  # arrival order, straight off the partial index of pending rows
        )
        if not claimed:
            return 0
        numbers = _numbers_for(claimed)
        batched = {event.pk: items for event in claimed if (items := _batchable(event=event, numbers=numbers)) is not None}
        if batched:
            _apply_batch(events=[e for e in claimed if e.pk in batched], items=batched)
    # Released by the commit above; another drain may take some of them first (then they are skipped here).
    others = [event.pk for event in claimed if event.pk not in batched]
    return len(batched) + sum(1 for event_id in others if _process_alone(event_id=event_id))


@dataclass(frozen=True)
class _BatchItems:
    messages: list[tuple[BusinessNumber, Sender, InboundMessage]]
    statuses: list[tuple[BusinessNumber, StatusUpdate]]


def _numbers_for(events: list[WebhookEvent]) -> dict[str, BusinessNumber]:
    ids = {event.phone_number_id for event in events if event.phone_number_id}
    return {number.phone_number_id: number for number in BusinessNumber.objects.filter(phone_number_id__any=ids)}


def _batchable(*, event: WebhookEvent, numbers: dict[str, BusinessNumber]) -> _BatchItems | None:
    """The parsed items of a delivery that can join a batch, else ``None`` (it goes item by item)."""
    try:
        delivery = parse_delivery(event.payload)
        if delivery.broken or not delivery.changes:
            return None
        items = _BatchItems(messages=[], statuses=[])
        for change in delivery.changes:
            number = numbers.get(change.phone_number_id)
            if change.field not in PROCESSED_FIELDS or number is None or change.errors:
                return None
            for raw in change.raw_messages:
                message = parse_message(raw)
                if message.reaction is not None or message.identity_change is not None:
                    return None
                items.messages.append((number, _sender_of(change=change, message=message), message))
            items.statuses.extend((number, parse_status(raw)) for raw in change.raw_statuses)
    except TRANSIENT_DB_ERRORS:
        raise
    except Exception:
        # Malformed, unreadable, or a bug: the item-by-item path records it against this event (an item
        # error, or the event failed) and the rest of the round is not held up.
        return None
    return items if items.messages or items.statuses else None


def _apply_batch(*, events: list[WebhookEvent], items: dict[int, _BatchItems]) -> None:
    batch = [items[event.pk] for event in events]
    try:
        with transaction.atomic():
            messages = [m for b in batch for m in b.messages]
            contacts = resolve_contacts(senders=[sender for _number, sender, _message in messages])
            receive_inbound_messages(
                items=[InboundItem(number=number, contact=contact, message=message) for (number, _s, message), contact in zip(messages, contacts, strict=True)]
            )
            record_statuses(statuses=[s for b in batch for s in b.statuses])
    except TRANSIENT_DB_ERRORS:
        raise
    except Exception:
        # A wamid stored meanwhile by another worker, or a bug. The batch's writes are rolled back;
        # applying the events one by one copes with the former and pins the latter on its item.
        logger.warning("a batch of %s deliveries failed; applying them one by one", len(events), exc_info=True)
        for event in events:
            _process_alone(event_id=event.pk)
        return
    WebhookEvent.objects.filter(pk__any=[event.pk for event in events]).update(
        state=WebhookEventState.PROCESSED, item_errors=[], error="", processed_at=timezone.now(), attempts=F("attempts") + 1
    )


def _process_alone(*, event_id: int) -> bool:
    """``process_webhook_event`` for a drain: ``False`` if another worker holds the event. An exception it
    lets through (none is expected: ``_process_claimed`` marks a broken event failed) marks the event failed
    here, in a statement of its own, so it is never claimed again ahead of the others."""
    try:
        return process_webhook_event(event_id=event_id) is not None
    except TRANSIENT_DB_ERRORS:
        raise
    except Exception as exc:
        logger.exception("webhook event %s could not be processed; marked failed", event_id)
        WebhookEvent.objects.filter(pk=event_id, state=WebhookEventState.PENDING).update(
            state=WebhookEventState.FAILED, error=_failure_text(exc), attempts=F("attempts") + 1
        )
        return True


def _failure_text(exc: BaseException) -> str:
    """What an event failed of, with the traceback, as its ``error`` column can store it."""
    return storable_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")[:5000]


def process_webhook_event(*, event_id: int, force: bool = False) -> WebhookEvent | None:
    """Process one event now (``webhooks_replay --inline``, the demo seed); ``None`` if another worker
    holds it. ``force`` reprocesses an event that is no longer pending."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update(skip_locked=True).filter(pk=event_id).first()
        if event is None:
            return None
        if event.state != WebhookEventState.PENDING and not force:
            return event
        return _process_claimed(event=event)


def _process_claimed(*, event: WebhookEvent) -> WebhookEvent:
    """Apply every entry, change, message and status of one locked event, inside the caller's transaction.

    One bad item is recorded in ``item_errors`` and never blocks the others (each runs in a savepoint).
    A bug that breaks the whole event marks it failed, with the traceback, and the drain goes on.
    """
    _commit_without_waiting_for_disk()
    with log_context(webhook_event_id=event.pk, request_id=event.request_id or None):
        try:
            with transaction.atomic():
                item_errors = _apply_event(event=event)
        except TRANSIENT_DB_ERRORS:
            raise  # the whole drain is retried (deadlock, lost connection): not the event's fault
        except Exception as exc:
            logger.exception("webhook event %s could not be processed; marked failed", event.pk)
            event.state = WebhookEventState.FAILED
            event.error = _failure_text(exc)
            event.attempts += 1
            event.save(update_fields=["state", "error", "attempts"])
            return event
        for item_error in item_errors:
            logger.warning("webhook event %s: %s: %s", event.pk, item_error["path"], item_error["error"])
    return event


def _commit_without_waiting_for_disk() -> None:
    """Processing is derived from the stored event, which was committed durably by the webhook view. If
    PostgreSQL crashed before flushing this transaction, the event would simply be pending again and the
    sweep would process it anew; so this transaction need not wait for its WAL flush (synchronous_commit
    off), which is most of the cost of a short write transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _apply_event(*, event: WebhookEvent) -> list[dict]:
    delivery = parse_delivery(event.payload)
    item_errors = [{"path": path, "error": reason} for path, reason in delivery.broken]
    numbers = {n.phone_number_id: n for n in BusinessNumber.objects.filter(phone_number_id__in=delivery.phone_number_ids)}
    routed = 0
    for change in delivery.changes:
        if change.field not in PROCESSED_FIELDS:
            continue
        number = numbers.get(change.phone_number_id)
        if number is None:
            item_errors.append({"path": change.path, "error": f"unknown phone_number_id {change.phone_number_id!r}"})
            continue
        routed += 1
        item_errors.extend(_apply_change(number=number, change=change))
    unroutable = routed == 0 and any(c.field in PROCESSED_FIELDS for c in delivery.changes)
    event.state = WebhookEventState.UNROUTABLE if unroutable else WebhookEventState.PROCESSED
    event.item_errors = item_errors
    event.error = ""
    event.processed_at = timezone.now()
    event.attempts += 1
    event.save(update_fields=["state", "item_errors", "error", "processed_at", "attempts"])
    return item_errors


def _apply_change(*, number: BusinessNumber, change: Change) -> list[dict]:
    errors = []
    for index, raw in enumerate(change.raw_messages):
        path = f"{change.path}.messages[{index}]"
        try:
            with transaction.atomic():
                _apply_message(number=number, change=change, raw=raw)
        except TRANSIENT_DB_ERRORS:
            raise  # the whole event is retried (deadlock, lost connection): not the item's fault
        except Exception as exc:  # one bad item must not block the batch; it is recorded on the event
            errors.append({"path": path, "error": f"{type(exc).__name__}: {exc}"})
    for index, raw in enumerate(change.raw_statuses):
        path = f"{change.path}.statuses[{index}]"
        try:
            with transaction.atomic():
                record_status(number=number, status=parse_status(raw))
        except TRANSIENT_DB_ERRORS:
            raise
        except Exception as exc:
            errors.append({"path": path, "error": f"{type(exc).__name__}: {exc}"})
    for error in change.errors:
        errors.append({"path": f"{change.path}.errors", "error": f"Meta error {error.code}: {error.title} {error.details}".strip()})
    return errors


def _sender_of(*, change: Change, message: InboundMessage) -> Sender:
    profile = profile_for(change, message.sender)
    return Sender(
        wa_id=message.sender.wa_id or (profile.wa_id if profile else None),
        user_id=message.sender.user_id or (profile.user_id if profile else None),
        profile_name=profile.name if profile else "",
        username=profile.username if profile else "",
    )


def _apply_message(*, number: BusinessNumber, change: Change, raw: dict) -> None:
    message = parse_message(raw)
    sender = _sender_of(change=change, message=message)
    contact = resolve_contact(
        wa_id=sender.wa_id, user_id=sender.user_id, profile_name=sender.profile_name, username=sender.username
    )
    if message.reaction is not None:
        apply_reaction(
            number=number,
            contact=contact,
            reaction=message.reaction,
            reaction_wamid=message.wamid,
            reacted_at=message.timestamp,
        )
        return
    receive_inbound_message(number=number, contact=contact, message=message)
    if message.identity_change is not None:
        change_contact_identity(
            contact=contact,
            new_wa_id=message.identity_change.new_wa_id,
            new_user_id=message.identity_change.new_user_id,
        )


def select_webhook_event_ids(
    *,
    event_ids: list[int] | None = None,
    failed: bool = False,
    unroutable: bool = False,
    with_errors: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[int]:
    """Ids of the stored events an operator asked to replay, oldest first.

    ``event_ids``, ``failed``, ``unroutable`` and ``with_errors`` each add events (they are OR'ed); the
    ``since``/``until`` window (``received_at``, both bounds inclusive) then narrows the result, or selects
    every event in it when nothing else is given. Ids that do not exist are simply absent from the result.
    """
    wanted = Q()
    if event_ids:
        wanted |= Q(pk__in=event_ids)
    if failed:
        wanted |= Q(state=WebhookEventState.FAILED)
    if unroutable:
        wanted |= Q(state=WebhookEventState.UNROUTABLE)
    if with_errors:
        wanted |= ~Q(item_errors=[])
    events = WebhookEvent.objects.filter(wanted)
    if since is not None:
        events = events.filter(received_at__gte=since)
    if until is not None:
        events = events.filter(received_at__lte=until)
    return list(events.order_by("received_at", "pk").values_list("pk", flat=True))


def replay_webhook_events(*, event_ids: list[int]) -> int:
    """Put events back to pending and enqueue them; processing is idempotent, so nothing is doubled."""
    count = WebhookEvent.objects.filter(pk__in=event_ids).update(state=WebhookEventState.PENDING, error="")
    transaction.on_commit(request_processing)
    return count


def sweep_pending_webhook_events() -> int:
    """Request a drain when events are still pending after the grace period (Redis was down when they
    arrived, a worker died holding a drain flag); returns how many such events there are."""
    cutoff = timezone.now() - timedelta(seconds=settings.WEBHOOK_SWEEP_GRACE_SECONDS)
    stale = WebhookEvent.objects.filter(state=WebhookEventState.PENDING, received_at__lt=cutoff).count()
    if stale:
        # A drain refreshes its flag every third of WEBHOOK_DRAIN_CLAIM_SECONDS; one not refreshed for half
        # of it belongs to a drain that is not coming (its worker died): make way for a new one.
        with suppress(Exception):
            if _flag_age(flags.get(_drain_flag(0))) > settings.WEBHOOK_DRAIN_CLAIM_SECONDS / 2:
                flags.delete(_drain_flag(0))
        request_processing()
    return stale


def _stamp(state: str) -> str:
    return f"{state} {time.time():.3f}"


def _flag_age(value: str | None) -> float:
    """Seconds since a drain flag was set or refreshed; 0 when there is none (nothing to replace)."""
    if not value:
        return 0.0
    try:
        return time.time() - float(value.rsplit(" ", 1)[-1])
    except ValueError:
        return float("inf")



# --- operator reads and housekeeping (check_meta, inbox_stats, purge_webhook_events) ---------------------

# Processed and unroutable events are history once they are old; pending ones are still to be applied and
# failed ones are evidence for a replay, so neither goes without an explicit decision.
PURGEABLE_STATES = (WebhookEventState.PROCESSED, WebhookEventState.UNROUTABLE)


@dataclass(frozen=True)
class WebhookHealth:
    last_received_at: datetime | None
    pending: int
    oldest_pending_at: datetime | None
    failed: int


def summarize_webhook_health(*, phone_number_id: str | None = None) -> WebhookHealth:
    """What our side knows about webhook delivery, for one number's events or for all of them."""
    events = WebhookEvent.objects.all()
    if phone_number_id is not None:
        events = events.filter(phone_number_id=phone_number_id)
    pending = events.filter(state=WebhookEventState.PENDING).aggregate(count=Count("pk"), oldest=Min("received_at"))
    return WebhookHealth(
        last_received_at=events.aggregate(last=Max("received_at"))["last"],
        pending=pending["count"],
        oldest_pending_at=pending["oldest"],
        failed=events.filter(state=WebhookEventState.FAILED).count(),
    )


def count_webhook_events_by_state(*, since: datetime | None = None) -> dict[str, int]:
    """Events per state (every state present, zero included), received since ``since`` or ever."""
    events = WebhookEvent.objects.all()
    if since is not None:
        events = events.filter(received_at__gte=since)
    counts = {state: 0 for state in WebhookEventState.values}
    for row in events.values("state").annotate(count=Count("pk")).order_by():
        counts[row["state"]] = row["count"]
    return counts


def _purgeable_webhook_events(*, before: datetime, include_failed: bool):
    states = [*PURGEABLE_STATES, WebhookEventState.FAILED] if include_failed else list(PURGEABLE_STATES)
    return WebhookEvent.objects.filter(state__in=states, received_at__lt=before)


def count_purgeable_webhook_events(*, before: datetime, include_failed: bool = False) -> dict[str, int]:
    """How many events ``purge_webhook_events`` would delete, per state."""
    rows = _purgeable_webhook_events(before=before, include_failed=include_failed).values("state")
    return {row["state"]: row["count"] for row in rows.annotate(count=Count("pk")).order_by("state")}


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
                _purgeable_webhook_events(before=before, include_failed=include_failed)
                .order_by("received_at", "pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return deleted_total
            # The state is checked again in the DELETE: an event replayed (set pending) meanwhile stays.
            deleted, _by_model = WebhookEvent.objects.filter(pk__in=ids, received_at__lt=before).exclude(
                state=WebhookEventState.PENDING
            ).delete()
        deleted_total += deleted
        if on_batch is not None:
            on_batch(deleted)

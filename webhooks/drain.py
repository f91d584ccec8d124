"""Processing stored deliveries: the drain, and how a delivery's items reach the inbox.

The protocol, all of it:

1. The webhook view stores the event (committed), then sets the Redis flag ``webhooks:drain:0`` if it is not
   set (``SET NX`` with a time to live); only the request that set it enqueues a drain task.
2. A drain processes pending events in rounds, oldest first, rows claimed with ``FOR UPDATE SKIP LOCKED``, and
   refreshes its flag every third of its time to live. Out of work, the first drain lingers for
   ``WEBHOOK_DRAIN_LINGER_SECONDS``, looking every 10 ms, so under steady traffic one drain keeps running.
   After each round with work it also makes a promise, a key that lives half a second: "I will look again
   before I stop, and I will not stop before this key expires". The flag's ``SET NX`` reads the promise's
   time left in the same round trip, and that web process then skips Redis until the promise (less a margin
   for the clocks) runs out: a delivery it commits meanwhile is committed before the drain's last look.
   Under steady traffic this leaves most deliveries with no Redis call at all (measured: a served webhook
   cost its web process 0.9 ms of CPU with the promise and 1.3 ms without).
3. To stop, a drain waits for its promise to expire, deletes its flag, then looks once more. A delivery
   committed before the delete is found by that look; one committed after it finds no flag, sets it and
   enqueues a new drain. None is stranded.
4. A round that came back full, or events waiting longer than ``DRAIN_LAG_SECONDS``, make a drain ask for
   the next slot's drain (``webhooks:drain:1`` ...), up to ``WEBHOOK_DRAIN_CONCURRENCY``. Past
   ``WEBHOOK_DRAIN_SECONDS`` a drain enqueues itself again, keeping its flag, so sends and media downloads
   queued behind it get a worker in between.
5. What that cannot cover, the beat sweep does: events still pending after ``WEBHOOK_SWEEP_GRACE_SECONDS``
   (Redis was down when they came; a worker died holding a flag, which expires with its time to live) make
   it ask for a drain.

A round applies its events' items together: one transaction, a few queries per round whatever its size.
When that fails for anything but a transient database error (a bug, a malformed item, a wamid another worker
stored meanwhile), the round is applied again event by event, and a failing event item by item, each in a
savepoint: one bad item is recorded on its event (``item_errors``) and blocks nothing else. A single event
(a replay, the demo seed) is a round of one.
"""

import logging
import time
import traceback
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Min
from django.utils import timezone

from contacts.models import Contact
from contacts.services import Sender, change_contact_identity, resolve_contacts
from conversations.account_events import ACCOUNT_FIELDS, AccountChangeItem
from conversations.incoming import AddressBookChange, HistoryChunk, InboundMessage, StatusUpdate
from conversations.models import BusinessNumber
from conversations.services import InboundItem, apply_reaction, receive_inbound_messages, record_statuses
from conversations.services.account import UnroutableChange, apply_account_change
from conversations.services.coexistence import (
    AmendItem,
    amend_messages,
    import_history,
    receive_echoes,
    sync_address_book,
)
from ops.logs import log_context
from webhooks import services
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.payloads import (
    HISTORY,
    PHONE_APP_FIELDS,
    SMB_MESSAGE_ECHOES,
    Change,
    parse_account_changes,
    parse_address_book,
    parse_delivery,
    parse_echoes,
    parse_history,
    parse_message,
    parse_status,
    profile_for,
    storable_text,
)
from webhooks.services import PROCESSED_FIELDS, drain_flag, flags

logger = logging.getLogger(__name__)

TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)

# How often a lingering drain looks for new events (one indexed EXISTS each time).
DRAIN_POLL_SECONDS = 0.01
# The shortest time between two rounds that did not fill up (at most this much latency is added).
DRAIN_ROUND_SECONDS = 0.05
# A round costs about a dozen queries and a few milliseconds of CPU whatever its size. From this arrival
# rate on (events per second, over the last round), rounds come every DRAIN_BUSY_ROUND_SECONDS instead and
# gather five times as many events each: on 2 cores the worker's CPU per event fell by about a fifth.
DRAIN_BUSY_RATE = 500
DRAIN_BUSY_ROUND_SECONDS = 0.25
# Events older than this after a round bring in a second drain. Not less: on a busy machine a round's own
# events wait up to its interval and its duration, and a second drain then only takes CPU from the web.
DRAIN_LAG_SECONDS = 0.5


def _promise_seconds() -> float:
    """Half a second, or half the linger (none with no linger: the tests)."""
    return min(0.5, settings.WEBHOOK_DRAIN_LINGER_SECONDS / 2)


def round_interval(*, done: int, seconds_since_last_round: float | None) -> float:
    """How long after the start of a round that did not fill up the next one starts. The rate is taken over
    at least DRAIN_ROUND_SECONDS: a few deliveries found 10 ms after an empty round are not 500 a second."""
    if seconds_since_last_round is None:
        return DRAIN_ROUND_SECONDS
    if done / max(seconds_since_last_round, DRAIN_ROUND_SECONDS) >= DRAIN_BUSY_RATE:
        return DRAIN_BUSY_ROUND_SECONDS
    return DRAIN_ROUND_SECONDS


def drain_webhook_events(*, slot: int = 0) -> int:
    """Process pending events until none is left (and the linger is over) or the time budget is spent;
    returns how many. Steps 2 to 4 of the protocol above."""
    flag = drain_flag(slot)
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
                flags.set(flag, ttl=settings.WEBHOOK_DRAIN_CLAIM_SECONDS)
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
                _linger(until=last_work + linger)
                continue
            elif slot == 0 and flags.promise_left():
                time.sleep(DRAIN_POLL_SECONDS)  # web processes count on a look after their commit (step 3)
                continue
            else:
                flags.delete(flag)
                flag_set_at = float("-inf")  # set again at once if the last look finds work
                done = process_pending_webhook_events(limit=round_size)  # the last look (step 3)
                total += done
                if done == 0:
                    return total
                continue
            if slot + 1 < settings.WEBHOOK_DRAIN_CONCURRENCY and (done == round_size or _falling_behind()):
                services.request_drain(slot=slot + 1)
            if time.monotonic() > deadline:
                services.enqueue_drain(slot=slot)
                return total
            if done < round_size:
                # Keeping up: let the next round gather what arrives meanwhile (rounds of one event each
                # would keep a core busy on a round's fixed cost).
                interval = round_interval(done=done, seconds_since_last_round=since_last_round)
                time.sleep(max(0.0, round_started + interval - time.monotonic()))
    except BaseException:
        with suppress(Exception):
            # The promise goes too: the next delivery after a web process's copy runs out asks anew.
            flags.delete(flag, *([services.DRAIN_PROMISE] if slot == 0 else []))
        raise


def _linger(*, until: float) -> None:
    """Wait until there are pending events or ``until`` (monotonic) has passed."""
    time.sleep(DRAIN_POLL_SECONDS)  # at least once: what is pending may be rows another drain holds
    while time.monotonic() < until and not _has_pending_events():
        time.sleep(DRAIN_POLL_SECONDS)


def _falling_behind() -> bool:
    oldest = WebhookEvent.objects.filter(state=WebhookEventState.PENDING).aggregate(oldest=Min("received_at"))["oldest"]
    return oldest is not None and (timezone.now() - oldest).total_seconds() > DRAIN_LAG_SECONDS


def _has_pending_events() -> bool:
    return WebhookEvent.objects.filter(state=WebhookEventState.PENDING).exists()


def process_pending_webhook_events(*, limit: int) -> int:
    """One round: claim up to ``limit`` pending events, oldest first, apply them, and return how many."""
    with transaction.atomic():
        _commit_without_waiting_for_disk()
        claimed = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(state=WebhookEventState.PENDING)
            .only("raw_body", "request_id", "attempts")
            .order_by("pk")[:limit]  # arrival order, straight off the partial index of pending rows
        )
        _process_claimed(claimed)
    return len(claimed)


def process_webhook_event(*, event_id: int, force: bool = False) -> WebhookEvent | None:
    """Process one event now (``webhooks_replay --inline``, the demo seed); ``None`` if another worker holds
    it. ``force`` processes again an event that is no longer pending."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update(skip_locked=True).filter(pk=event_id).first()
        if event is None:
            return None
        if event.state == WebhookEventState.PENDING or force:
            _commit_without_waiting_for_disk()
            _process_claimed([event])
        return event


def _commit_without_waiting_for_disk() -> None:
    """Processing is derived from the stored event, committed durably by the webhook view: if PostgreSQL
    crashed before flushing this transaction, the event would be pending again and processed anew. So it
    need not wait for its WAL flush, most of the cost of a short write transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


# --- applying a round's items --------------------------------------------------------------------------


@dataclass(frozen=True)
class _MessageItem:
    path: str
    number: BusinessNumber
    sender: Sender
    message: InboundMessage


@dataclass(frozen=True)
class _StatusItem:
    path: str
    number: BusinessNumber
    status: StatusUpdate


@dataclass
class _Delivery:
    """One claimed event, read: its items for the inbox and what is already wrong with it."""

    event: WebhookEvent
    messages: list[_MessageItem] = field(default_factory=list)
    statuses: list[_StatusItem] = field(default_factory=list)
    item_errors: list[dict] = field(default_factory=list)
    unroutable: bool = False
    failure: str = ""  # the whole event could not be read
    # Account-level changes (template status, quality, account updates, ...): rare, applied in their own branch
    # (a tuple: no list to build for each of a round's message deliveries).
    account_changes: tuple[AccountChangeItem, ...] = ()
    only_account_changes: bool = False
    # What the phone app of a Coexistence number sent, its past chats and its contacts (rare): read and applied
    # in their own branch too, each field read once per delivery.
    echoes: tuple[_MessageItem, ...] = ()
    history: tuple[tuple[BusinessNumber, HistoryChunk], ...] = ()
    address_book: tuple[tuple[BusinessNumber, AddressBookChange], ...] = ()
    phone_app_fields_read: tuple[str, ...] = ()


def _process_claimed(events: list[WebhookEvent]) -> None:
    """Apply locked events inside the caller's transaction and record each one's outcome."""
    if not events:
        return
    deliveries = _read(events)
    readable = [delivery for delivery in deliveries if not delivery.failure]
    if not _applied(_items_of(readable)):
        logger.warning("a round of %s deliveries failed; applying them one by one", len(readable), exc_info=True)
        for delivery in readable:
            with log_context(webhook_event_id=delivery.event.pk, request_id=delivery.event.request_id or None):
                _apply_alone(delivery)
    for delivery in readable:
        if delivery.account_changes:
            with log_context(webhook_event_id=delivery.event.pk, request_id=delivery.event.request_id or None):
                _apply_account_changes(delivery)
        if delivery.phone_app_fields_read:
            with log_context(webhook_event_id=delivery.event.pk, request_id=delivery.event.request_id or None):
                _apply_echoes(delivery)
                _apply_history(delivery)
                _apply_address_book(delivery)
    _record_outcomes(deliveries)


def _read(events: list[WebhookEvent]) -> list[_Delivery]:
    """Each event parsed into items for the inbox (one query for the numbers they are for)."""
    parsed = []
    for event in events:
        try:
            parsed.append((_Delivery(event=event), parse_delivery(event.payload)))
        except TRANSIENT_DB_ERRORS:
            raise
        except Exception as exc:
            logger.exception("webhook event %s could not be read; marked failed", event.pk)
            parsed.append((_Delivery(event=event, failure=_failure_text(exc)), None))
    ids = {phone_number_id for _read, delivery in parsed if delivery for phone_number_id in delivery.phone_number_ids}
    numbers = {number.phone_number_id: number for number in BusinessNumber.objects.filter(phone_number_id__any=ids)}
    for read, delivery in parsed:
        if delivery is None:
            continue
        read.item_errors.extend({"path": path, "error": reason} for path, reason in delivery.broken)
        wanted = routed = 0
        account_fields = False
        for change in delivery.changes:
            if change.field not in PROCESSED_FIELDS:
                if change.field in PHONE_APP_FIELDS:
                    wanted += 1
                    routed += _read_phone_app(read=read, numbers=numbers, change=change)
                    continue
                account_fields = account_fields or change.field in ACCOUNT_FIELDS
                continue  # account-level fields: read below; any other field is stored, not applied
            wanted += 1
            number = numbers.get(change.phone_number_id)
            if number is None:
                read.item_errors.append(
                    {"path": change.path, "error": f"unknown phone_number_id {change.phone_number_id!r}"}
                )
                continue
            routed += 1
            _read_change(read=read, number=number, change=change)
        read.unroutable = wanted > 0 and routed == 0
        if account_fields:
            _read_account_changes(read=read, only=wanted == 0)
    return [read for read, _delivery in parsed]


def _read_account_changes(*, read: _Delivery, only: bool) -> None:
    changes, broken = parse_account_changes(read.event.payload)
    read.account_changes = tuple(changes)
    read.item_errors.extend({"path": path, "error": reason} for path, reason in broken)
    read.only_account_changes = only


def _apply_account_changes(delivery: _Delivery) -> None:
    """Each account-level change in its own savepoint: one that fails is recorded on its event, the others
    apply. Routed by account id (and display number), so an unknown account makes the event unroutable as an
    unknown number does."""
    routed = 0
    for change in delivery.account_changes:
        for key in change.ignored:
            delivery.item_errors.append({"path": f"{change.path}.{key}", "error": "ignored: not of a type Meta sends"})
        try:
            with transaction.atomic():
                apply_account_change(change=change, webhook_event_id=delivery.event.pk)
            routed += 1
        except TRANSIENT_DB_ERRORS:
            raise
        except UnroutableChange as exc:
            delivery.item_errors.append({"path": change.path, "error": str(exc)})
        except Exception as exc:
            logger.exception("account-level change %s of webhook event %s failed", change.path, delivery.event.pk)
            delivery.item_errors.append({"path": change.path, "error": f"{type(exc).__name__}: {exc}"})
            routed += 1  # it was for us: a failure, not a delivery for someone else
    if routed == 0 and (delivery.unroutable or delivery.only_account_changes):
        delivery.unroutable = True
    elif routed:
        delivery.unroutable = False


def _read_phone_app(*, read: _Delivery, numbers: dict[str, BusinessNumber], change: Change) -> int:
    """Note a phone-app change's number (1 if known, else an item error and 0); the delivery's items of that
    field are read with its first change of the field, routed as messages are."""
    if change.phone_number_id not in numbers:
        read.item_errors.append({"path": change.path, "error": f"unknown phone_number_id {change.phone_number_id!r}"})
    if change.field not in read.phone_app_fields_read:
        read.phone_app_fields_read += (change.field,)
        payload = read.event.payload
        if change.field == SMB_MESSAGE_ECHOES:
            items, broken = parse_echoes(payload)
            read.echoes = tuple(
                _MessageItem(
                    item.path, numbers[number_id], _sender_of(change=item.change, message=item.message), item.message
                )
                for item in items
                if (number_id := item.change.phone_number_id) in numbers
            )
        elif change.field == HISTORY:
            chunks, broken = parse_history(payload)
            read.history = tuple(
                (numbers[c.phone_number_id], chunk) for c, chunk in chunks if c.phone_number_id in numbers
            )
        else:
            entries, broken = parse_address_book(payload)
            read.address_book = tuple(
                (numbers[c.phone_number_id], entry) for c, entry in entries if c.phone_number_id in numbers
            )
        read.item_errors.extend({"path": path, "error": reason} for path, reason in broken)
    return 1 if change.phone_number_id in numbers else 0


def _apply_history(delivery: _Delivery) -> None:
    for number, chunk in delivery.history:
        apply = partial(import_history, number=number, chunk=chunk)
        _apply_in_savepoint(delivery, paths=[chunk.path], what=f"history chunk {chunk.path}", apply=apply)


def _apply_address_book(delivery: _Delivery) -> None:
    by_number: dict[int, tuple[BusinessNumber, list[AddressBookChange]]] = {}
    for number, entry in delivery.address_book:
        by_number.setdefault(number.pk, (number, []))[1].append(entry)
    for number, entries in by_number.values():
        apply = partial(sync_address_book, number=number, changes=entries)
        _apply_in_savepoint(delivery, paths=[e.path for e in entries], what="contact sync", apply=apply)


def _apply_in_savepoint(delivery: _Delivery, *, paths: list[str], what: str, apply) -> None:
    """``apply`` in a savepoint, once more if it fails (a row another worker stored meanwhile is found the second
    time); a failure that stays is recorded on the event's items at ``paths``. Transient database errors go up:
    the round is tried again."""
    for attempt in range(2):
        try:
            with transaction.atomic():
                apply()
            return
        except TRANSIENT_DB_ERRORS:
            raise
        except Exception as exc:
            if attempt:
                logger.exception("%s of webhook event %s failed", what, delivery.event.pk)
                delivery.item_errors.extend({"path": path, "error": f"{type(exc).__name__}: {exc}"} for path in paths)


def _apply_echoes(delivery: _Delivery) -> None:
    """A delivery's echoes together in a savepoint, else one by one, each error recorded on the event."""
    if not delivery.echoes or _echo_error(list(delivery.echoes)) is None:
        return
    for item in delivery.echoes:
        if (error := _echo_error([item])) is not None:
            logger.warning("echo %s of webhook event %s failed: %s", item.path, delivery.event.pk, error)
            delivery.item_errors.append({"path": item.path, "error": error})


def _echo_error(items: list[_MessageItem]) -> str | None:
    """Apply echoes in a savepoint; what failed (rolled back), or ``None``."""
    try:
        with transaction.atomic():
            _apply_echo_items(items)
    except TRANSIENT_DB_ERRORS:
        raise
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _apply_echo_items(items: list[_MessageItem]) -> None:
    contacts = resolve_contacts(senders=[item.sender for item in items])
    echoes, amendments, reactions = [], [], []
    for item, contact in zip(items, contacts, strict=True):
        if item.message.amendment is not None:
            amendments.append(AmendItem(number=item.number, contact=contact, message=item.message, echo=True))
        elif item.message.reaction is not None:
            reactions.append((item, contact))  # the business's reaction, shown on the message it reacts to
        else:
            echoes.append(InboundItem(number=item.number, contact=contact, message=item.message))
    receive_echoes(items=echoes)
    amend_messages(items=amendments)
    _apply_reactions(reactions, by_business=True)


def _apply_reactions(items: list[tuple[_MessageItem, Contact]], *, by_business: bool = False) -> None:
    """Each item's reaction, in the delivery's order: the customer's, or with ``by_business`` the business's."""
    for item, contact in items:
        apply_reaction(
            number=item.number,
            contact=contact,
            reaction=item.message.reaction,
            reaction_wamid=item.message.wamid,
            reacted_at=item.message.timestamp,
            by_business=by_business,
        )


def _read_change(*, read: _Delivery, number: BusinessNumber, change: Change) -> None:
    for index, raw in enumerate(change.raw_messages):
        path = f"{change.path}.messages[{index}]"
        try:
            message = parse_message(raw)
            read.messages.append(_MessageItem(path, number, _sender_of(change=change, message=message), message))
        except Exception as exc:  # a malformed item is recorded on its event; the others go on
            read.item_errors.append({"path": path, "error": f"{type(exc).__name__}: {exc}"})
    for index, raw in enumerate(change.raw_statuses):
        path = f"{change.path}.statuses[{index}]"
        try:
            read.statuses.append(_StatusItem(path, number, parse_status(raw)))
        except Exception as exc:
            read.item_errors.append({"path": path, "error": f"{type(exc).__name__}: {exc}"})
    for error in change.errors:
        read.item_errors.append(
            {
                "path": f"{change.path}.errors",
                "error": f"Meta error {error.code}: {error.title} {error.details}".strip(),
            }
        )


def _sender_of(*, change: Change, message: InboundMessage) -> Sender:
    profile = profile_for(change, message.sender)
    return Sender(
        wa_id=message.sender.wa_id or (profile.wa_id if profile else None),
        user_id=message.sender.user_id or (profile.user_id if profile else None),
        profile_name=profile.name if profile else "",
        username=profile.username if profile else "",
    )


def _items_of(deliveries: list[_Delivery]) -> tuple[list[_MessageItem], list[_StatusItem]]:
    return [m for d in deliveries for m in d.messages], [s for d in deliveries for s in d.statuses]


def _applied(items: tuple[list[_MessageItem], list[_StatusItem]]) -> bool:
    """Apply items in a savepoint; ``False`` (rolled back) if that failed for anything but a transient error."""
    try:
        with transaction.atomic():
            _apply_items(*items)
    except TRANSIENT_DB_ERRORS:
        raise  # the whole drain is retried (deadlock, lost connection): not the items' fault
    except Exception:
        return False
    return True


def _apply_alone(delivery: _Delivery) -> None:
    """One event's items together, else item by item, each error recorded on the event."""
    if _applied((delivery.messages, delivery.statuses)):
        return
    for item in [*delivery.messages, *delivery.statuses]:
        items = ([item], []) if isinstance(item, _MessageItem) else ([], [item])
        try:
            with transaction.atomic():
                _apply_items(*items)
        except TRANSIENT_DB_ERRORS:
            raise
        except Exception as exc:
            delivery.item_errors.append({"path": item.path, "error": f"{type(exc).__name__}: {exc}"})


def _apply_items(messages: list[_MessageItem], statuses: list[_StatusItem]) -> None:
    """What the inbox does with customers' messages and Meta's statuses, for any number of them."""
    contacts = resolve_contacts(senders=[item.sender for item in messages])
    received, reactions = [], []
    for item, contact in zip(messages, contacts, strict=True):
        if item.message.reaction is not None or item.message.amendment is not None:
            reactions.append((item, contact))  # reactions, and Coexistence's edits and revokes (rare)
        else:
            received.append((item, contact))
    receive_inbound_messages(
        items=[InboundItem(number=item.number, contact=contact, message=item.message) for item, contact in received]
    )
    for item, contact in received:
        if (change := item.message.identity_change) is not None:
            change_contact_identity(contact=contact, new_wa_id=change.new_wa_id, new_user_id=change.new_user_id)
    if reactions:
        amend_messages(
            items=[
                AmendItem(number=item.number, contact=contact, message=item.message)
                for item, contact in reactions
                if item.message.amendment is not None
            ]
        )
    _apply_reactions([(item, contact) for item, contact in reactions if item.message.reaction is not None])
    record_statuses(statuses=[(item.number, item.status) for item in statuses])


def _record_outcomes(deliveries: list[_Delivery]) -> None:
    now = timezone.now()
    for delivery in deliveries:
        event = delivery.event
        event.attempts += 1
        event.item_errors = delivery.item_errors
        if delivery.failure:
            event.state, event.error = WebhookEventState.FAILED, delivery.failure
            continue
        event.state = WebhookEventState.UNROUTABLE if delivery.unroutable else WebhookEventState.PROCESSED
        event.error, event.processed_at = "", now
        with log_context(webhook_event_id=event.pk, request_id=event.request_id or None):
            for item_error in delivery.item_errors:
                logger.warning("webhook event %s: %s: %s", event.pk, item_error["path"], item_error["error"])
    clean = [d.event for d in deliveries if d.event.state == WebhookEventState.PROCESSED and not d.item_errors]
    if clean:  # nearly every event of a round: one UPDATE for them all
        WebhookEvent.objects.filter(pk__any=[event.pk for event in clean]).update(
            state=WebhookEventState.PROCESSED, item_errors=[], error="", processed_at=now, attempts=F("attempts") + 1
        )
    for event in {d.event for d in deliveries} - set(clean):
        WebhookEvent.objects.filter(pk=event.pk).update(
            state=event.state,
            error=event.error,
            item_errors=event.item_errors,
            processed_at=event.processed_at,
            attempts=F("attempts") + 1,
        )


def _failure_text(exc: BaseException) -> str:
    """What an event failed of, with the traceback, as its ``error`` column can store it."""
    return storable_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")[:5000]


def sweep_pending_webhook_events() -> int:
    """Step 5: ask for a drain when events are still pending after the grace period; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.WEBHOOK_SWEEP_GRACE_SECONDS)
    stale = WebhookEvent.objects.filter(state=WebhookEventState.PENDING, received_at__lt=cutoff).count()
    if stale:
        services.request_drain()
    return stale

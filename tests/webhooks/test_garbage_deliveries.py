"""Deliveries carrying garbage anywhere in Meta's envelope (wrong types at every level, deep nesting, NUL and
half emoji, NaN, Infinity, numbers past a column's range, digits that are not ASCII digits) never hold up the
good ones: each garbage delivery ends processed (or unroutable) with exactly its unusable parts named as item
errors, and every usable message reaches the inbox. What counts as unusable, per part:

- an entry, a change or a change's value that is not an object: an item error at its path;
- a change for a number we do not know (metadata missing or of the wrong type too): an item error at its path,
  none of its items applied; the event is unroutable when no change of it was for a known number;
- a change on another field, or a list (messages, statuses, contacts, errors) that is not a list: ignored;
- a message or status that is not an object, or lacks a usable id, type/status, sender or timestamp, or that the
  database refuses (a 40-digit wa_id): an item error at its path, its siblings applied;
- one item error per object in a change's ``errors``;
- anything else (unknown keys holding garbage, names of the wrong type, junk sender profiles): harmless.

Garbage inside a body that can be read never fails the whole delivery; a delivery ends failed only when its
stored body cannot be read at all (tests/webhooks/test_drain_batches.py).
"""

import contextlib
import itertools
import json
from dataclasses import dataclass, field

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations.models import Message, MessageStatusEvent
from sandbox.signing import sign_body
from sandbox.simulation import envelope, message_change
from webhooks import drain, services
from webhooks.apis import read_json_object
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.payloads import (
    PayloadError,
    load_stored_body,
    parse_delivery,
    parse_message,
    parse_status,
)

NUMBER_ID = "427715309981234"  # the `number` fixture's
CUSTOMERS = ("447700900461", "5511987650042", "15557730999")
# Written into the raw JSON as the literal 1e400, which Python's parser reads as infinity.
OVERFLOWING = "__overflowing_float__"
# Strings parsers trip on: digits that are not ASCII digits ('²'.isdigit() is True, int('²') raises), NUL,
# half an emoji, number-like text.
ODD_STRINGS = ("", " ", "²", "①②", "١٧٦٧", "12²", "\x00", "a\x00b", "\ud83d", "\ude42 x", "NaN", "1e400", "-1", "0x1f")

short_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(OVERFLOWING),
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=8),
)
# Integers of up to 4,200 digits (json.loads refuses more than 4,300).
scalars = short_scalars | st.integers(min_value=1000, max_value=4200).map(lambda digits: 10**digits - 1)


def nested(depth: int) -> object:
    """``depth`` levels of objects and arrays around a string with a NUL (json.loads reads 600 levels)."""
    value: object = "deep \x00 down"
    for level in range(depth):
        value = {"a": value} if level % 3 else [value]
    return value


junk = st.one_of(
    st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
        max_leaves=6,
    ),
    st.integers(min_value=100, max_value=600).map(nested),
)
not_an_object = junk.filter(lambda value: not isinstance(value, dict))
not_a_list = junk.filter(lambda value: not isinstance(value, list))
not_a_string = junk.filter(lambda value: not isinstance(value, str) or value in ("", OVERFLOWING))
# Unknown keys, wherever Meta may add some: harmless whatever they hold.
extras = st.dictionaries(st.sampled_from(["x_note", "x_data", "x_more"]), junk, max_size=2)
seconds = st.integers(min_value=1_600_000_000, max_value=1_900_000_000)
timestamps = seconds.flatmap(lambda ts: st.sampled_from([str(ts), ts]))
bad_timestamps = st.sampled_from(
    [float("nan"), float("inf"), float("-inf"), OVERFLOWING, 10**30, -(10**30), 10**4000, "²", "١٧٦٧٢٦١٨٠٠",
     "1767261800.5", "", "soon", True, None, [1767261800], {"s": 1}]
)  # fmt: skip
meta_errors = st.lists(st.fixed_dictionaries({"code": short_scalars, "title": short_scalars}) | junk, max_size=2)
no_digits = st.sampled_from([None, "", "²", "①②", "+", "abc", True, 1.5, [447700900461], {"wa_id": "1"}])
STATUSES = ("sent", "delivered", "read", "played", "failed")


@dataclass
class Expected:
    """What a delivery must come to after a drain."""

    paths: list[str] = field(default_factory=list)  # item errors, by path
    applied: set[str] = field(default_factory=set)  # wamids of messages in the inbox
    refused: set[str] = field(default_factory=set)  # wamids that must not be stored
    statuses: set[str] = field(default_factory=set)  # wamids with a status event kept
    routed: bool = False  # a change for our number was read
    addressed: bool = False  # a change on the messages field was read

    @property
    def state(self) -> str:
        return WebhookEventState.UNROUTABLE if self.addressed and not self.routed else WebhookEventState.PROCESSED


@st.composite
def usable_message(draw, wamid: str) -> dict:
    """A message the inbox must show, whatever junk rides along with it."""
    types = ["text", "text", "order", "document", "interactive", "contacts", "location", "poll"]
    message_type = draw(st.sampled_from(types))
    quantities = st.lists(st.fixed_dictionaries({"quantity": short_scalars}), max_size=3)
    content = draw(st.fixed_dictionaries({}, optional={
        "body": short_scalars, "caption": short_scalars, "filename": short_scalars, "name": short_scalars,
        "type": short_scalars, "emoji": short_scalars, "product_items": quantities,
    }))  # fmt: skip
    if message_type == "contacts":  # the one type whose object is a list
        content = draw(st.lists(junk, max_size=2))
    else:
        content.update(draw(extras))
    message = {
        "from": draw(st.sampled_from(CUSTOMERS)),
        "id": wamid,
        "timestamp": draw(timestamps),
        "type": message_type,
        message_type: content,
    }
    optional = draw(st.fixed_dictionaries({}, optional={
        "context": st.fixed_dictionaries({"id": short_scalars}),
        "errors": meta_errors,
    }))  # fmt: skip
    return {**message, **optional, **draw(extras)}


@st.composite
def unusable_message(draw, wamid: str) -> object:
    message = draw(usable_message(wamid))
    flaw = draw(st.sampled_from(["not_an_object", "id", "type", "sender", "timestamp", "reaction", "long_wa_id"]))
    if flaw == "not_an_object":
        return draw(not_an_object)
    if flaw in ("id", "type", "timestamp") and draw(st.booleans()):
        del message[flaw]
    elif flaw in ("id", "type"):
        message[flaw] = draw(not_a_string)
    elif flaw == "timestamp":
        message["timestamp"] = draw(bad_timestamps)
    elif flaw == "sender":
        message["from"] = draw(no_digits)
    elif flaw == "reaction":
        message.update(type="reaction", reaction={"message_id": draw(not_a_string), "emoji": draw(short_scalars)})
    else:  # digits, but more than a wa_id column holds: the database refuses the contact
        message["from"] = draw(st.sampled_from([10**40, "9" * 40, "+" + "4" * 40]))
    return message


@st.composite
def usable_status(draw, wamid: str) -> dict:
    status = {
        "id": wamid,
        "status": draw(st.sampled_from(STATUSES)),
        "timestamp": draw(timestamps),
        "recipient_id": draw(st.sampled_from(CUSTOMERS)),
    }
    if draw(st.booleans()):
        status["errors"] = draw(meta_errors)
    return {**status, **draw(extras)}


@st.composite
def unusable_status(draw, wamid: str) -> object:
    status = draw(usable_status(wamid))
    flaw = draw(st.sampled_from(["not_an_object", "id", "status", "timestamp"]))
    if flaw == "not_an_object":
        return draw(not_an_object)
    if flaw == "id":
        status["id"] = draw(not_a_string)
    elif flaw == "status":
        status["status"] = draw(not_a_string | st.sampled_from(["seen", "SENT", "²"]))
    else:
        status["timestamp"] = draw(bad_timestamps)
    return status


def draw_items(draw, ids, path: str, usable, unusable, kept: set[str], expected: Expected) -> list:
    """One list of a change's items, each usable (its wamid in ``kept``) or not (an item error at its path)."""
    items = []
    for index in range(draw(st.integers(min_value=0, max_value=3))):
        wamid = f"wamid.{next(ids)}"
        if draw(st.booleans()):
            items.append(draw(usable(wamid)))
            kept.add(wamid)
        else:
            items.append(draw(unusable(wamid)))
            expected.paths.append(f"{path}[{index}]")
            expected.refused.add(wamid)
    return items


@st.composite
def routed_change(draw, ids, path: str, expected: Expected) -> dict:
    """A change for our number: its usable items applied, each unusable one an item error."""
    expected.routed = expected.addressed = True
    value: dict = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": NUMBER_ID, **draw(extras)}}
    if draw(st.booleans()):
        value["messages"] = draw_items(
            draw, ids, f"{path}.messages", usable_message, unusable_message, expected.applied, expected
        )
    else:
        value["messages"] = draw(st.none() | not_a_list)
    statuses = draw_items(draw, ids, f"{path}.statuses", usable_status, unusable_status, expected.statuses, expected)
    value["statuses"] = statuses
    # Sender profiles of the wrong shape: only ever the profile, never the message, is lost.
    profile = st.fixed_dictionaries({"name": short_scalars, "username": short_scalars}) | not_an_object
    contact = st.fixed_dictionaries({"wa_id": short_scalars, "profile": profile}, optional={"x_data": junk})
    value["contacts"] = draw(not_a_list | st.lists(contact | not_an_object, max_size=2))
    if draw(st.booleans()):
        value["errors"] = draw(meta_errors)
        expected.paths.extend(f"{path}.errors" for error in value["errors"] if isinstance(error, dict))
    return {"field": "messages", "value": {**value, **draw(extras)}}


@st.composite
def change(draw, ids, path: str, expected: Expected) -> object:
    kind = draw(st.sampled_from(["routed", "routed", "unknown_number", "other_field", "broken"]))
    if kind == "routed":
        return draw(routed_change(ids, path, expected))
    wamid = f"wamid.{next(ids)}"
    messages = [draw(usable_message(wamid))]
    if kind == "unknown_number":
        expected.addressed = True
        expected.paths.append(path)
        expected.refused.add(wamid)
        number_ids = junk.filter(lambda value: str(value) != NUMBER_ID) | st.just("100000000000009")
        metadata = draw(not_an_object | st.fixed_dictionaries({"phone_number_id": number_ids}))
        return {"field": "messages", "value": {"metadata": metadata, "messages": messages}}
    if kind == "other_field":
        expected.refused.add(wamid)
        other = draw(junk.filter(lambda value: value != "messages"))
        return {"field": other, "value": {"metadata": {"phone_number_id": NUMBER_ID}, "messages": messages}}
    expected.paths.append(path)
    return draw(not_an_object | st.fixed_dictionaries({"field": st.just("messages"), "value": not_an_object}))


@st.composite
def garbage_delivery(draw, ids) -> tuple[dict, Expected]:
    expected = Expected()
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return {"object": draw(junk), "entry": draw(not_a_list)}, expected  # nothing to read, nothing to name
    entries: list[object] = []
    for entry_index in range(draw(st.integers(min_value=1, max_value=2))):
        kind = draw(st.sampled_from(["changes", "changes", "changes", "not_an_object", "no_changes"]))
        if kind == "not_an_object":
            entries.append(draw(not_an_object))
            expected.paths.append(f"entry[{entry_index}]")
        elif kind == "no_changes":
            entries.append({"id": draw(short_scalars), "changes": draw(not_a_list)})
        else:
            changes = [
                draw(change(ids, f"entry[{entry_index}].changes[{index}]", expected))
                for index in range(draw(st.integers(min_value=1, max_value=3)))
            ]
            entries.append({"id": draw(short_scalars), "changes": changes, **draw(extras)})
    return {"object": "whatsapp_business_account", "entry": entries, **draw(extras)}, expected


@st.composite
def good_delivery(draw, ids) -> tuple[dict, Expected]:
    """A plain customer message, as Meta sends most of them."""
    wamid = f"wamid.{next(ids)}"
    change_ = message_change(
        phone_number_id=NUMBER_ID,
        display_phone_number="15557730142",
        wa_id=draw(st.sampled_from(CUSTOMERS)),
        wamid=wamid,
        timestamp=draw(seconds),
        content={"text": {"body": draw(st.text(max_size=30))}},
    )
    payload = envelope(waba_id="318273645502211", changes=[change_])
    return payload, Expected(applied={wamid}, routed=True, addressed=True)


@st.composite
def deliveries(draw) -> list[tuple[dict, Expected]]:
    """Good and garbage deliveries, interleaved (one id sequence: every wamid is new)."""
    ids = itertools.count()
    good = draw(st.lists(good_delivery(ids), min_size=1, max_size=3))
    garbage = draw(st.lists(garbage_delivery(ids), min_size=1, max_size=4))
    return draw(st.permutations(good + garbage))


def wire(payload: dict) -> bytes:
    """The body as a client would sign it: NaN and Infinity as JSON literals, the marker as 1e400."""
    return json.dumps(payload).replace(f'"{OVERFLOWING}"', "1e400").encode()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(deliveries())
def test_parsing_garbage_raises_nothing_but_payload_errors(batch):
    for payload, _expected in batch:
        delivery = parse_delivery(load_stored_body(wire(payload).decode()))
        for change_ in delivery.changes:
            for raw in change_.raw_messages:
                with contextlib.suppress(PayloadError):
                    parse_message(raw)
            for raw in change_.raw_statuses:
                with contextlib.suppress(PayloadError):
                    parse_status(raw)


@pytest.mark.django_db
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=deliveries())
def test_garbage_deliveries_never_hold_up_the_good_ones(number, batch):
    savepoint = transaction.savepoint()  # each example starts from the same database
    try:
        events = []
        for payload, expected in batch:
            raw_body = wire(payload)
            # As the webhook view stores a delivery it verified: the JSON check, then the INSERT.
            event_id = services.store_webhook_event(
                raw_body=raw_body,
                payload=read_json_object(raw_body),
                signature=sign_body(raw_body=raw_body, app_secret=django_settings.META_APP_SECRET),
            )
            events.append((event_id, expected))

        drain.drain_webhook_events()

        stored = {event.pk: event for event in WebhookEvent.objects.filter(pk__in=[event_id for event_id, _ in events])}
        for event_id, expected in events:
            event = stored[event_id]
            assert (event.state, event.error) == (expected.state, ""), event.raw_body[:2000]
            assert sorted(error["path"] for error in event.item_errors) == sorted(expected.paths), event.item_errors
        applied = set().union(*(expected.applied for _, expected in events))
        refused = set().union(*(expected.refused for _, expected in events))
        statuses = set().union(*(expected.statuses for _, expected in events))
        inbox = set(Message.objects.filter(conversation__number=number).values_list("wamid", flat=True))
        kept_statuses = set(MessageStatusEvent.objects.values_list("wamid", flat=True))
        assert applied <= inbox
        assert statuses <= kept_statuses
        assert not refused & (inbox | kept_statuses)
    finally:
        transaction.savepoint_rollback(savepoint)

"""Every sample delivery in tests/webhooks/payloads (Meta's documented shapes) parses, and posting it stores what a
user would see."""

import json
import random
from pathlib import Path

import pytest

from webhooks import payloads
from webhooks.payloads import PayloadError, load_stored_body, parse_delivery, parse_message, parse_status

PAYLOADS = Path(__file__).parent / "payloads"
FILES = sorted(PAYLOADS.glob("*.json"))


def load(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_sample_parses_into_typed_items(path):
    delivery = parse_delivery(json.loads(path.read_text()))
    assert delivery.broken == ()
    assert delivery.phone_number_ids == ["427715309981234"]
    items = 0
    for change in delivery.changes:
        for raw in change.raw_messages:
            message = parse_message(raw)
            assert message.wamid.startswith("wamid.")
            assert message.timestamp.tzinfo is not None
            assert message.preview, "every message has a human preview line"
            items += 1
        for raw in change.raw_statuses:
            status = parse_status(raw)
            assert status.status in {"sent", "delivered", "read", "failed"}
            items += 1
    assert items >= 1


def test_text_message_fields():
    message = parse_message(load("message_text.json")["entry"][0]["changes"][0]["value"]["messages"][0])
    assert message.type == "text"
    assert message.body == message.preview
    assert message.sender.wa_id == "447700900461"
    assert message.sender.user_id == "GB.7741902236518840217"


def test_reply_context_is_kept():
    raw = load("message_text_reply_context.json")["entry"][0]["changes"][0]["value"]["messages"][0]
    message = parse_message(raw)
    assert message.reply_to_wamid == raw["context"]["id"]


def test_reaction_removed_has_empty_emoji():
    raw = load("message_reaction_removed.json")["entry"][0]["changes"][0]["value"]["messages"][0]
    assert parse_message(raw).reaction.emoji == ""


def test_failed_status_keeps_meta_error():
    raw = load("status_failed_131047.json")["entry"][0]["changes"][0]["value"]["statuses"][0]
    status = parse_status(raw)
    assert status.first_error.code == 131047
    assert status.first_error.title


def test_system_identity_change():
    raw = load("message_system_user_changed_user_id.json")["entry"][0]["changes"][0]["value"]["messages"][0]
    change = parse_message(raw).identity_change
    assert change.kind == "user_changed_user_id"
    assert change.new_user_id == "GB.5520984417306651289"


def test_unknown_type_is_kept_with_a_placeholder():
    message = parse_message(
        {"id": "wamid.X", "from": "1555", "timestamp": "1767261800", "type": "poll_vote", "poll_vote": {"a": 1}}
    )
    assert message.type == "poll_vote"
    assert message.preview.startswith("Unsupported message")


@pytest.mark.parametrize(
    "raw",
    [
        "not an object",
        {"from": "1555", "timestamp": "1", "type": "text"},  # no id
        {"id": "wamid.X", "from": "1555", "timestamp": "yesterday", "type": "text"},
        {"id": "wamid.X", "timestamp": "1", "type": "text"},  # no sender at all
    ],
)
def test_malformed_message_raises_payload_error(raw):
    with pytest.raises(PayloadError):
        parse_message(raw)


def test_username_user_without_phone():
    message = parse_message(
        {"id": "wamid.X", "from_user_id": "US.1349", "timestamp": "1767261800", "type": "text", "text": {"body": "hi"}}
    )
    assert message.sender.wa_id is None
    assert message.sender.user_id == "US.1349"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Meta escapes every emoji as a surrogate pair: kept whole, not "repaired".
        ('{"body": "on its way? \\ud83d\\ude42"}', {"body": "on its way? \U0001f642"}),
        ('{"body": "half \\ud83d an emoji"}', {"body": "half \ufffd an emoji"}),
        ('{"body": "low half \\ude42"}', {"body": "low half \ufffd"}),
        ('{"body": "\\ud83d\\ude42 then \\ud83d"}', {"body": "\U0001f642 then \ufffd"}),
        ('{"bo\\u0000dy": "a\\u0000b"}', {"body": "ab"}),
        ('{"body": "\\uD83D\\uDE42 and \\ude42\\ud83d"}', {"body": "\U0001f642 and \ufffd\ufffd"}),
        # A literal backslash-u text is text, whatever it spells.
        ('{"body": "\\\\u0000 \\\\ud83d"}', {"body": "\\u0000 \\ud83d"}),
        # ... and an escape right after one is still an escape: here half a pair.
        ('{"body": "\\\\ud83d\\ude42"}', {"body": "\\ud83d\ufffd"}),
    ],
)
def test_stored_bodies_load_with_every_string_storable(raw, expected):
    assert load_stored_body(raw) == expected


def random_texts(fragments: list[str], *, seed: int, count: int = 3000):
    """``count`` strings of 1 to 8 fragments each, the same for a seed."""
    rng = random.Random(seed)
    for _ in range(count):
        yield "".join(rng.choice(fragments) for _ in range(rng.randint(1, 8)))


def test_the_quick_look_at_the_raw_text_never_skips_a_string_that_needs_repair():
    # Random bodies of escapes, whole pairs, halves, NULs and escaped backslashes: the result is always what
    # re-encoding every parsed string (the slow, sure check) gives.
    fragments = [
        "a",
        " ",
        "\\ud83d\\ude42",
        "\\uD83D\\uDE42",
        "\\ud83d",
        "\\ude42",
        "\\udbff",
        "\\udc00",
        "\\u0000",
        "\\\\",
        "\\\\u0000",
        "\\\\ud83d",
        '\\"',
        "\\u00e9",
        "\\n",
    ]
    for text in random_texts(fragments, seed=7):
        raw = f'{{"body": "{text}", "k{text}": 1}}'
        parsed = json.loads(raw)
        sure = parsed if payloads._is_storable(parsed) else payloads._storable(parsed)
        assert load_stored_body(raw) == sure, raw


def test_without_an_escaped_backslash_the_quick_look_is_exact():
    # Where no backslash is escaped, every backslash-u is an escape, and the quick look says "may be unstorable"
    # for exactly the bodies that hold a NUL or half a pair: a whole pair, or any other escape, costs no
    # re-encoding. (A look that flagged too much would still pass the test above, only slower.)
    fragments = [
        "a",
        "u",
        "D8",
        " ",
        "\\ud83d\\ude42",
        "\\uD83D\\uDE42",
        "\\ud83d",
        "\\ude42",
        "\\udbff",
        "\\udc00",
        "\\uDBFF\\uDFFF",
        "\\udfff",
        "\\uDC00",
        "\\u0000",
        "\\u00e9",
        "\\ud7ff",
        "\\ue000",
        '\\"',
        "\\n",
    ]
    flagged = 0
    for text in random_texts(fragments, seed=11):
        raw = f'{{"body": "{text}"}}'
        needs_repair = not payloads._is_storable(json.loads(raw))
        assert payloads._may_be_unstorable(raw) == needs_repair, raw
        flagged += needs_repair
    assert 300 < flagged < 2700  # both answers were asked for


def test_a_body_hundreds_of_levels_deep_has_its_strings_cleaned_without_recursing():
    # json.loads reads 600 levels; the cleaning once recursed two frames a level and raised RecursionError.
    raw = '{"a": ' * 600 + '"x\\u0000y \\ud83d"' + "}" * 600
    value = load_stored_body(raw)
    for _ in range(600):
        value = value["a"]
    assert value == "xy \ufffd"


def test_nan_infinity_and_floats_past_the_range_read_as_null():
    # Python's parser accepts them; PostgreSQL's jsonb refuses them, which would lose the message.
    raw = '{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e400, "e": -1e400, "f": 51.5072, "g": 10}'
    assert load_stored_body(raw) == {"a": None, "b": None, "c": None, "d": None, "e": None, "f": 51.5072, "g": 10}


def text_message(**fields) -> dict:
    return {
        "id": "wamid.X",
        "from": "447700900461",
        "timestamp": "1767261800",
        "type": "text",
        "text": {"body": "hi"},
        **fields,
    }


@pytest.mark.parametrize(
    "timestamp",
    [float("nan"), float("inf"), float("-inf"), 1e300, 10**30, -(10**30), pytest.param(10**4000, id="4001-digits"), "²",
     "١٧٦٧٢٦١٨٠٠", "1767261800.5", "", True, None, [1767261800]],
)  # fmt: skip
def test_a_timestamp_no_date_can_hold_is_a_payload_error(timestamp):
    # int(inf) raises OverflowError, datetime.fromtimestamp(1e300) OverflowError or ValueError, int('²') ValueError.
    with pytest.raises(PayloadError, match="bad timestamp"):
        parse_message(text_message(timestamp=timestamp))
    with pytest.raises(PayloadError, match="bad timestamp"):
        parse_status({"id": "wamid.X", "status": "read", "timestamp": timestamp, "recipient_id": "447700900461"})


def test_a_bad_timestamp_is_shown_briefly_in_the_error():
    with pytest.raises(PayloadError) as raised:
        parse_message(text_message(timestamp="9" * 100_000))
    assert len(str(raised.value)) < 120


@pytest.mark.parametrize("sender", ["²", "①②", "٣٣", True, 1.5, [447700900461], {"wa_id": "447700900461"}])
def test_a_sender_without_ascii_digits_is_no_sender(sender):
    # '²'.isdigit() is True, and no phone number holds it (int('²') raises).
    with pytest.raises(PayloadError, match="neither from nor from_user_id"):
        parse_message(text_message(**{"from": sender}))


@pytest.mark.parametrize(
    ("sender", "wa_id"),
    [("+44 7700 900461", "447700900461"), ("44²7700900461", "447700900461"), (447700900461, "447700900461")],
)
def test_a_sender_keeps_only_its_ascii_digits(sender, wa_id):
    assert parse_message(text_message(**{"from": sender})).sender.wa_id == wa_id


@pytest.mark.parametrize(
    ("code", "expected"),
    [(131047, 131047), ("131047", 131047), ("²", None), ("١٣١", None), (-1, None), (2**31, None),
     pytest.param(10**4000, None, id="4001-digits"), (float("nan"), None), (True, None), ([131047], None)],
)  # fmt: skip
def test_meta_error_codes_are_read_only_as_32_bit_numbers(code, expected):
    status = parse_status(
        {
            "id": "wamid.X",
            "status": "failed",
            "timestamp": "1767261800",
            "recipient_id": "1555",
            "errors": [{"code": code, "title": ["not", "text"], "message": "Re-engagement message"}],
        }
    )
    assert (status.first_error.code, status.first_error.title) == (expected, "Re-engagement message")


def test_an_order_counts_only_the_quantities_it_can_read():
    order = {
        "product_items": [
            {"quantity": 2},
            {"quantity": "1"},
            {"quantity": "²"},
            {"quantity": float("inf")},
            {"quantity": [3]},
            {"quantity": 10**4000},
            {"quantity": None},
            "not an item",
        ]
    }
    assert parse_message(text_message(type="order", order=order)).preview == "🛒 Order: 3 items"


def test_text_fields_of_the_wrong_type_read_as_empty_not_as_their_repr():
    change = parse_delivery(
        {
            "entry": [
                {
                    "id": ["318273645502211"],
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "metadata": {
                                    "phone_number_id": {"id": "427715309981234"},
                                    "display_phone_number": 15557730142,
                                },
                                "contacts": [
                                    {"wa_id": {"a": 1}, "profile": {"name": [["x"] * 3] * 3, "username": True}}
                                ],
                            },
                        }
                    ],
                }
            ]
        }
    ).changes[0]
    assert (change.waba_id, change.phone_number_id, change.display_phone_number) == ("", "", "15557730142")
    assert change.contacts[0] == payloads.SenderProfile(wa_id=None, user_id=None, name="", username="")
    message = parse_message(
        text_message(type="document", document={"filename": {"deep": [1]}, "caption": 7}, context={"id": []})
    )
    assert (message.preview, message.body, message.reply_to_wamid) == ("📄 Document: 7", "7", "")

"""Meta's webhook payload shapes, parsed once into typed objects.

Everything else in the project reads these dataclasses, never the raw JSON. Parsing is tolerant the way
Meta's schema requires (unknown keys ignored, optional fields optional, unknown message types kept) and
strict only where a value is unusable: an item that cannot be parsed raises ``PayloadError`` so the caller
can record it against the event and go on with the other items of the batch.

Shapes: docs/meta.md §3 (Meta's webhook reference and OpenAPI ``WebhookPayload``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import reprlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from contacts.models import Contact
from contacts.phones import digits_of
from conversations.account_events import (
    ACCOUNT_ALERTS,
    ACCOUNT_FIELDS,
    ACCOUNT_REVIEW_UPDATE,
    ACCOUNT_UPDATE,
    BUSINESS_CAPABILITY_UPDATE,
    MESSAGE_TEMPLATE_QUALITY_UPDATE,
    MESSAGE_TEMPLATE_STATUS_UPDATE,
    PHONE_NUMBER_NAME_UPDATE,
    PHONE_NUMBER_QUALITY_UPDATE,
    SECURITY,
    TEMPLATE_CATEGORY_UPDATE,
    USER_PREFERENCES,
    AccountAlert,
    AccountChangeItem,
    AccountUpdate,
    CapabilityUpdate,
    MarketingPreference,
    NameUpdate,
    QualityUpdate,
    Restriction,
    ReviewUpdate,
    SecurityUpdate,
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateRef,
    TemplateStatusUpdate,
    portfolio_limit,
)
from conversations.incoming import (
    AddressBookChange,
    Amendment,
    HistoryChunk,
    HistoryMessage,
    Identity,
    IdentityChange,
    InboundMessage,
    MetaError,
    Pricing,
    ReactionChange,
    StatusUpdate,
)
from conversations.models import Message, MessageTemplate, Reaction


class PayloadError(ValueError):
    """One item (or the envelope) does not have the shape Meta documents."""


@dataclass(frozen=True)
class SenderProfile:
    """One item of ``value.contacts[]``: who wrote, as Meta knows them."""

    wa_id: str | None
    user_id: str | None
    name: str
    username: str


@dataclass(frozen=True)
class Change:
    """One ``entry[].changes[]`` item. Its items stay raw until ``parse_message``/``parse_status``, so one
    malformed item cannot hide the others."""

    path: str
    field: str
    waba_id: str
    phone_number_id: str
    display_phone_number: str
    contacts: tuple[SenderProfile, ...]
    raw_messages: tuple[dict[str, Any], ...]
    raw_statuses: tuple[dict[str, Any], ...]
    errors: tuple[MetaError, ...]


@dataclass(frozen=True)
class Delivery:
    changes: tuple[Change, ...]
    # Changes that could not even be read (no metadata, wrong types): (path, reason).
    broken: tuple[tuple[str, str], ...] = field(default=())

    @property
    def phone_number_ids(self) -> list[str]:
        return list(dict.fromkeys(c.phone_number_id for c in self.changes if c.phone_number_id))


STATUSES = ("sent", "delivered", "read", "played", "failed")

# The widths of the columns that keep Meta's free text: a longer profile name, username, message type or
# reaction is cut to fit rather than failing its message (ids are not cut: a longer one fails its item).
_PROFILE_NAME_WIDTH = Contact._meta.get_field("profile_name").max_length
_USERNAME_WIDTH = Contact._meta.get_field("username").max_length
_TYPE_WIDTH = Message._meta.get_field("type").max_length
_REPLY_TO_WIDTH = Message._meta.get_field("reply_to_wamid").max_length
_EMOJI_WIDTH = Reaction._meta.get_field("emoji").max_length
_TEMPLATE_NAME_WIDTH = MessageTemplate._meta.get_field("name").max_length
_TEMPLATE_LANGUAGE_WIDTH = MessageTemplate._meta.get_field("language").max_length


# JSON may escape characters PostgreSQL cannot store in text: NUL (\u0000) and lone UTF-16 surrogates
# (half an emoji, from a client that cut a string). A cheap look at the raw text decides whether the
# parsed strings need a closer look. Meta escapes every emoji as a surrogate pair, so most messages with one
# match the first pattern; where the text holds no escaped backslash, every \u in it is an escape and the
# second pattern tells exactly whether a NUL or a half pair is there (a whole pair needs nothing: the
# re-encoding check it spares cost 11 µs of a drain's ~13 µs per such delivery). Every branch starts after
# the same literal backslash-u, so the regex engine skips from one backslash-u to the next: with the low half's
# lookbehind in front of its branch it tried all three branches at every character, 12 µs for a 450-byte body
# (more than json.loads) against 0.5 µs, and 10 % of a drain's instructions.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_NUL_OR_HALF_PAIR = re.compile(
    r"\\u(?:0000"
    r"|[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"  # a high half without its low half
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u)[dD][c-fC-F][0-9a-fA-F]{2})"  # a low half without its high half
)


def _may_be_unstorable(raw_body: str) -> bool:
    if not _UNSTORABLE_ESCAPE.search(raw_body):
        return False
    return "\\\\" in raw_body or _NUL_OR_HALF_PAIR.search(raw_body) is not None


def _finite_or_none(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


# JSON has no NaN or Infinity (RFC 8259) and PostgreSQL's jsonb refuses them, yet Python's parser reads the
# literals NaN and Infinity, and 1e400 as infinity: a stored body reads each of them as null, so a message
# carrying one is still stored. The callbacks run only for such literals and for floats (rare in Meta's bodies).
_STORED_BODY_DECODER = json.JSONDecoder(parse_constant=lambda _literal: None, parse_float=_finite_or_none)


def load_stored_body(raw_body: str) -> dict[str, Any]:
    """A stored delivery's JSON, with every string safe to store (NUL dropped, lone surrogates U+FFFD) and
    every number finite."""
    payload = _STORED_BODY_DECODER.decode(raw_body)
    if _may_be_unstorable(raw_body) and not _is_storable(payload):
        payload = _storable(payload)
    return payload if isinstance(payload, dict) else {}


def _is_storable(payload: Any) -> bool:
    """Whether every string (keys too) is free of NUL and lone surrogates, at the speed of the C encoder
    (the walk in ``_storable`` costs ~20x more; a literal backslash-u0000 text only costs a needless walk)."""
    try:
        text = json.dumps(payload, ensure_ascii=False)  # NUL comes out escaped, as \u0000
        text.encode("utf-8")
    except (UnicodeEncodeError, RecursionError):  # too deep for the encoder's stack: the walk decides
        return False
    return "\\u0000" not in text


def _storable(value: Any) -> Any:
    """``value`` with every string (keys too) made storable, containers changed in place. A loop over a
    stack of containers, not a recursion: a body the parser could read is never too deep for it."""
    if isinstance(value, str):
        return storable_text(value)
    pending = [value] if isinstance(value, dict | list) else []
    while pending:
        container = pending.pop()
        if isinstance(container, list):
            for index, item in enumerate(container):
                if isinstance(item, str):
                    container[index] = storable_text(item)
                elif isinstance(item, dict | list):
                    pending.append(item)
            continue
        items = list(container.items())
        container.clear()
        for key, item in items:
            if isinstance(item, str):
                item = storable_text(item)
            elif isinstance(item, dict | list):
                pending.append(item)
            container[storable_text(key)] = item
    return value


def storable_text(text: str) -> str:
    """``text`` as PostgreSQL can store it: NUL dropped, lone surrogates (half an emoji) U+FFFD."""
    return text.replace("\x00", "").encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def parse_delivery(payload: dict[str, Any]) -> Delivery:
    changes: list[Change] = []
    broken: list[tuple[str, str]] = []
    for entry_index, entry in enumerate(_list(payload.get("entry"))):
        if not isinstance(entry, dict):
            broken.append((f"entry[{entry_index}]", "entry is not an object"))
            continue
        for change_index, change in enumerate(_list(entry.get("changes"))):
            path = f"entry[{entry_index}].changes[{change_index}]"
            try:
                changes.append(_parse_change(path, _text(entry.get("id")), change))
            except PayloadError as exc:
                broken.append((path, str(exc)))
    return Delivery(changes=tuple(changes), broken=tuple(broken))


def _parse_change(path: str, waba_id: str, change: Any) -> Change:
    if not isinstance(change, dict):
        raise PayloadError("change is not an object")
    value = change.get("value")
    if not isinstance(value, dict):
        raise PayloadError("change has no value object")
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    contacts = []
    for item in _list(value.get("contacts")):
        if isinstance(item, dict):
            profile = item.get("profile") if isinstance(item.get("profile"), dict) else {}
            contacts.append(
                SenderProfile(
                    wa_id=_digits_or_none(item.get("wa_id")),
                    user_id=_str_or_none(item.get("user_id")),
                    name=_text(profile.get("name"))[:_PROFILE_NAME_WIDTH],
                    username=_text(profile.get("username"))[:_USERNAME_WIDTH],
                )
            )
    return Change(
        path=path,
        field=_text(change.get("field")),
        waba_id=waba_id,
        phone_number_id=_text(metadata.get("phone_number_id")),
        display_phone_number=_text(metadata.get("display_phone_number")),
        contacts=tuple(contacts),
        raw_messages=tuple(_list(value.get("messages"))),
        raw_statuses=tuple(_list(value.get("statuses"))),
        errors=tuple(_errors(value.get("errors"))),
    )


def parse_message(raw: Any) -> InboundMessage:
    if not isinstance(raw, dict):
        raise PayloadError("message is not an object")
    wamid = _required_str(raw, "id")
    message_type = _required_str(raw, "type")
    sender = Identity(wa_id=_digits_or_none(raw.get("from")), user_id=_str_or_none(raw.get("from_user_id")))
    content = raw.get(message_type) if isinstance(raw.get(message_type), dict) else {}
    if message_type == "contacts":
        # The one type whose object is a list (contact cards).
        content = {"contacts": [c for c in _list(raw.get("contacts")) if isinstance(c, dict)]}
    context = raw.get("context") if isinstance(raw.get("context"), dict) else {}
    errors = tuple(_errors(raw.get("errors")))
    body, preview = _body_and_preview(message_type, content, errors)

    reaction = None
    if message_type == "reaction":
        target = content.get("message_id")
        if not isinstance(target, str) or not target:
            raise PayloadError("reaction has no message_id")
        reaction = ReactionChange(message_wamid=target, emoji=_text(content.get("emoji"))[:_EMOJI_WIDTH])

    identity_change = None
    if message_type == "system":
        identity_change = IdentityChange(
            kind=_text(content.get("type")),
            new_wa_id=_digits_or_none(content.get("wa_id")),
            new_user_id=_str_or_none(content.get("user_id")),
        )
        if identity_change.new_wa_id is None and identity_change.new_user_id is None:
            identity_change = None

    # Coexistence's edits and deletions (rare): a set lookup for every other message.
    amendment = _amendment(message_type, content, body) if message_type in _AMENDING_TYPES else None

    if sender.wa_id is None and sender.user_id is None:
        raise PayloadError("message has neither from nor from_user_id")
    reply_to_wamid = _text(context.get("id"))
    return InboundMessage(
        wamid=wamid,
        type=message_type[:_TYPE_WIDTH],
        timestamp=_timestamp(raw.get("timestamp")),
        sender=sender,
        body=body,
        preview=preview,
        content=content,
        context=context,
        # A quoted id too long to be one of ours: the message without its quote.
        reply_to_wamid=reply_to_wamid if len(reply_to_wamid) <= _REPLY_TO_WIDTH else "",
        errors=errors,
        reaction=reaction,
        identity_change=identity_change,
        amendment=amendment,
    )


def parse_status(raw: Any) -> StatusUpdate:
    if not isinstance(raw, dict):
        raise PayloadError("status is not an object")
    status = _required_str(raw, "status")
    if status not in STATUSES:
        raise PayloadError(f"unknown status {_shown(status)}")
    return StatusUpdate(
        wamid=_required_str(raw, "id"),
        status=status,
        timestamp=_timestamp(raw.get("timestamp")),
        recipient=Identity(
            wa_id=_digits_or_none(raw.get("recipient_id")), user_id=_str_or_none(raw.get("recipient_user_id"))
        ),
        errors=tuple(_errors(raw.get("errors"))),
        raw=raw,
        pricing=_pricing(raw.get("pricing")),
    )


# The widest pricing value stored (Priced's columns); a longer one is not one of Meta's.
_PRICING_WIDTH = 32


def _pricing(value: Any) -> Pricing | None:
    if not isinstance(value, dict):
        return None
    billable = value.get("billable")
    return Pricing(
        billable=billable if isinstance(billable, bool) else None,
        model=_short_text(value.get("pricing_model")),
        type=_short_text(value.get("type")),
        category=_short_text(value.get("category")),
    )


def _short_text(value: Any) -> str:
    return value[:_PRICING_WIDTH] if isinstance(value, str) else ""


def profile_for(change: Change, sender: Identity) -> SenderProfile | None:
    """The ``contacts[]`` entry describing this sender (matched by BSUID, then wa_id)."""
    for profile in change.contacts:
        if sender.user_id and profile.user_id == sender.user_id:
            return profile
    for profile in change.contacts:
        if sender.wa_id and profile.wa_id == sender.wa_id:
            return profile
    return change.contacts[0] if len(change.contacts) == 1 else None


# --- Human preview lines ------------------------------------------------------------------------

_MEDIA_LABELS = {"image": "📷 Photo", "video": "🎥 Video", "sticker": "Sticker", "document": "📄 Document"}


def _body_and_preview(message_type: str, content: dict[str, Any], errors: tuple[MetaError, ...]) -> tuple[str, str]:
    """The message's own text (body) and one human line for the inbox (preview)."""
    if message_type in _MEDIA_LABELS:
        return _media(message_type, content)
    reader = _READERS.get(message_type)
    if reader is not None:
        return reader(content)
    # unsupported, unknown, and any type Meta adds later: kept, shown as a placeholder.
    inner = _text(content.get("type"))
    reason = errors[0].title if errors else ""
    label = f"Unsupported message ({inner})" if inner else "Unsupported message"
    return "", f"{label}: {reason}" if reason else label


def _media(message_type: str, content: dict[str, Any]) -> tuple[str, str]:
    caption = _text(content.get("caption"))
    label = _MEDIA_LABELS[message_type]
    if message_type == "document" and (filename := _text(content.get("filename"))):
        label = f"📄 {filename}"
    return caption, f"{label}: {caption}" if caption else label


def _text_message(content: dict[str, Any]) -> tuple[str, str]:
    body = _text(content.get("body"))
    return body, body


def _location(content: dict[str, Any]) -> tuple[str, str]:
    name = _text(content.get("name")) or _text(content.get("address"))
    return name, f"📍 {name}" if name else "📍 Location"


def _contact_cards(content: dict[str, Any]) -> tuple[str, str]:
    names = [
        _text(card["name"].get("formatted_name")) for card in content["contacts"] if isinstance(card.get("name"), dict)
    ]
    names = [n for n in names if n]
    return "", "👤 " + (", ".join(names) if names else "Contact card")


def _interactive(content: dict[str, Any]) -> tuple[str, str]:
    kind = _text(content.get("type"))
    reply = content.get(kind) if isinstance(content.get(kind), dict) else {}
    if kind in ("button_reply", "list_reply"):
        title = _text(reply.get("title"))
        return title, title or "Reply"
    if kind == "nfm_reply":
        body = _text(reply.get("body"))
        return body, "📝 " + (body or _text(reply.get("name")) or "Form reply")
    return "", "Interactive reply"


def _button(content: dict[str, Any]) -> tuple[str, str]:
    text = _text(content.get("text")) or _text(content.get("payload"))
    return text, text or "Button"


def _reaction(content: dict[str, Any]) -> tuple[str, str]:
    emoji = _text(content.get("emoji"))
    return emoji, f"Reacted {emoji}" if emoji else "Removed a reaction"


def _order(content: dict[str, Any]) -> tuple[str, str]:
    items = [i for i in _list(content.get("product_items")) if isinstance(i, dict)]
    count = sum(_bounded_int(i.get("quantity"), low=0, high=_MAX_QUANTITY) or 0 for i in items)
    return _text(content.get("text")), f"🛒 Order: {count} item{'s' if count != 1 else ''}"


def _system(content: dict[str, Any]) -> tuple[str, str]:
    body = _text(content.get("body"))
    return body, body or "System message"


_READERS = {
    "text": _text_message,
    "audio": lambda content: ("", "🎤 Voice message" if content.get("voice") else "🎵 Audio"),
    "location": _location,
    "contacts": _contact_cards,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "order": _order,
    "system": _system,
    "request_welcome": lambda _content: ("", "Opened the chat"),
    "revoke": lambda _content: ("", "Deleted a message"),
    "edit": lambda content: _edited(content),
}


# --- Small readers ----------------------------------------------------------------------------------


def _object(value: Any) -> dict[str, Any]:
    """An object field read leniently: anything else as an empty one."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _text(value: Any) -> str:
    """A text field, read leniently: a number as its digits; null, booleans, objects and lists as ""."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _digits_or_none(value: Any) -> str | None:
    """Meta's wa_id and from are digits; a documented example carries a '+', so strip formatting. Only ASCII
    digits count: str.isdigit() also accepts '²' and '①', which no phone number holds (int('²') raises)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return digits_of(value) or None


def _bounded_int(value: Any, *, low: int, high: int) -> int | None:
    """An integer field (an int, a float's whole part, or ASCII digits) within [low, high], else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str) and not value.isascii():
        return None  # '²'.isdigit() is True, and int('²') raises
    try:
        number = int(value)
    except (ValueError, OverflowError):  # not digits, NaN, infinity, past 4,300 digits
        return None
    return number if low <= number <= high else None


_BOUNDED_REPR = reprlib.Repr()
_BOUNDED_REPR.maxlevel, _BOUNDED_REPR.maxstring, _BOUNDED_REPR.maxother, _BOUNDED_REPR.maxlong = 2, 60, 60, 40


def _shown(value: Any) -> str:
    """``repr`` for an error text, bounded: a value may be megabytes long or hundreds of levels deep."""
    return _BOUNDED_REPR.repr(value)


def _required_str(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"missing {key}")
    return value


# The seconds a datetime can hold (years 1 to 9999); PostgreSQL's timestamptz holds them all.
_EARLIEST_SECONDS = int(datetime(1, 1, 2, tzinfo=UTC).timestamp())
_LATEST_SECONDS = int(datetime(9999, 12, 30, tzinfo=UTC).timestamp())
# Meta's error codes and Message.error_code are 32-bit integers.
_MAX_ERROR_CODE = 2**31 - 1
_MAX_QUANTITY = 10**9


def _timestamp(value: Any) -> datetime:
    seconds = _bounded_int(value, low=_EARLIEST_SECONDS, high=_LATEST_SECONDS)
    if seconds is None:
        raise PayloadError(f"bad timestamp {_shown(value)}")
    return datetime.fromtimestamp(seconds, tz=UTC)


def _errors(value: Any) -> list[MetaError]:
    errors = []
    for item in _list(value):
        if not isinstance(item, dict):
            continue
        error_data = item.get("error_data") if isinstance(item.get("error_data"), dict) else {}
        message = _text(item.get("message"))
        errors.append(
            MetaError(
                code=_bounded_int(item.get("code"), low=0, high=_MAX_ERROR_CODE),
                title=_text(item.get("title")) or message,
                message=message,
                details=_text(error_data.get("details")),
            )
        )
    return errors


# --- Account-level fields (docs/meta.md §10) ------------------------------------------------------------
# Rare next to messages, so parsed only for the deliveries that carry them (webhooks/drain.py's own branch).

# Enum-like values are cut to this (their columns' width); names and free texts to theirs.
_ENUM_WIDTH = 64
_NAME_WIDTH = 256
_FREE_TEXT_WIDTH = 2000


class _Lenient:
    """Reads one object's keys leniently, noting each key whose value has a type Meta never sends for it:
    the key is ignored (and reported), the rest of the change still applies."""

    def __init__(self, value: dict[str, Any], *, prefix: str = "", ignored: list[str] | None = None):
        self.value = value
        self.prefix = prefix
        self.ignored = [] if ignored is None else ignored

    def text(self, key: str, *, width: int = _ENUM_WIDTH) -> str:
        value = self.value.get(key)
        if value is None:
            return ""
        if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
            return storable_text(_text(value))[:width]
        self.ignored.append(self.prefix + key)
        return ""

    def integer(self, key: str) -> int | None:
        value = self.value.get(key)
        if value is None:
            return None
        number = _bounded_int(value, low=-(2**31), high=2**31 - 1)
        if number is None:
            self.ignored.append(self.prefix + key)
        return number

    def time(self, key: str) -> datetime | None:
        """Unix seconds (an integer or digits) or an ISO 8601 text: Meta's pages and examples use both."""
        value = self.value.get(key)
        if value is None:
            return None
        seconds = _bounded_int(value, low=_EARLIEST_SECONDS, high=_LATEST_SECONDS)
        if seconds is not None:
            return datetime.fromtimestamp(seconds, tz=UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None:
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        self.ignored.append(self.prefix + key)
        return None

    def object(self, key: str) -> _Lenient:
        value = self.value.get(key)
        if value is not None and not isinstance(value, dict):
            self.ignored.append(self.prefix + key)
        return _Lenient(value if isinstance(value, dict) else {}, prefix=f"{self.prefix}{key}.", ignored=self.ignored)

    def objects(self, key: str) -> list[_Lenient]:
        value = self.value.get(key)
        if value is not None and not isinstance(value, list):
            self.ignored.append(self.prefix + key)
        items = []
        for index, item in enumerate(_list(value)):
            if isinstance(item, dict):
                items.append(_Lenient(item, prefix=f"{self.prefix}{key}[{index}].", ignored=self.ignored))
            else:
                self.ignored.append(f"{self.prefix}{key}[{index}]")
        return items


def _template_ref(value: _Lenient) -> TemplateRef:
    return TemplateRef(
        meta_template_id=value.text("message_template_id"),
        name=value.text("message_template_name", width=_TEMPLATE_NAME_WIDTH),
        language=value.text("message_template_language", width=_TEMPLATE_LANGUAGE_WIDTH),
    )


def _quality_update(value: _Lenient) -> QualityUpdate:
    return QualityUpdate(
        event=value.text("event"),
        current_limit=value.text("current_limit"),
        old_limit=value.text("old_limit"),
        portfolio_limit=portfolio_limit(value.text("max_daily_conversations_per_business")),
    )


def _name_update(value: _Lenient) -> NameUpdate:
    return NameUpdate(
        decision=value.text("decision"),
        requested_name=value.text("requested_verified_name", width=_NAME_WIDTH),
        rejection_reason=value.text("rejection_reason"),
    )


def _account_update(value: _Lenient) -> AccountUpdate:
    ban = value.object("ban_info")
    return AccountUpdate(
        event=value.text("event"),
        restrictions=tuple(
            Restriction(type=item.text("restriction_type"), expires_at=item.time("expiration"))
            for item in value.objects("restriction_info")
        ),
        violation_type=value.object("violation_info").text("violation_type"),
        ban_state=ban.text("waba_ban_state"),
        ban_date=ban.text("waba_ban_date"),
    )


def _account_alert(value: _Lenient) -> AccountAlert:
    info = value.object("alert_info")
    return AccountAlert(
        entity_type=value.text("entity_type"),
        entity_id=value.text("entity_id"),
        severity=info.text("alert_severity"),
        status=info.text("alert_status"),
        type=info.text("alert_type"),
        description=info.text("alert_description", width=_FREE_TEXT_WIDTH),
    )


def _review_update(value: _Lenient) -> ReviewUpdate:
    return ReviewUpdate(decision=value.text("decision"))


def _capability_update(value: _Lenient) -> CapabilityUpdate:
    # The v24+ key first; the legacy singular one carries the same portfolio limit since 2025-10.
    limit = value.text("max_daily_conversations_per_business") or value.text("max_daily_conversation_per_phone")
    numbers = value.integer("max_phone_numbers_per_waba")
    return CapabilityUpdate(
        portfolio_limit=portfolio_limit(limit),
        max_phone_numbers=numbers if numbers is not None else value.integer("max_phone_numbers_per_business"),
    )


def _template_status_update(value: _Lenient) -> TemplateStatusUpdate:
    rejection, other = value.object("rejection_info"), value.object("other_info")
    detail = " ".join(
        part
        for part in (
            rejection.text("reason", width=_FREE_TEXT_WIDTH),
            rejection.text("recommendation", width=_FREE_TEXT_WIDTH),
            other.text("title"),
            other.text("description", width=_FREE_TEXT_WIDTH),
        )
        if part
    )
    value.object("disable_info").time("disable_date")  # only checked: the event says it is disabled
    return TemplateStatusUpdate(
        template=_template_ref(value),
        event=value.text("event"),
        reason=value.text("reason"),
        category=value.text("message_template_category"),
        detail=detail[:_FREE_TEXT_WIDTH],
    )


def _template_quality_update(value: _Lenient) -> TemplateQualityUpdate:
    return TemplateQualityUpdate(
        template=_template_ref(value),
        previous_score=value.text("previous_quality_score"),
        new_score=value.text("new_quality_score"),
    )


def _template_category_update(value: _Lenient) -> TemplateCategoryUpdate:
    return TemplateCategoryUpdate(
        template=_template_ref(value),
        new_category=value.text("new_category"),
        previous_category=value.text("previous_category"),
        correct_category=value.text("correct_category"),
        switches_at=value.time("category_update_timestamp"),
    )


def _security_update(value: _Lenient) -> SecurityUpdate:
    return SecurityUpdate(event=value.text("event"), requester=value.text("requester"))


_ACCOUNT_READERS = {
    PHONE_NUMBER_QUALITY_UPDATE: _quality_update,
    PHONE_NUMBER_NAME_UPDATE: _name_update,
    ACCOUNT_UPDATE: _account_update,
    ACCOUNT_ALERTS: _account_alert,
    ACCOUNT_REVIEW_UPDATE: _review_update,
    BUSINESS_CAPABILITY_UPDATE: _capability_update,
    MESSAGE_TEMPLATE_STATUS_UPDATE: _template_status_update,
    MESSAGE_TEMPLATE_QUALITY_UPDATE: _template_quality_update,
    TEMPLATE_CATEGORY_UPDATE: _template_category_update,
    SECURITY: _security_update,
}


def _dedupe_key(*parts: Any) -> str:
    """The same change delivered again (Meta retries for days; a replay) has the same key: Meta sends no
    event id, so it is the field, the account, the time and the value, canonically serialised."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def parse_account_changes(payload: dict[str, Any]) -> tuple[list[AccountChangeItem], list[tuple[str, str]]]:
    """The account-level changes of a delivery (``ACCOUNT_FIELDS``), and those that cannot be read at all
    as (path, reason). Routed by ``entry[].id`` (the WABA id), never by ``metadata``, which most lack."""
    items: list[AccountChangeItem] = []
    broken: list[tuple[str, str]] = []
    for entry_index, entry in enumerate(_list(payload.get("entry"))):
        if not isinstance(entry, dict):
            continue  # already reported by parse_delivery
        waba_id = _text(entry.get("id"))
        raw_time = entry.get("time")
        entry_time = _Lenient(entry).time("time")
        for change_index, change in enumerate(_list(entry.get("changes"))):
            if not isinstance(change, dict) or change.get("field") not in ACCOUNT_FIELDS:
                continue
            path = f"entry[{entry_index}].changes[{change_index}]"
            value = change.get("value")
            if not isinstance(value, dict):
                continue  # already reported by parse_delivery
            field_name = change["field"]
            if not waba_id:
                broken.append((path, "entry has no account id"))
                continue
            if field_name == USER_PREFERENCES:
                items.extend(_preferences(path, waba_id, raw_time, entry_time, value))
                continue
            reader = _Lenient(value)
            update = _ACCOUNT_READERS[field_name](reader)
            items.append(
                AccountChangeItem(
                    path=path,
                    field=field_name,
                    waba_id=waba_id,
                    display_phone_number=digits_of(reader.text("display_phone_number")),
                    phone_number_id="",
                    occurred_at=entry_time,
                    update=update,
                    raw=value,
                    dedupe_key=_dedupe_key(field_name, waba_id, raw_time, value),
                    ignored=tuple(reader.ignored),
                )
            )
    return items, broken


def _preferences(
    path: str, waba_id: str, raw_time: Any, entry_time: datetime | None, value: dict[str, Any]
) -> list[AccountChangeItem]:
    """``user_preferences`` looks like a ``messages`` value: metadata names the number, one item per customer."""
    reader = _Lenient(value)
    metadata = reader.object("metadata")
    phone_number_id, display = metadata.text("phone_number_id"), digits_of(metadata.text("display_phone_number"))
    names = {}
    for contact in reader.objects("contacts"):
        name = contact.object("profile").text("name", width=_PROFILE_NAME_WIDTH)
        for key in ("wa_id", "user_id"):
            if contact.text(key):
                names[contact.text(key)] = name
    items = []
    for index, item in enumerate(reader.objects("user_preferences")):
        wa_id, user_id = _digits_or_none(item.value.get("wa_id")), _str_or_none(item.value.get("user_id"))
        timestamp = item.time("timestamp") or entry_time
        items.append(
            AccountChangeItem(
                path=f"{path}.user_preferences[{index}]",
                field=USER_PREFERENCES,
                waba_id=waba_id,
                display_phone_number=display,
                phone_number_id=phone_number_id,
                occurred_at=timestamp,
                update=MarketingPreference(
                    wa_id=wa_id,
                    user_id=user_id,
                    profile_name=names.get(user_id or "") or names.get(wa_id or "") or "",
                    category=item.text("category"),
                    value=item.text("value"),
                    timestamp=timestamp,
                ),
                raw={"metadata": metadata.value, "user_preference": item.value},
                dedupe_key=_dedupe_key(USER_PREFERENCES, waba_id, raw_time, phone_number_id, item.value),
                ignored=tuple(reader.ignored),
            )
        )
    return items


# --- Coexistence: the WhatsApp Business app and the API on one number (docs/meta.md §3.7) -----------------
# Rare next to messages: edits and revokes are branched on in parse_message by their type, echoes are read
# only for the deliveries that carry them (webhooks/drain.py's own branch).

SMB_MESSAGE_ECHOES = "smb_message_echoes"
# The phone app's past chats and its contacts, sent once after onboarding (the contacts on every change too).
HISTORY = "history"
SMB_APP_STATE_SYNC = "smb_app_state_sync"
# The Coexistence fields the drain applies besides messages (each read only for the deliveries carrying it).
PHONE_APP_FIELDS = frozenset((SMB_MESSAGE_ECHOES, HISTORY, SMB_APP_STATE_SYNC))
_AMENDING_TYPES = frozenset(("edit", "revoke"))


def _edited_message(content: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An edit's new message: its type and that type's object (``edit.message``)."""
    inner = content.get("message") if isinstance(content.get("message"), dict) else {}
    inner_type = _text(inner.get("type"))
    inner_content = inner.get(inner_type) if isinstance(inner.get(inner_type), dict) else {}
    return inner_type, inner_content


def _edited(content: dict[str, Any]) -> tuple[str, str]:
    inner_type, inner_content = _edited_message(content)
    body, preview = _body_and_preview(inner_type, inner_content, ()) if inner_type != "edit" else ("", "")
    return body, f"✏️ {preview}" if preview else "✏️ Edited a message"


def _amendment(message_type: str, content: dict[str, Any], body: str) -> Amendment | None:
    """What an edit or revoke changes; ``None`` when it names no message (it is then kept as its own)."""
    target = content.get("original_message_id")
    if not isinstance(target, str) or not target or len(target) > _REPLY_TO_WIDTH:
        return None
    if message_type == "revoke":
        return Amendment(kind="revoke", target_wamid=target)
    inner_type, inner_content = _edited_message(content)
    if inner_type == "edit":
        return None
    _body, preview = _body_and_preview(inner_type, inner_content, ())
    return Amendment(kind="edit", target_wamid=target, body=body, preview=preview)


@dataclass(frozen=True)
class EchoItem:
    """One ``message_echoes[]`` item of a ``smb_message_echoes`` change: what the business sent from the phone
    app. ``message.sender`` is the customer it went to (``to``/``to_user_id``), the other party of the
    conversation as for a customer's message."""

    path: str
    change: Change
    message: InboundMessage


def _changes_of_field(payload: dict[str, Any], field_name: str):
    """Each readable change of ``field_name`` in a delivery: (path, change, its raw value). Routed as messages
    are (``metadata.phone_number_id``); a change that cannot be read was already reported by parse_delivery."""
    for entry_index, entry in enumerate(_list(payload.get("entry"))):
        if not isinstance(entry, dict):
            continue
        for change_index, raw_change in enumerate(_list(entry.get("changes"))):
            if not isinstance(raw_change, dict) or raw_change.get("field") != field_name:
                continue
            path = f"entry[{entry_index}].changes[{change_index}]"
            try:
                change = _parse_change(path, _text(entry.get("id")), raw_change)
            except PayloadError:
                continue
            yield path, change, raw_change["value"]


def parse_echoes(payload: dict[str, Any]) -> tuple[list[EchoItem], list[tuple[str, str]]]:
    """The echoes of a delivery and those that cannot be read as (path, reason)."""
    items: list[EchoItem] = []
    broken: list[tuple[str, str]] = []
    for path, change, value in _changes_of_field(payload, SMB_MESSAGE_ECHOES):
        for index, raw in enumerate(_list(value.get("message_echoes"))):
            try:
                items.append(EchoItem(f"{path}.message_echoes[{index}]", change, parse_echo(raw)))
            except PayloadError as exc:
                broken.append((f"{path}.message_echoes[{index}]", str(exc)))
    return items, broken


def parse_echo(raw: Any) -> InboundMessage:
    """An echo read as a message whose other party is its recipient."""
    if not isinstance(raw, dict):
        raise PayloadError("echo is not an object")
    return parse_message({**raw, "from": raw.get("to"), "from_user_id": raw.get("to_user_id")})


# The history's statuses as Meta writes them (upper-case), to ours; any other (PENDING, one not known yet)
# counts as sent: the business's message left the phone.
_HISTORY_STATUSES = {"SENT": "sent", "DELIVERED": "delivered", "READ": "read", "PLAYED": "played", "ERROR": "failed"}


def parse_history(payload: dict[str, Any]) -> tuple[list[tuple[Change, HistoryChunk]], list[tuple[str, str]]]:
    """The ``history`` chunks of a delivery (each with its change, for its number) and the messages in them that
    cannot be read as (path, reason)."""
    chunks: list[tuple[Change, HistoryChunk]] = []
    broken: list[tuple[str, str]] = []
    for path, change, value in _changes_of_field(payload, HISTORY):
        for index, raw_chunk in enumerate(_list(value.get("history"))):
            chunk_path = f"{path}.history[{index}]"
            if not isinstance(raw_chunk, dict):
                broken.append((chunk_path, "history item is not an object"))
                continue
            metadata = _object(raw_chunk.get("metadata"))
            threads = [
                thread
                for thread_index, raw_thread in enumerate(_list(raw_chunk.get("threads")))
                if (thread := _history_thread(raw_thread, path=f"{chunk_path}.threads[{thread_index}]", broken=broken))
            ]
            chunk = HistoryChunk(
                path=chunk_path,
                phase=_bounded_int(metadata.get("phase"), low=0, high=2),
                chunk_order=_bounded_int(metadata.get("chunk_order"), low=0, high=_MAX_QUANTITY),
                progress=_bounded_int(metadata.get("progress"), low=0, high=100),
                threads=tuple(threads),
                errors=tuple(_errors(raw_chunk.get("errors"))),
            )
            chunks.append((change, chunk))
    return chunks, broken


def _history_thread(
    raw: Any, *, path: str, broken: list[tuple[str, str]]
) -> tuple[str, tuple[HistoryMessage, ...]] | None:
    """One thread: its customer's phone and the messages that read (the others noted in ``broken``); ``None``
    (noted too) when it names no customer."""
    wa_id = _digits_or_none(raw.get("id")) if isinstance(raw, dict) else None
    if wa_id is None:
        broken.append((path, "thread has no customer phone number (id)"))
        return None
    messages = []
    for index, item in enumerate(_list(raw.get("messages"))):
        try:
            messages.append(_history_message(item, customer=wa_id))
        except PayloadError as exc:
            broken.append((f"{path}.messages[{index}]", str(exc)))
    return wa_id, tuple(messages)


def _history_message(raw: Any, *, customer: str) -> HistoryMessage:
    """A thread's message; the business's when it has a ``to`` (Meta: "only included if SMB message echo") or is
    not ``from`` the thread's customer."""
    if not isinstance(raw, dict):
        raise PayloadError("message is not an object")
    outbound = "to" in raw or _digits_or_none(raw.get("from")) != customer
    # Read as a message whose other party is the thread's customer, whichever way it went.
    message = parse_message({**raw, "from": customer, "from_user_id": None})
    status = _HISTORY_STATUSES.get(_text(_object(raw.get("history_context")).get("status")).upper(), "sent")
    return HistoryMessage(message=message, outbound=outbound, status=status)


def parse_address_book(payload: dict[str, Any]) -> tuple[list[tuple[Change, AddressBookChange]], list[tuple[str, str]]]:
    """The ``smb_app_state_sync`` contact changes of a delivery (each with its change, for its number) and those
    that cannot be read as (path, reason). Items of another ``type`` than ``contact`` are left alone."""
    items: list[tuple[Change, AddressBookChange]] = []
    broken: list[tuple[str, str]] = []
    for path, change, value in _changes_of_field(payload, SMB_APP_STATE_SYNC):
        for index, raw in enumerate(_list(value.get("state_sync"))):
            item_path = f"{path}.state_sync[{index}]"
            if not isinstance(raw, dict) or raw.get("type") != "contact":
                continue
            contact, metadata = _object(raw.get("contact")), _object(raw.get("metadata"))
            wa_id = _digits_or_none(contact.get("phone_number"))
            action = _text(raw.get("action"))
            if wa_id is None or action not in ("add", "remove"):
                broken.append((item_path, f"contact sync item without a phone_number or action {_shown(action)}"))
                continue
            try:
                timestamp = _timestamp(metadata.get("timestamp"))
            except PayloadError as exc:
                broken.append((item_path, str(exc)))
                continue
            items.append(
                (
                    change,
                    AddressBookChange(
                        path=item_path,
                        wa_id=wa_id,
                        full_name=_text(contact.get("full_name"))[:_NAME_WIDTH],
                        first_name=_text(contact.get("first_name"))[:_NAME_WIDTH],
                        removed=action == "remove",
                        timestamp=timestamp,
                    ),
                )
            )
    return items, broken

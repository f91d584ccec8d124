"""What the inbox receives from WhatsApp, as typed values: a customer's message and a status update of one
the business sent. ``webhooks/payloads.py`` builds them from Meta's JSON (docs/meta.md §3); the domain reads
these, never the JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class MetaError:
    code: int | None
    title: str
    message: str = ""
    details: str = ""


@dataclass(frozen=True)
class Identity:
    """The ids that name one WhatsApp user; either may be missing, never both."""

    wa_id: str | None
    user_id: str | None


@dataclass(frozen=True)
class ReactionChange:
    message_wamid: str
    emoji: str  # "" when the reaction was removed (Meta omits the key)


@dataclass(frozen=True)
class IdentityChange:
    """A ``system`` message saying the user's phone number or BSUID changed."""

    kind: str
    new_wa_id: str | None
    new_user_id: str | None


@dataclass(frozen=True)
class Amendment:
    """A Coexistence number's change to an earlier message (docs/meta.md §3.7): an ``edit`` (its new words) or
    a ``revoke`` (deleted for everyone)."""

    kind: str  # "edit" or "revoke"
    target_wamid: str
    body: str = ""  # the edited text or caption
    preview: str = ""


@dataclass(frozen=True)
class InboundMessage:
    wamid: str
    type: str
    timestamp: datetime
    sender: Identity
    body: str
    preview: str
    content: dict[str, Any]
    context: dict[str, Any]
    reply_to_wamid: str
    errors: tuple[MetaError, ...] = ()
    reaction: ReactionChange | None = None
    identity_change: IdentityChange | None = None
    amendment: Amendment | None = None


@dataclass(frozen=True)
class Pricing:
    """A status's ``pricing``: each value as Meta sent it (an unknown category is kept); a value of the wrong
    type is left out (``None`` / "")."""

    billable: bool | None
    model: str
    type: str
    category: str


@dataclass(frozen=True)
class StatusUpdate:
    wamid: str
    status: str
    timestamp: datetime
    recipient: Identity
    errors: tuple[MetaError, ...]
    raw: dict[str, Any]
    pricing: Pricing | None = None

    @property
    def first_error(self) -> MetaError | None:
        return self.errors[0] if self.errors else None


@dataclass(frozen=True)
class HistoryMessage:
    """A past message of a Coexistence number's chat (Meta's ``history``): the customer's, or the business's
    (``outbound``), with the status Meta last knew (``history_context.status``, lower-case)."""

    message: InboundMessage
    outbound: bool
    status: str


@dataclass(frozen=True)
class HistoryChunk:
    """One ``history[]`` item: a chunk of the phone app's past chats and where the import stands (Meta's
    ``phase`` 0..2, ``chunk_order``, overall ``progress`` 0..100), or the business's refusal (``errors``).
    ``threads`` maps each customer's phone (wa_id) to their messages."""

    path: str
    phase: int | None
    chunk_order: int | None
    progress: int | None
    threads: tuple[tuple[str, tuple[HistoryMessage, ...]], ...]
    errors: tuple[MetaError, ...] = ()


@dataclass(frozen=True)
class AddressBookChange:
    """One ``state_sync[]`` item of ``smb_app_state_sync``: a customer added to (or edited in) the phone app's
    contacts, or removed from them."""

    path: str
    wa_id: str
    full_name: str
    first_name: str
    removed: bool
    timestamp: datetime

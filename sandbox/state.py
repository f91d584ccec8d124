"""The sandbox's settings and what it remembers, all in memory and guarded by the server's lock.

``SandboxConfig`` holds what the command line sets and ``POST /_sandbox/config`` changes; ``SandboxState``
holds what Meta would know (issued media, customer-service windows, throughput counters) plus the logs
the control API shows. Neither is thread-safe on its own: ``MetaSandbox`` holds its lock around every use.
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.simulation import DEMO_DISPLAY_PHONE_NUMBER, DEMO_PHONE_NUMBER_ID, DEMO_WABA_ID

from .account import AccountFields
from .errors import TITLES
from .media import MediaItem
from .templates import check_templates, default_templates

WINDOW_SECONDS = 24 * 60 * 60  # the customer service window (docs/meta.md §8)
LOG_LIMIT = 10000
STATUSES = ("sent", "delivered", "read", "played")


@dataclass
class SandboxConfig:
    app_secret: str
    access_token: str
    webhook_url: str = ""
    waba_id: str = DEMO_WABA_ID
    # phone_number_id -> display_phone_number; unknown numeric ids are registered on first use.
    numbers: dict[str, str] = field(default_factory=lambda: {DEMO_PHONE_NUMBER_ID: DEMO_DISPLAY_PHONE_NUMBER})
    status_delay: float = 0.5
    statuses: list[str] = field(default_factory=lambda: ["sent", "delivered", "read"])
    duplicate_statuses: bool = False
    shuffle_statuses: bool = False
    rate_limit_mps: int = 80  # Meta's default throughput per number (docs/meta.md §5)
    pair_limit: int = 0  # messages per pair_window to one customer; 0 = off (Meta: about 1 per 6 s, bursts to 45)
    pair_window: float = 6.0
    expire_token: bool = False
    # Treat every customer's 24-hour window as open (for demos whose conversations did not come through
    # the sandbox, e.g. seed_demo); by default only customers who wrote through the sandbox have a window.
    assume_window_open: bool = False
    sniff_media: bool = True
    media_url_ttl: float = 300.0  # Meta's media URLs live 5 minutes (docs/meta.md §7)
    webhook_retry_delays: list[float] = field(default_factory=lambda: [1.0, 4.0, 15.0, 60.0])
    webhook_timeout: float = 5.0
    templates: list[dict[str, Any]] = field(default_factory=default_templates)

    def public(self) -> dict[str, Any]:
        view = asdict(self)
        view.pop("app_secret")
        view.pop("access_token")
        return view


def _number(value: Any, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ValueError(f"must be a number >= {minimum:g}")
    return float(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be a non-negative integer")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("must be true or false")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("must be a string")
    return value


def _statuses(value: Any) -> list[str]:
    if not isinstance(value, list) or any(item not in STATUSES for item in value):
        raise ValueError(f"must be a list drawn from {list(STATUSES)}")
    return list(value)


def _delays(value: Any) -> list[float]:
    if not isinstance(value, list):
        raise TypeError("must be a list of seconds")
    return [_number(item) for item in value]


def _numbers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(str(k).isdigit() and str(v).isdigit() for k, v in value.items()):
        raise ValueError("must map phone_number_id digits to display_phone_number digits")
    return {str(k): str(v) for k, v in value.items()}


# Keys ``POST /_sandbox/config`` may set, with their checks.
CONFIG_SETTERS = {
    "app_secret": _string,
    "access_token": _string,
    "webhook_url": _string,
    "waba_id": _string,
    "numbers": _numbers,
    "status_delay": _number,
    "statuses": _statuses,
    "duplicate_statuses": _boolean,
    "shuffle_statuses": _boolean,
    "rate_limit_mps": _integer,
    "pair_limit": _integer,
    "pair_window": lambda v: _number(v, minimum=0.001),
    "expire_token": _boolean,
    "assume_window_open": _boolean,
    "sniff_media": _boolean,
    "media_url_ttl": _number,
    "webhook_retry_delays": _delays,
    "webhook_timeout": lambda v: _number(v, minimum=0.001),
    "templates": check_templates,
}


@dataclass
class FailNext:
    """``fail_next``: the next ``count`` valid sends fail with this error, synchronously (an error response)
    or asynchronously (accepted, then a ``failed`` status webhook)."""

    code: int
    title: str
    details: str
    mode: str
    count: int

    @classmethod
    def parse(cls, value: Any) -> FailNext | None:
        if value in (None, False, 0):
            return None
        if not isinstance(value, dict) or isinstance(value.get("code"), bool) or not isinstance(value.get("code"), int):
            raise TypeError('must be {"code": int, "title"?, "details"?, "mode"?: "sync"|"async", "count"?}')
        mode = value.get("mode", "sync")
        if mode not in ("sync", "async"):
            raise ValueError('mode must be "sync" or "async"')
        return cls(
            code=value["code"],
            title=str(value.get("title") or TITLES.get(value["code"], "Error")),
            details=str(value.get("details") or ""),
            mode=mode,
            count=_integer(value.get("count", 1)),
        )


@dataclass
class ServerErrorNext:
    """``server_error_next``: the next ``count`` valid sends answer a transient server error."""

    count: int
    code: int = 131000
    http_status: int = 500

    @classmethod
    def parse(cls, value: Any) -> ServerErrorNext | None:
        if value in (None, False, 0):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(count=_integer(value))
        if isinstance(value, dict):
            code = value.get("code", 131000)
            if code not in (1, 2, 131000, 131016):
                raise ValueError("code must be one of 1, 2, 131000, 131016")
            return cls(
                count=_integer(value.get("count", 1)),
                code=code,
                http_status=int(value.get("http_status") or (503 if code == 2 else 500)),
            )
        raise ValueError('must be a count or {"count", "code"?, "http_status"?}')


@dataclass
class AnswerLostNext:
    """``answer_lost_next``: the next ``count`` valid sends are accepted (the message goes out and its status
    webhooks follow) but their answer is lost: the connection is closed without one (``drop``, a client sees
    the connection reset) or the answer waits ``seconds`` first (``delay``, longer than a client's read
    timeout). What a client cannot tell from a send Meta never got."""

    mode: str
    count: int
    seconds: float

    @classmethod
    def parse(cls, value: Any) -> AnswerLostNext | None:
        if value in (None, False, 0):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(mode="drop", count=_integer(value), seconds=0.0)
        if not isinstance(value, dict):
            raise TypeError('must be a count or {"mode"?: "drop"|"delay", "count"?, "seconds"?}')
        mode = value.get("mode", "drop")
        if mode not in ("drop", "delay"):
            raise ValueError('mode must be "drop" or "delay"')
        return cls(mode=mode, count=_integer(value.get("count", 1)), seconds=_number(value.get("seconds", 30.0)))


@dataclass
class ExpiredUrlsNext:
    """``media_url_expired_next``: the next ``count`` media URLs ``GET /{media-id}`` hands out have already
    expired (their download answers 404), as one does when it is used past its 5 minutes."""

    count: int

    @classmethod
    def parse(cls, value: Any) -> ExpiredUrlsNext | None:
        if value in (None, False, 0):
            return None
        return cls(count=_integer(value))


@dataclass
class SandboxState:
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    messages: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    reads: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    inbound: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    media: dict[str, MediaItem] = field(default_factory=dict)
    # download token -> (media id, monotonic expiry)
    downloads: dict[str, tuple[str, float]] = field(default_factory=dict)
    # (phone_number_id, wa_id or BSUID) -> unix time of the customer's last message
    windows: dict[tuple[str, str], float] = field(default_factory=dict)
    # Resumable Upload: session id -> (declared length, MIME type); handle -> the sample's size in bytes
    upload_sessions: dict[str, tuple[int, str]] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    # monotonic send times, per number (throughput) and per (number, customer) (pair limit)
    sends_by_number: defaultdict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    sends_by_pair: defaultdict[tuple[str, str], deque[float]] = field(default_factory=lambda: defaultdict(deque))
    fail_next: FailNext | None = None
    server_error_next: ServerErrorNext | None = None
    answer_lost_next: AnswerLostNext | None = None
    media_url_expired_next: ExpiredUrlsNext | None = None
    # template id -> Unix times of its edits while approved (Meta: one a day, ten in 30 days)
    template_edits: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    request_seq: int = 0
    # Numbers' quality, limits and name review, the portfolio's limit (sandbox/account.py).
    account: AccountFields = field(default_factory=AccountFields)

    def window_open(self, phone_number_id: str, customer: str, *, now: float | None = None) -> bool:
        last = self.windows.get((phone_number_id, customer))
        return last is not None and (now or time.time()) - last < WINDOW_SECONDS


def fresh_config(config: SandboxConfig) -> SandboxConfig:
    return copy.deepcopy(config)

"""Simulated customers: the sandbox writing in as N WhatsApp users, so a running inbox has traffic.

Every ``interval`` seconds one customer (picked at random) sends a text, or now and then a photo, to one
of the business numbers the sandbox knows, through the same path as ``POST /_sandbox/inbound``: the
message is stored, signed, delivered as a webhook, and opens that customer's 24-hour window.
"""

from __future__ import annotations

import logging
import random
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.simulation import CUSTOMER_TEXTS, simulated_customers

logger = logging.getLogger("sandbox")

CAPTIONS = ("This is the parcel", "The label says this", "Look at the box", "")
IMAGE_EVERY = 6  # about one message in six is a photo


@dataclass(frozen=True)
class Customer:
    wa_id: str
    name: str


def make_customers(count: int, *, rng: random.Random) -> list[Customer]:
    return [Customer(wa_id=wa_id, name=name) for wa_id, name in simulated_customers(count, rng=rng)]


def png_bytes(*, width: int = 48, height: int = 48, rng: random.Random) -> bytes:
    """A small, valid RGB PNG (a two-colour stripe pattern), so image previews render."""
    first = bytes(rng.randrange(256) for _ in range(3))
    second = bytes(rng.randrange(256) for _ in range(3))
    rows = b"".join(
        b"\x00" + b"".join(first if (x // 8 + y // 8) % 2 else second for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


class CustomerSimulator:
    """Calls ``send(**inbound_request)`` every ``interval`` seconds until stopped."""

    def __init__(
        self,
        *,
        count: int,
        interval: float,
        numbers: Callable[[], dict[str, str]],
        send: Callable[..., Any],
        seed: int | None = None,
    ):
        self._rng = random.Random(seed)
        self.customers = make_customers(count, rng=self._rng)
        self._interval = interval
        self._numbers = numbers
        self._send = send
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-customers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def next_request(self) -> dict[str, Any]:
        numbers = self._numbers()
        phone_number_id = self._rng.choice(sorted(numbers))
        customer = self._rng.choice(self.customers)
        request: dict[str, Any] = {
            "phone_number_id": phone_number_id,
            "display_phone_number": numbers[phone_number_id],
            "wa_id": customer.wa_id,
            "name": customer.name,
        }
        if self._rng.randrange(IMAGE_EVERY) == 0:
            request["media"] = {
                "type": "image",
                "mime_type": "image/png",
                "data": png_bytes(rng=self._rng),
                "caption": self._rng.choice(CAPTIONS),
            }
        else:
            request["text"] = self._rng.choice(CUSTOMER_TEXTS)
        return request

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._send(**self.next_request())
            except Exception:
                logger.exception("simulated customer message failed")

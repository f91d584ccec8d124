"""How many inbox sockets are open right now, across every Daphne process (for /metrics).

A counter in the shared cache (Redis when REDIS_URL is set): incremented when a socket is accepted,
decremented when it closes. A Daphne process that is killed cannot decrement, so after a crash the gauge
runs high until the counter's key expires a day after its last change.
"""

import contextlib

from django.core.cache import cache

OPEN_SOCKETS_KEY = "realtime:open-sockets"
KEY_LIFETIME = 24 * 3600


async def socket_opened() -> None:
    await cache.aadd(OPEN_SOCKETS_KEY, 0, KEY_LIFETIME)
    await cache.aincr(OPEN_SOCKETS_KEY)
    await cache.atouch(OPEN_SOCKETS_KEY, KEY_LIFETIME)


async def socket_closed() -> None:
    with contextlib.suppress(ValueError):  # the key expired meanwhile
        await cache.adecr(OPEN_SOCKETS_KEY)


def open_sockets() -> int:
    return max(int(cache.get(OPEN_SOCKETS_KEY) or 0), 0)

"""The real Redis channel layer, as Daphne's consumers use it."""

import asyncio
import os

import pytest
from channels_redis.core import RedisChannelLayer

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


async def test_an_idle_receive_outlives_the_blocking_pop_timeout():
    """An inbox open with nothing happening must not error out: redis-py 8 timed out channels-redis's
    5-second blocking pop, which closed every idle WebSocket after 5 seconds."""
    layer = RedisChannelLayer(hosts=[REDIS_URL])
    channel = await layer.new_channel()
    with pytest.raises(asyncio.TimeoutError):  # ours, not Redis's: nothing arrived in 7 s, and nothing broke
        await asyncio.wait_for(layer.receive(channel), timeout=7)
    await layer.send(channel, {"type": "inbox.event", "event": {"id": 1}})
    assert (await asyncio.wait_for(layer.receive(channel), timeout=2))["event"] == {"id": 1}
    await layer.flush()

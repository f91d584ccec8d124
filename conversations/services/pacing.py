"""Sends paced to a number's throughput. Meta takes at most so many messages a second from one number: 80 by
default, 1,000 once it moved to high throughput, 20 on a Coexistence number (the phone app shares it), and
answers 130429 past it (docs/meta.md §5). Each send takes a slot of the current second from a counter every
worker shares (the cache: Redis when ``REDIS_URL`` is set); in a full second the send waits for the next one,
and after ``MAX_WAIT_SECONDS`` its task retries later (one of its retries: only more workers sending for one
number at once than it takes in those seconds, 60 on a Coexistence number, ever get there). A cache that does not
answer paces nothing: Meta's own limit, and the retry of 130429, still hold."""

import logging
import time

from django.core.cache import cache

from conversations.models import BusinessNumber
from conversations.services.errors import RetryLater

logger = logging.getLogger(__name__)

DEFAULT_SENDS_PER_SECOND = 80
HIGH_THROUGHPUT_SENDS_PER_SECOND = 1000
COEXISTENCE_SENDS_PER_SECOND = 20
MAX_WAIT_SECONDS = 3.0


def sends_per_second(number: BusinessNumber) -> int:
    if number.on_business_app:
        return COEXISTENCE_SENDS_PER_SECOND
    if number.throughput_level.upper() == "HIGH":
        return HIGH_THROUGHPUT_SENDS_PER_SECOND
    return DEFAULT_SENDS_PER_SECOND


def take_send_slot(*, number: BusinessNumber, clock=time.time, sleep=time.sleep) -> None:
    """Return once this send has a slot in a second of the number's; ``RetryLater`` after waiting too long."""
    limit = sends_per_second(number)
    deadline = clock() + MAX_WAIT_SECONDS
    while True:
        now = clock()
        second = int(now)
        key = f"send-slots:{number.pk}:{second}"
        try:
            cache.add(key, 0, timeout=5)
            taken = cache.incr(key)
        except ValueError:  # the key expired between the two calls: a second long gone, take it
            return
        except Exception:
            logger.warning("send pacing skipped: the cache did not answer", exc_info=True)
            return
        if taken <= limit:
            return
        if now >= deadline:
            raise RetryLater(f"number {number.pk} is sending its {limit} messages a second")
        sleep(second + 1 - now)

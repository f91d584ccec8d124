"""The API's rate limits, kept in Django's cache (Redis in the real topology), letting requests through while
the cache cannot be reached: with Redis down a reply is still queued (its row is the outbox, the outbound sweep
sends it later), so a limit we cannot count must not answer 500 for every request."""

import logging

from redis.exceptions import RedisError
from rest_framework import throttling

logger = logging.getLogger(__name__)


class _CountedWhenTheCacheAnswers:
    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError):
            logger.warning("rate limit not counted: the cache is unreachable", exc_info=True)
            return True


class AnonRateThrottle(_CountedWhenTheCacheAnswers, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_CountedWhenTheCacheAnswers, throttling.UserRateThrottle):
    pass

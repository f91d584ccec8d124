"""The app's own way to Redis (drain flags, probes, reports): a client for the configured Redis, at ``REDIS_URL``
or the master ``REDIS_SENTINEL_MASTER`` that the sentinels ``REDIS_SENTINELS`` elect (config/settings/base.py).

A Sentinel client asks the sentinels for the master's address on each new connection and drops its connections
when the address changes: after a failover it talks to the new master by itself. The Celery broker (kombu's
sentinel transport) and the channel layer (channels-redis) follow the master the same way, the cache through
``SentinelCachePool``. This module imports nothing of the apps, so every layer may use it.

A master name no sentinel knows (a misspelt ``REDIS_SENTINEL_MASTER``) shows only when a connection is made:
``NoRedisMaster`` then says so, naming the setting, in the log and in ``/readyz``.
"""

import redis
from django.conf import settings
from redis.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool


def redis_configured() -> bool:
    """Whether there is a Redis (else the app runs embedded: Celery in-process, no broker, no flags in Redis)."""
    return bool(settings.REDIS_URL or settings.REDIS_SENTINELS)


def redis_client(*, timeout: float) -> redis.Redis:
    """A client of the configured Redis (with Sentinel, of its master) that gives up after ``timeout`` seconds to
    connect or to answer; only when ``redis_configured()``. Each call makes a client with a pool of its own: a hot
    path keeps the one it made."""
    timeouts = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    if not settings.REDIS_SENTINELS:
        return redis.Redis.from_url(settings.REDIS_URL, **timeouts)
    sentinels = ExplainingSentinel(
        settings.REDIS_SENTINELS, sentinel_kwargs={**settings.REDIS_SENTINEL_OPTIONS, **timeouts}
    )
    password = {"password": settings.REDIS_PASSWORD} if settings.REDIS_PASSWORD else {}
    return sentinels.master_for(settings.REDIS_SENTINEL_MASTER, **timeouts, **password)


class NoRedisMaster(MasterNotFoundError):
    """The sentinels gave no master: ``summary`` says why and which setting to check, without addresses or
    names (safe for ``/readyz``'s answer); the message adds them (for the log)."""

    def __init__(self, message: str, summary: str = ""):
        super().__init__(message)
        self.summary = summary or message


class ExplainingSentinel(Sentinel):
    """redis-py's Sentinel, raising ``NoRedisMaster`` where it raises a bare "No master found"."""

    def discover_master(self, service_name):
        try:
            return super().discover_master(service_name)
        except MasterNotFoundError as error:
            raise self.why_no_master(service_name, error) from error

    def why_no_master(self, service_name: str, error: MasterNotFoundError) -> NoRedisMaster:
        answered = knowing = refused = 0
        for sentinel in self.sentinels:
            try:
                masters = sentinel.sentinel_masters()
            except redis.AuthenticationError:
                refused += 1
                continue
            except redis.RedisError:
                continue
            answered += 1
            knowing += service_name in masters
        where = ", ".join(f"{host}:{port}" for host, port in settings.REDIS_SENTINELS)
        if refused and not answered:
            summary = "the sentinels of REDIS_SENTINELS refused the password: check REDIS_SENTINEL_PASSWORD"
            return NoRedisMaster(f"{summary} ({where})", summary)
        if not answered:
            summary = "no sentinel of REDIS_SENTINELS answered"
            return NoRedisMaster(f"{summary} ({where}): {error}", summary)
        if not knowing:
            summary = "no sentinel knows a master of the name REDIS_SENTINEL_MASTER gives"
            return NoRedisMaster(
                f"no sentinel of REDIS_SENTINELS ({where}) knows a master named {service_name!r}: check "
                "REDIS_SENTINEL_MASTER (the name in the sentinels' `sentinel monitor` line)",
                summary,
            )
        summary = "the sentinels see the Redis master down (a failover elects a replica within seconds)"
        return NoRedisMaster(f"{summary}: master {service_name!r}, sentinels {where}", summary)


class SentinelCachePool(SentinelConnectionPool):
    """The pool of Django's Redis cache with Sentinel (``CACHES`` ``pool_class`` in base.py). Django calls
    ``from_url(LOCATION, **OPTIONS)``: the options say which sentinels and master; LOCATION only names it."""

    @classmethod
    def from_url(cls, url, *, sentinels, master_name, sentinel_kwargs, **connection_options):
        return cls(master_name, ExplainingSentinel(sentinels, sentinel_kwargs=sentinel_kwargs), **connection_options)

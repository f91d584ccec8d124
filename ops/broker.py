"""kombu's Redis transports, at ``REDIS_URL`` and through Sentinel, with one fix: a worker outlives its broker
dying under it (``CELERY_BROKER_TRANSPORT`` in config/settings/base.py picks them).

With kombu 5.7.0 and Celery 5.7.0, a broker connection lost while the worker holds unacknowledged messages (a
Redis SIGKILLed, a Sentinel failover) ended the worker: "Unrecoverable error: AttributeError: 'NoneType' object
has no attribute 'hostname'". Celery first collects the connection: closing the channel reads the BRPOP still in
flight, which raises on the dead socket, and leaves the channel half closed; the transport is closed anyway. Its
second close then restores the unacknowledged messages through the closed transport, and crashes. Here the
pending read's connection error is let go, so the first close completes (the restore it tries fails on the dead
broker, as a connection error Celery expects) and the worker reconnects. What those messages were for is a row
in PostgreSQL that the sweeps enqueue again (README, Architecture).
"""

from contextlib import suppress
from queue import Empty

from kombu.transport import redis


class _ClosesOnADeadBroker:
    def close(self):
        if self._in_poll and not self.closed:
            with suppress(Empty, *self.connection_errors):
                self._brpop_read()
        super().close()


class Channel(_ClosesOnADeadBroker, redis.Channel):
    pass


class Transport(redis.Transport):
    Channel = Channel


class SentinelChannel(_ClosesOnADeadBroker, redis.SentinelChannel):
    pass


class SentinelTransport(redis.SentinelTransport):
    Channel = SentinelChannel

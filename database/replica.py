"""The read replica (``DATABASE_REPLICA_URL``): which database the heavy read-only work reads.

Searches (the API's ``q``), reports (``inbox_stats``) and the bench's search page call ``read_replica()`` and read
with ``.using()`` that alias; nothing else does, and no router sends reads anywhere by itself. The live inbox and
everything that must read its own writes use the primary (``default``), as every query does unless it says so.

``read_replica()`` answers ``"replica"`` while the replica answers and has replayed the primary's WAL to within
``DATABASE_REPLICA_MAX_LAG_SECONDS``; otherwise ``"default"``, with a WARNING saying why. The verdict is kept for
``DATABASE_REPLICA_CHECK_SECONDS`` in each process, so a burst of searches costs one lag query, and a replica that
is down or behind one warning per interval, not one per query. ``/readyz`` shows the verdict without failing on it
(the primary serves); a process that starts while the replica does not answer says so at once
(``warn_if_replica_unreachable``, from ``config.apps``).
"""

import logging
import threading
import time
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

REPLICA = "replica"

# Caught up when all the WAL received is replayed (an idle primary sends nothing, and the age of the last replayed
# transaction would grow for ever); otherwise as old as the newest transaction replayed. A server that is not in
# recovery (the primary itself, named by mistake) is never behind.
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
END
"""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplicaStatus:
    state: str  # "ok", "lagging" or "down"
    lag_seconds: float | None = None
    error: str = ""  # when down: the kind of failure, safe to show in /readyz
    detail: str = ""  # and the driver's text on one line (hosts, database names), for the log only

    @property
    def alias(self) -> str:
        return REPLICA if self.state == "ok" else DEFAULT_DB_ALIAS


# One check at a time in a process; the others keep the last verdict meanwhile (only the first is waited for).
_checking = threading.Lock()
_status: ReplicaStatus | None = None
_checked_at = float("-inf")


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def read_replica() -> str:
    """The alias for a heavy read: ``"replica"`` when it is up and caught up, else ``"default"``."""
    if not replica_configured():
        return DEFAULT_DB_ALIAS
    status = replica_status()
    if status.state == "ok":
        # A replica that stopped since the last check: found here, on the connection the read will use, rather
        # than by the read itself failing. Costs nothing on an open connection that passed this request's check.
        db = connections[REPLICA]
        try:
            db.close_if_health_check_failed()
            db.ensure_connection()
        except DatabaseError as error:
            status = _record(_down(error))
    return status.alias


def replica_status() -> ReplicaStatus | None:
    """The replica's state as last checked, checked again once older than the interval; ``None`` without one."""
    if not replica_configured():
        return None
    if _status is not None and not _stale():
        return _status
    if _checking.acquire(blocking=_status is None):
        try:
            if _status is None or _stale():
                _record(_check())
        finally:
            _checking.release()
    return _status


def _stale() -> bool:
    return time.monotonic() - _checked_at >= settings.DATABASE_REPLICA_CHECK_SECONDS


def _check() -> ReplicaStatus:
    db = connections[REPLICA]
    try:
        with db.cursor() as cursor:
            cursor.execute(LAG_SQL)
            (lag,) = cursor.fetchone()
    except DatabaseError as error:
        return _down(error)
    return _verdict(lag)


def _verdict(lag: float | None) -> ReplicaStatus:
    if lag is None:  # received more than it replayed, and never replayed a transaction: how far behind is unknown
        return ReplicaStatus("lagging")
    lag = max(0.0, float(lag))
    return ReplicaStatus("ok" if lag <= settings.DATABASE_REPLICA_MAX_LAG_SECONDS else "lagging", lag_seconds=lag)


def _down(error: Exception) -> ReplicaStatus:
    connections[REPLICA].close()  # the next check connects afresh
    return _failed(error)


def _failed(error: Exception) -> ReplicaStatus:
    return ReplicaStatus("down", error=type(error).__name__, detail=" ".join(str(error).split()))


def _record(status: ReplicaStatus) -> ReplicaStatus:
    global _status, _checked_at
    previous, _status, _checked_at = _status, status, time.monotonic()
    if status.state != "ok":
        # Once per check while it lasts: at most one line per DATABASE_REPLICA_CHECK_SECONDS in each process.
        logger.warning("%s; searches and reports read the primary", _describe(status))
    elif previous is not None and previous.state != "ok":
        logger.info(
            "read replica %s is back (lag %.1fs): searches and reports read it again", _where(), status.lag_seconds
        )
    return status


def _describe(status: ReplicaStatus) -> str:
    if status.state == "down":
        return f"read replica {_where()} (DATABASE_REPLICA_URL) does not answer: {status.error}: {status.detail}"
    behind = "an unknown time" if status.lag_seconds is None else f"{status.lag_seconds:.1f}s"
    return (
        f"read replica {_where()} (DATABASE_REPLICA_URL) is {behind} behind the primary"
        f" (DATABASE_REPLICA_MAX_LAG_SECONDS={settings.DATABASE_REPLICA_MAX_LAG_SECONDS:g})"
    )


def _where() -> str:
    db = settings.DATABASES[REPLICA]
    return f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db.get('NAME')}"


def warn_if_replica_unreachable() -> None:
    """At start-up: a configured replica that does not answer, or is behind, is logged at once, naming the setting.
    Only a warning: the primary serves every read meanwhile. A connection of its own with Django's parameters, not
    Django's cursor, which warns against queries while the app registry is being set up."""
    if not replica_configured():
        return
    db = connections[REPLICA]
    try:
        with db.get_new_connection(db.get_connection_params()) as conn:
            (lag,) = conn.execute(LAG_SQL).fetchone()
    except psycopg.Error as error:
        status = _failed(error)
    else:
        status = _verdict(lag)
    if status.state != "ok":
        logger.warning("at start: %s; searches and reports read the primary meanwhile", _describe(status))

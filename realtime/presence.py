"""Who has the inbox open: one ``SocketPresence`` row per open socket, refreshed by the socket itself.

The consumer inserts its row when a socket is accepted, refreshes ``seen_at`` every ``PRESENCE_REFRESH_SECONDS``
while it stays open and deletes the row when it closes. A Daphne that dies deletes nothing: its rows stop being
refreshed and count no more once older than ``PRESENCE_TTL_SECONDS``; the conversation sweep deletes them. A
row in the database (not a Redis key) so that auto-assignment reads who is online in the same query and
transaction that locks the members it counts."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from realtime.models import SocketPresence


def _fresh_since(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=settings.PRESENCE_TTL_SECONDS)


def record_socket_open(*, channel_name: str, user_id: int) -> None:
    SocketPresence.objects.update_or_create(
        channel_name=channel_name, defaults={"user_id": user_id, "seen_at": timezone.now()}
    )


def record_socket_seen(*, channel_name: str, user_id: int) -> None:
    """The socket is still open: its row is fresh again (made anew if a sweep took it meanwhile)."""
    if not SocketPresence.objects.filter(channel_name=channel_name).update(seen_at=timezone.now()):
        record_socket_open(channel_name=channel_name, user_id=user_id)


def record_socket_closed(*, channel_name: str) -> None:
    SocketPresence.objects.filter(channel_name=channel_name).delete()


def online_user_ids(*, user_ids, now: datetime | None = None) -> set[int]:
    """Those of ``user_ids`` with a socket seen within the TTL."""
    return set(
        SocketPresence.objects.filter(user_id__in=list(user_ids), seen_at__gte=_fresh_since(now))
        .values_list("user_id", flat=True)
        .distinct()
    )


def forget_stale_sockets(*, now: datetime | None = None) -> int:
    """Delete the rows of sockets no longer refreshed (their Daphne died); how many."""
    deleted, _ = SocketPresence.objects.filter(seen_at__lt=_fresh_since(now)).delete()
    return deleted

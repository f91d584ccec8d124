"""Reads for realtime clients: what a reconnecting client missed."""

from datetime import timedelta

from django.db.models import Q

from realtime.models import Event

RESUME_LIMIT = 500
# Event ids come from a sequence but transactions commit in any order: an event with a lower id can
# become visible after one with a higher id. Replaying a few seconds before the client's last event
# covers those; clients ignore events they already applied.
RESUME_SLACK = timedelta(seconds=5)


def latest_event_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def events_since(*, user_id: int, number_ids: list[int], after_id: int) -> list[Event] | None:
    """Events after ``after_id`` that this user may see, oldest first; ``None`` when the gap is too
    large (or too old to be in the log) and the client should reload its view instead."""
    anchor = Event.objects.filter(pk=after_id).values_list("created_at", flat=True).first()
    if anchor is None and after_id > 0 and not Event.objects.filter(pk__lt=after_id).exists():
        return None  # the log was purged past the client's position
    missed = Q(id__gt=after_id)
    if anchor is not None:
        missed |= Q(created_at__gte=anchor - RESUME_SLACK)
    events = list(
        Event.objects.filter(number_id__in=number_ids)
        .filter(Q(user__isnull=True) | Q(user_id=user_id))
        .filter(missed)
        .order_by("id")[: RESUME_LIMIT + 1]
    )
    if len(events) > RESUME_LIMIT:
        return None
    return events

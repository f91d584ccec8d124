"""Publishing realtime events: logged in the caller's transaction, pushed to the channel layer after commit.

Only services call ``publish_event``. The log row makes every event replayable for a client that
reconnects; the push is best-effort (a Redis hiccup loses the push, never the event).
"""
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from realtime.events import EVENT_TYPES, GROUP_MESSAGE_TYPE, Envelope
from realtime.groups import number_group, user_group
from realtime.models import Event

logger = logging.getLogger(__name__)


def publish_event(*, number_id: int, type: str, payload: dict, user_id: int | None = None) -> Event:
    """Log the event and push it after commit to everyone who may see the number (or to one user)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown realtime event type {type!r}")
    event = Event.objects.create(number_id=number_id, user_id=user_id, type=type, payload=payload)
    envelope: Envelope = {"id": event.pk, "type": type, "number_id": number_id, "payload": payload}
    group = user_group(user_id) if user_id is not None else number_group(number_id)
    transaction.on_commit(lambda: push_to_group(group=group, envelope=envelope))
    return event


def push_to_group(*, group: str, envelope: Envelope) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(group, {"type": GROUP_MESSAGE_TYPE, "event": envelope})
    except Exception:
        logger.exception("realtime push of event %s to %s failed; clients catch up from the log", envelope["id"], group)

"""``/ws/inbox/``: relays the events of the business numbers a staff member may see.

Client → server: ``{"action": "resume", "after": <event id>}`` (after connecting: replay what was
missed, from the event log) and ``{"action": "typing", "conversation_id": <id>}``.
Server → client: event envelopes ``{id, type, number_id, payload}`` (see realtime/events.py), the
ephemeral ``conversation.typing``, and ``reload`` when a client is too far behind or its user's access changed
(a membership, superuser status; a deactivated user's socket is closed with 4403).

The consumer renders nothing from the database per event: payload snapshots were built once by the
publishing service. It reads the database only when a socket opens, resumes or reports typing, and writes its
presence row (``realtime/presence.py``) when it opens, every ``PRESENCE_REFRESH_SECONDS`` and when it closes.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model

from conversations.models import Conversation
from conversations.selectors import visible_numbers
from conversations.services.outbound import request_typing_indicator
from conversations.services.workflow import member_came_online
from realtime import events
from realtime.connections import socket_closed, socket_opened
from realtime.groups import number_group, user_group
from realtime.presence import record_socket_closed, record_socket_open, record_socket_seen
from realtime.selectors import events_since

logger = logging.getLogger(__name__)

# The page reports typing at most every 3 s; a socket that reports more is not a page. Each report costs a
# database read and a message to every colleague's socket, so the rest are dropped.
TYPING_FRAMES_PER_WINDOW = 5
TYPING_WINDOW_SECONDS = 10.0


class FrameLimiter:
    """At most ``limit`` frames in any ``window`` seconds, per socket."""

    def __init__(self, *, limit: int, window: float, clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self.seen: deque[float] = deque()

    def allow(self) -> bool:
        now = self.clock()
        while self.seen and now - self.seen[0] >= self.window:
            self.seen.popleft()
        if len(self.seen) >= self.limit:
            return False
        self.seen.append(now)
        return True


class InboxConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=4401)
            return
        self.number_ids = await database_sync_to_async(_visible_number_ids)(self.user)
        self.typing_limiter = FrameLimiter(limit=TYPING_FRAMES_PER_WINDOW, window=TYPING_WINDOW_SECONDS)
        self.groups_joined = []
        await self._follow_groups()
        await self._count_open(opened=True)
        await self.accept()
        await self._came_online()
        self.presence_refresh = asyncio.ensure_future(self._refresh_presence())

    async def disconnect(self, code):
        refresh = getattr(self, "presence_refresh", None)
        if refresh is not None:
            refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresh
            await database_sync_to_async(record_socket_closed)(channel_name=self.channel_name)
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "groups_joined", None):
            await self._count_open(opened=False)

    @database_sync_to_async
    def _came_online(self) -> None:
        """This user is online while the socket is open: auto-assignment may have conversations for them."""
        record_socket_open(channel_name=self.channel_name, user_id=self.user.pk)
        member_came_online(user=self.user)

    async def _refresh_presence(self) -> None:
        while True:
            await asyncio.sleep(settings.PRESENCE_REFRESH_SECONDS)
            try:
                await database_sync_to_async(record_socket_seen)(channel_name=self.channel_name, user_id=self.user.pk)
            except Exception:  # a database hiccup: the next refresh tries again before the row goes stale
                logger.warning("presence of socket %s not refreshed", self.channel_name, exc_info=True)

    @staticmethod
    async def _count_open(*, opened: bool) -> None:
        try:
            await (socket_opened() if opened else socket_closed())
        except Exception:  # the gauge is best-effort; a Redis hiccup must not close the socket
            logger.warning("open-socket gauge not updated", exc_info=True)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            return
        action = content.get("action")
        if action == "resume":
            await self._resume(content.get("after"))
        elif action == "typing":
            await self._typing(content.get("conversation_id"))

    async def _resume(self, after) -> None:
        if not isinstance(after, int) or after < 0:
            return
        missed = await self._events_since(after)
        if missed is None:
            await self.send_json({"type": events.RELOAD})
            return
        for event in missed:
            await self.send_json(
                {"id": event.pk, "type": event.type, "number_id": event.number_id, "payload": event.payload}
            )

    async def _typing(self, conversation_id) -> None:
        if not isinstance(conversation_id, int) or not self.typing_limiter.allow():
            return
        number_id = await self._number_of_and_notify_customer(conversation_id)
        if number_id is None:
            return
        typing: events.Typing = {
            "conversation_id": conversation_id,
            "user_id": self.user.pk,
            "name": self.user.get_full_name() or self.user.get_username(),
        }
        await self.channel_layer.group_send(
            number_group(number_id), {"type": events.GROUP_TYPING_TYPE, "typing": typing}
        )

    # --- channel-layer handlers ---------------------------------------------------------------

    async def inbox_event(self, message):
        for event in message["events"]:  # one frame per event, in order (realtime.publish batches them)
            await self.send_json(event)

    async def inbox_access_changed(self, message):
        """What this user may see changed: leave the groups of numbers no longer visible before anything else
        is sent, join the new ones, and have the page reload to show the inbox as it now is."""
        access = await self._current_access()
        if access is None:  # deactivated or deleted
            await self.close(code=4403)
            return
        if access[0].password != self.user.password:
            # Signed in with the old password: the session or token this socket opened with no longer holds.
            await self.close(code=4401)
            return
        self.user, self.number_ids = access
        await self._follow_groups()
        await self.send_json({"type": events.RELOAD})

    async def _follow_groups(self) -> None:
        """Be in the groups of the user and of the numbers in ``number_ids``, and in no other."""
        groups = [number_group(pk) for pk in self.number_ids] + [user_group(self.user.pk)]
        for group in set(self.groups_joined) - set(groups):
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in set(groups) - set(self.groups_joined):
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = groups

    async def inbox_typing(self, message):
        if message["typing"]["user_id"] != self.user.pk:
            await self.send_json({"type": events.TYPING, "payload": message["typing"]})

    # --- database ------------------------------------------------------------------------------

    @database_sync_to_async
    def _current_access(self):
        """The user as stored now and the numbers they may see; ``None`` once deactivated or deleted."""
        user = get_user_model().objects.filter(pk=self.user.pk, is_active=True).first()
        return None if user is None else (user, _visible_number_ids(user))

    @database_sync_to_async
    def _events_since(self, after: int):
        return events_since(user_id=self.user.pk, number_ids=self.number_ids, after_id=after)

    @database_sync_to_async
    def _number_of_and_notify_customer(self, conversation_id: int) -> int | None:
        """The conversation's number if this user may see it; also shows the customer Meta's typing
        indicator (rate-limited in the service)."""
        conversation = (
            Conversation.objects.filter(pk=conversation_id, number_id__in=self.number_ids)
            .select_related("number")
            .first()
        )
        if conversation is None:
            return None
        request_typing_indicator(conversation=conversation)
        return conversation.number_id


def _visible_number_ids(user) -> list[int]:
    return list(visible_numbers(user=user).values_list("pk", flat=True))

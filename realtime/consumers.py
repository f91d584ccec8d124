"""``/ws/inbox/``: relays the events of the business numbers a staff member may see.

The consumer renders nothing from the database per event: the payload snapshots were built once by
the publishing service. It only reads the database when a socket opens (which groups to join).
"""
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from conversations.selectors import visible_numbers
from realtime.groups import number_group, user_group


class InboxConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.groups_joined = [number_group(pk) for pk in await self._visible_number_ids(user)]
        self.groups_joined.append(user_group(user.pk))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def inbox_event(self, message):
        await self.send_json(message["event"])

    @database_sync_to_async
    def _visible_number_ids(self, user) -> list[int]:
        return list(visible_numbers(user=user).values_list("pk", flat=True))

"""WebSocket URL map."""

from django.urls import path

from realtime.consumers import InboxConsumer

websocket_urlpatterns = [path("ws/inbox/", InboxConsumer.as_asgi())]

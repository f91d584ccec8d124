"""/ws/inbox/: auth refused, membership enforced, events of the ingestion pipeline delivered."""
import json

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.db import connections, transaction

from realtime import events
from realtime.routing import websocket_urlpatterns
from tests.factories import BusinessNumberFactory, UserFactory
from tests.webhooks.test_payloads import PAYLOADS
from webhooks.models import WebhookEvent
from webhooks.services import process_webhook_event

pytestmark = [pytest.mark.django_db(transaction=True)]

application = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))


@pytest.fixture(autouse=True)
async def close_consumer_connections():
    """The consumers' database thread keeps its connection; close it so the test database can be dropped."""
    yield
    await database_sync_to_async(connections.close_all)()


def session_cookie_for(user) -> bytes:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()


async def connect(user=None) -> tuple[WebsocketCommunicator, bool]:
    headers = [(b"origin", b"http://localhost")]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie_for)(user)))
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    connected, _ = await communicator.connect()
    return communicator, connected


def ingest_sample(name: str) -> None:
    with transaction.atomic():
        event = WebhookEvent.objects.create(raw_body="", payload=json.loads((PAYLOADS / name).read_text()))
    process_webhook_event(event_id=event.pk)


async def test_anonymous_socket_is_refused():
    communicator, connected = await connect()
    assert not connected


async def test_member_receives_the_events_of_an_inbound_message():
    number = await sync_to_async(BusinessNumberFactory)(phone_number_id="427715309981234")
    user = await sync_to_async(UserFactory)(username="ana")
    await sync_to_async(number.members.add)(user)
    communicator, connected = await connect(user)
    assert connected
    await sync_to_async(ingest_sample)("message_text.json")
    created = await communicator.receive_json_from(timeout=2)
    assert created["type"] == events.MESSAGE_CREATED
    assert created["number_id"] == number.pk
    assert created["payload"]["message"]["type"] == "text"
    assert created["payload"]["conversation"]["contact"]["name"] == "Amara Okafor"
    updated = await communicator.receive_json_from(timeout=2)
    assert updated["type"] == events.CONVERSATION_UPDATED
    assert updated["id"] > created["id"], "event ids are the resume sequence"
    await communicator.disconnect()


async def test_non_member_never_receives_another_numbers_events():
    await sync_to_async(BusinessNumberFactory)(phone_number_id="427715309981234")
    outsider = await sync_to_async(UserFactory)(username="eve")
    communicator, connected = await connect(outsider)
    assert connected
    await sync_to_async(ingest_sample)("message_text.json")
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


def test_js_event_names_mirror_realtime_events():
    """The browser reads the same names as the server (static/js/events.js)."""
    source = (settings.BASE_DIR / "static" / "js" / "events.js").read_text()
    for name in events.EVENT_TYPES:
        assert f'"{name}"' in source

"""/ws/inbox/: auth refused, membership enforced, events of the ingestion pipeline delivered."""

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

from conversations.models import Conversation
from conversations.services import mark_conversation_read
from realtime import events
from realtime.routing import websocket_urlpatterns
from tests.factories import BusinessNumberFactory, UserFactory
from tests.webhooks.test_payloads import PAYLOADS
from webhooks.drain import process_webhook_event
from webhooks.models import WebhookEvent

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
        event = WebhookEvent.objects.create(raw_body=(PAYLOADS / name).read_text())
    process_webhook_event(event_id=event.pk)


async def test_anonymous_socket_is_refused():
    _communicator, connected = await connect()
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
    assert created["payload"]["conversation"]["last_message"] == created["payload"]["message"]["preview"]
    assert await communicator.receive_nothing(timeout=0.3), "the conversation came with the message"
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


async def member_of_sample_number(username: str = "ana"):
    number = await sync_to_async(BusinessNumberFactory)(phone_number_id="427715309981234")
    user = await sync_to_async(UserFactory)(username=username)
    await sync_to_async(number.members.add)(user)
    return number, user


async def test_resume_replays_what_the_client_missed_from_the_log():
    _number, user = await member_of_sample_number()
    await sync_to_async(ingest_sample)("message_text.json")  # before the client connects
    await sync_to_async(ingest_sample)("message_location.json")
    communicator, _ = await connect(user)
    await communicator.send_json_to({"action": "resume", "after": 0})
    replayed = [await communicator.receive_json_from(timeout=2) for _ in range(2)]
    assert [e["type"] for e in replayed] == [events.MESSAGE_CREATED, events.MESSAGE_CREATED]
    assert replayed[1]["id"] > replayed[0]["id"], "event ids are the resume sequence"
    await communicator.send_json_to({"action": "resume", "after": replayed[-1]["id"]})
    # Within the slack window the last events come again (clients drop ids they applied)...
    again = [await communicator.receive_json_from(timeout=2) for _ in range(2)]
    assert [e["id"] for e in again] == [e["id"] for e in replayed]
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_resume_does_not_replay_other_numbers_events():
    await sync_to_async(BusinessNumberFactory)(phone_number_id="427715309981234")
    outsider = await sync_to_async(UserFactory)(username="eve")
    await sync_to_async(ingest_sample)("message_text.json")
    communicator, _ = await connect(outsider)
    await communicator.send_json_to({"action": "resume", "after": 0})
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_too_large_a_gap_asks_the_client_to_reload(monkeypatch):
    _number, user = await member_of_sample_number()
    await sync_to_async(ingest_sample)("message_text.json")
    await sync_to_async(ingest_sample)("message_location.json")
    monkeypatch.setattr("realtime.selectors.RESUME_LIMIT", 1)
    communicator, _ = await connect(user)
    await communicator.send_json_to({"action": "resume", "after": 0})
    assert await communicator.receive_json_from(timeout=2) == {"type": events.RELOAD}
    await communicator.disconnect()


async def test_typing_reaches_colleagues_but_not_the_typist_or_outsiders():
    number, ana = await member_of_sample_number("ana")
    bo = await sync_to_async(UserFactory)(username="bo", first_name="Bo")
    await sync_to_async(number.members.add)(bo)
    eve = await sync_to_async(UserFactory)(username="eve")
    await sync_to_async(ingest_sample)("message_text.json")
    conversation_id = await sync_to_async(lambda: Conversation.objects.get().pk)()
    ana_socket, _ = await connect(ana)
    bo_socket, _ = await connect(bo)
    eve_socket, _ = await connect(eve)
    await ana_socket.send_json_to({"action": "typing", "conversation_id": conversation_id})
    typing = await bo_socket.receive_json_from(timeout=2)
    assert typing == {
        "type": events.TYPING,
        "payload": {"conversation_id": conversation_id, "user_id": ana.pk, "name": "ana"},
    }
    assert await ana_socket.receive_nothing(timeout=0.3)
    assert await eve_socket.receive_nothing(timeout=0.3)
    # Typing into a conversation one may not see goes nowhere.
    await eve_socket.send_json_to({"action": "typing", "conversation_id": conversation_id})
    assert await bo_socket.receive_nothing(timeout=0.3)
    for socket in (ana_socket, bo_socket, eve_socket):
        await socket.disconnect()


async def test_a_socket_that_floods_typing_frames_reaches_colleagues_a_few_times_only():
    from realtime.consumers import TYPING_FRAMES_PER_WINDOW

    number, ana = await member_of_sample_number("ana")
    bo = await sync_to_async(UserFactory)(username="bo")
    await sync_to_async(number.members.add)(bo)
    await sync_to_async(ingest_sample)("message_text.json")
    conversation_id = await sync_to_async(lambda: Conversation.objects.get().pk)()
    ana_socket, _ = await connect(ana)
    bo_socket, _ = await connect(bo)
    for _ in range(40):
        await ana_socket.send_json_to({"action": "typing", "conversation_id": conversation_id})
    received = 0
    while not await bo_socket.receive_nothing(timeout=0.3):
        assert (await bo_socket.receive_json_from())["type"] == events.TYPING
        received += 1
    assert received == TYPING_FRAMES_PER_WINDOW
    for socket in (ana_socket, bo_socket):
        await socket.disconnect()


def test_the_typing_limit_frees_up_as_its_window_passes():
    from realtime.consumers import FrameLimiter

    now = [100.0]
    limiter = FrameLimiter(limit=2, window=10.0, clock=lambda: now[0])
    assert [limiter.allow() for _ in range(3)] == [True, True, False]
    now[0] += 9.9
    assert not limiter.allow()
    now[0] += 0.1
    assert limiter.allow()


async def test_reading_syncs_only_the_readers_own_sockets():
    number, ana = await member_of_sample_number("ana")
    bo = await sync_to_async(UserFactory)(username="bo")
    await sync_to_async(number.members.add)(bo)
    await sync_to_async(ingest_sample)("message_text.json")
    ana_tab, _ = await connect(ana)
    bo_tab, _ = await connect(bo)

    def read():
        conversation = Conversation.objects.get()
        with transaction.atomic():
            mark_conversation_read(user=ana, conversation=conversation)
        return conversation

    conversation = await sync_to_async(read)()
    event = await ana_tab.receive_json_from(timeout=2)
    assert event["type"] == events.CONVERSATION_READ and event["payload"]["conversation_id"] == conversation.pk
    assert await bo_tab.receive_nothing(timeout=0.3)
    for socket in (ana_tab, bo_tab):
        await socket.disconnect()


async def test_the_open_socket_gauge_follows_connections():
    from realtime.connections import open_sockets

    _number, user = await member_of_sample_number()
    before = await sync_to_async(open_sockets)()
    first, _ = await connect(user)
    second, _ = await connect(user)
    assert await sync_to_async(open_sockets)() == before + 2
    await first.disconnect()
    assert await sync_to_async(open_sockets)() == before + 1
    await second.disconnect()
    assert await sync_to_async(open_sockets)() == before


async def member_with_open_socket(username: str):
    """A number with one member whose inbox socket is open: (number, user, socket)."""
    number = await sync_to_async(BusinessNumberFactory)(phone_number_id="427715309981234")
    user = await sync_to_async(UserFactory)(username=username)
    await sync_to_async(number.members.add)(user)
    communicator, connected = await connect(user)
    assert connected
    return number, user, communicator


async def test_a_member_removed_from_a_number_stops_receiving_its_events_at_once():
    number, ana, communicator = await member_with_open_socket("ana")
    await sync_to_async(number.members.remove)(ana)  # an admin's edit, in another process in production
    assert (await communicator.receive_json_from(timeout=2))["type"] == events.RELOAD
    await sync_to_async(ingest_sample)("message_text.json")
    assert await communicator.receive_nothing(timeout=0.5), "a removed member still received the number's messages"
    await communicator.disconnect()


async def test_a_user_given_a_number_receives_its_events_without_reconnecting():
    number = await sync_to_async(BusinessNumberFactory)(phone_number_id="427715309981234")
    bo = await sync_to_async(UserFactory)(username="bo")
    communicator, connected = await connect(bo)
    assert connected
    await sync_to_async(bo.business_numbers.add)(number)  # from the user's side of the relation
    assert (await communicator.receive_json_from(timeout=2))["type"] == events.RELOAD
    await sync_to_async(ingest_sample)("message_text.json")
    assert (await communicator.receive_json_from(timeout=2))["type"] == events.MESSAGE_CREATED
    await communicator.disconnect()


async def test_a_deactivated_user_is_disconnected_and_a_login_changes_nothing():
    from django.contrib.auth.models import update_last_login

    _number, ana, communicator = await member_with_open_socket("ana")
    await sync_to_async(update_last_login)(None, ana)  # what every login saves: no access change, no reload
    assert await communicator.receive_nothing(timeout=0.3)
    ana.is_active = False
    await sync_to_async(ana.save)()
    closed = await communicator.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": 4403}


async def test_a_new_password_closes_the_sockets_opened_with_the_old_one():
    _number, ana, communicator = await member_with_open_socket("ana")
    ana.set_password("a-new-password-for-ana")
    await sync_to_async(ana.save)(update_fields=["password"])
    assert await communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}


async def test_a_deleted_users_socket_is_closed():
    _number, ana, communicator = await member_with_open_socket("ana")
    await sync_to_async(ana.delete)()
    assert await communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": 4403}

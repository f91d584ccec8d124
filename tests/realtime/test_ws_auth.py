"""/ws/inbox/ as deployed (config.asgi): browsers by session from an allowed origin, other clients by JWT."""
import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework_simplejwt.tokens import AccessToken

from config.asgi import application
from tests.factories import BusinessNumberFactory, UserFactory
from tests.realtime.test_consumers import session_cookie_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_consumer_connections():
    yield
    await database_sync_to_async(connections.close_all)()


async def connect(path="/ws/inbox/", headers=()) -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(application, path, headers=list(headers))
    connected, _ = await communicator.connect()
    if connected:
        await communicator.disconnect()
    return communicator, connected


async def member():
    number = await sync_to_async(BusinessNumberFactory)()
    user = await sync_to_async(UserFactory)(username="ana")
    await sync_to_async(number.members.add)(user)
    return user


async def test_browser_session_from_an_allowed_origin_connects():
    cookie = await sync_to_async(session_cookie_for)(await member())
    _, connected = await connect(headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)])
    assert connected


async def test_session_from_a_foreign_origin_is_refused():
    cookie = await sync_to_async(session_cookie_for)(await member())
    _, connected = await connect(headers=[(b"origin", b"https://evil.example"), (b"cookie", cookie)])
    assert not connected


async def test_a_client_without_origin_connects_with_a_jwt():
    user = await member()
    token = await sync_to_async(lambda: str(AccessToken.for_user(user)))()
    _, connected = await connect(f"/ws/inbox/?token={token}")
    assert connected


@pytest.mark.parametrize("query", ["", "?token=not-a-jwt"])
async def test_no_origin_needs_a_valid_jwt(query):
    await member()
    _, connected = await connect(f"/ws/inbox/{query}")
    assert not connected

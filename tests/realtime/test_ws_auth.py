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


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000"])
async def test_browser_session_from_the_pages_own_origin_connects(host):
    cookie = await sync_to_async(session_cookie_for)(await member())
    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode()), (b"cookie", cookie)]
    _, connected = await connect(headers=headers)
    assert connected


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost:9999",  # another program's page on the same host: only the port differs
        "https://localhost:8000",  # only the scheme differs
        "null",  # a sandboxed frame or a file:// page
    ],
)
async def test_session_from_another_origin_is_refused(origin):
    cookie = await sync_to_async(session_cookie_for)(await member())
    headers = [(b"host", b"localhost:8000"), (b"origin", origin.encode()), (b"cookie", cookie)]
    _, connected = await connect(headers=headers)
    assert not connected


async def test_behind_the_tls_proxy_the_public_origin_is_trusted(settings):
    # nginx terminates TLS: Daphne sees ws:// with the public Host, the browser sends the https:// origin.
    settings.ALLOWED_HOSTS = ["inbox.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://inbox.example.com", "https://*.agents.example.com"]
    cookie = await sync_to_async(session_cookie_for)(await member())
    for origin, allowed in [
        ("https://inbox.example.com", True),
        ("https://eu.agents.example.com", True),
        ("http://inbox.example.com", True),  # the socket's own origin as Daphne sees it
        ("https://inbox.example.com:8443", False),
        ("https://evil-inbox.example.com", False),
    ]:
        headers = [(b"host", b"inbox.example.com"), (b"origin", origin.encode()), (b"cookie", cookie)]
        _, connected = await connect(headers=headers)
        assert connected is allowed, origin


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


@pytest.mark.parametrize("revoke", ["password_change", "deactivation"])
async def test_a_revoked_jwt_no_longer_connects(revoke):
    user = await member()
    token = await sync_to_async(lambda: str(AccessToken.for_user(user)))()
    if revoke == "password_change":
        await sync_to_async(user.set_password)("a-new-password-4417")
    else:
        user.is_active = False
    await sync_to_async(user.save)()
    _, connected = await connect(f"/ws/inbox/?token={token}")
    assert not connected

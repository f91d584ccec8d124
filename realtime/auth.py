"""WebSocket authentication for clients outside the browser: a JWT in the ``token`` query parameter.

Browsers use their session cookie and must come from an allowed origin (a cookie is ambient, so the
origin check is what stops other sites from opening a socket as the user). A JWT is not ambient: a
client that presents one and sends no Origin header (scripts, mobile apps) is let through on the token.
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError


def _query_token(scope) -> str | None:
    return (parse_qs(scope.get("query_string", b"").decode()).get("token") or [None])[0]


@database_sync_to_async
def _user_for_token(raw: str):
    authentication = JWTAuthentication()
    try:
        return authentication.get_user(authentication.get_validated_token(raw))
    except (InvalidToken, TokenError, Exception):
        return AnonymousUser()


class JwtAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from ``?token=<access JWT>`` when present (after the session stack)."""

    async def __call__(self, scope, receive, send):
        token = _query_token(scope)
        if token:
            scope = dict(scope, user=await _user_for_token(token))
        return await super().__call__(scope, receive, send)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def is_trusted_origin(scope) -> bool:
    """The browser's ``Origin`` is the whole origin (scheme, host and port) of a trusted page: one of
    ``CSRF_TRUSTED_ORIGINS`` (production: FRONTEND_URL's), or the socket's own origin when its ``Host`` is an
    allowed host (``make run`` on localhost or 127.0.0.1). Comparing the host alone let any port or scheme in,
    e.g. another program's page on localhost."""
    origin = (_header(scope, b"origin") or "").rstrip("/").lower()
    if not origin or origin == "null":
        return False
    trusted = {value.rstrip("/").lower() for value in settings.CSRF_TRUSTED_ORIGINS}
    host = (_header(scope, b"host") or "").lower()
    if host and validate_host(split_domain_port(host)[0], settings.ALLOWED_HOSTS):
        scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
        trusted.add(f"{scheme}://{host}")
    if origin in trusted:
        return True
    # CSRF_TRUSTED_ORIGINS may name subdomains with a wildcard, as Django's CSRF check allows.
    scheme, _, netloc = origin.partition("://")
    return any(
        value.startswith(f"{scheme}://*.") and is_same_domain(netloc, value.partition("://")[2][1:])
        for value in trusted
    )


class OriginValidatorUnlessToken:
    """Every connection that sends an Origin header (browsers) must come from a trusted origin
    (``is_trusted_origin``); a connection without one must authenticate with a JWT instead of a cookie."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin")
        if (origin is None and _query_token(scope)) or (origin is not None and is_trusted_origin(scope)):
            return await self.application(scope, receive, send)
        # Refused before the handshake: the browser sees the connection fail (HTTP 403).
        return await WebsocketDenier()(scope, receive, send)

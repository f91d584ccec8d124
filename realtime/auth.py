"""WebSocket authentication for clients outside the browser: a JWT in the ``token`` query parameter.

Browsers use their session cookie and must come from an allowed origin (a cookie is ambient, so the
origin check is what stops other sites from opening a socket as the user). A JWT is not ambient: a
client that presents one and sends no Origin header (scripts, mobile apps) is let through on the token.
"""
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AnonymousUser
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


class OriginValidatorUnlessToken:
    """The allowed-hosts origin check for every connection that sends an Origin header (browsers);
    a connection without one must authenticate with a JWT instead of a cookie."""

    def __init__(self, application):
        self.application = application
        self.validated = AllowedHostsOriginValidator(application)

    async def __call__(self, scope, receive, send):
        has_origin = any(name == b"origin" for name, _value in scope.get("headers", []))
        if not has_origin and _query_token(scope):
            return await self.application(scope, receive, send)
        return await self.validated(scope, receive, send)

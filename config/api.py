"""Cross-cutting API pieces: the one error shape every endpoint answers with, and the token endpoints
behind the sign-in limit.

``{"error": {"code": "<stable machine code>", "detail": "<for people>", "fields": {...}?}}``
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found, server_error
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.sign_in import TooManySignInAttempts, start_sign_in_attempt
from config.openapi import ErrorOut
from conversations.services.errors import WorkflowRefused


def error_response(*, status: int, code: str, detail: str, fields: dict | None = None, headers=None) -> Response:
    error: dict = {"code": code, "detail": detail}
    if fields:
        error["fields"] = fields
    return Response({"error": error}, status=status, headers=headers)


def api_exception_handler(exc, context):
    if isinstance(exc, WorkflowRefused):  # a service's refusal, with its own status, code and field
        fields = {exc.field: [exc.detail]} if exc.field else None
        return error_response(status=exc.status, code=exc.code, detail=exc.detail, fields=fields)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handling and logging take over
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return error_response(
            status=response.status_code,
            code="invalid",
            detail="The request has invalid fields.",
            fields=fields,
            headers=_passthrough_headers(response),
        )
    if isinstance(exc, exceptions.APIException):
        code, detail = _error_code(exc), plain_text(exc.detail)
    else:
        code, detail = "error", str(exc)
    return error_response(status=response.status_code, code=code, detail=detail, headers=_passthrough_headers(response))


def plain_text(detail) -> str:
    """An exception's detail as a sentence for people. Details can be dicts and lists (simplejwt's InvalidToken
    carries ``{"detail": ..., "code": ..., "messages": [...]}``); their ``str()`` is a Python repr."""
    if isinstance(detail, dict):
        if "detail" in detail:
            return plain_text(detail["detail"])
        return " ".join(f"{key}: {plain_text(value)}" for key, value in detail.items())
    if isinstance(detail, list | tuple):
        return " ".join(plain_text(item) for item in detail)
    return str(detail)


def _error_code(exc: exceptions.APIException) -> str:
    # simplejwt's exceptions carry their code as a value: {"detail": "...", "code": "password_changed"}.
    if isinstance(exc.detail, dict) and isinstance(exc.detail.get("code"), str):
        return str(exc.detail["code"])
    codes = exc.get_codes()
    if isinstance(codes, dict):
        codes = codes.get("detail")
    if isinstance(codes, list) and len(codes) == 1:
        codes = codes[0]
    return codes if isinstance(codes, str) else exc.default_code


def _passthrough_headers(response) -> dict:
    return {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")}


# --- authentication endpoints: behind the sign-in limit (accounts/sign_in.py) -------------------------


class SignInLimitedApi:
    """A token endpoint behind ``start_sign_in_attempt``; over the limit it answers the API's 429 (``throttled``,
    with Retry-After). A 200 is a success; anything else counts as a failed attempt."""

    username_field: str | None = None

    def post(self, request, *args, **kwargs):
        # Any JSON is accepted here (the serializer refuses what is not an object): only a string is a username.
        username = (
            request.data.get(self.username_field) if self.username_field and isinstance(request.data, dict) else None
        )
        try:
            attempt = start_sign_in_attempt(request, username=username if isinstance(username, str) else None)
        except TooManySignInAttempts as refusal:
            raise exceptions.Throttled(wait=refusal.retry_after, detail=str(refusal)) from None
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:
            attempt.succeeded()
        return response


@extend_schema(
    responses={
        200: inline_serializer(
            "TokenPair", fields={"access": serializers.CharField(), "refresh": serializers.CharField()}
        ),
        400: ErrorOut,
        401: ErrorOut,
        429: ErrorOut,
    }
)
class TokenObtainApi(SignInLimitedApi, TokenObtainPairView):
    username_field = get_user_model().USERNAME_FIELD


@extend_schema(
    responses={
        200: inline_serializer(
            "RefreshedTokenPair",
            fields={
                "access": serializers.CharField(),
                "refresh": serializers.CharField(help_text="A new refresh token: the one sent is now revoked"),
            },
        ),
        400: ErrorOut,
        401: ErrorOut,
        429: ErrorOut,
    }
)
class TokenRefreshApi(SignInLimitedApi, TokenRefreshView):
    pass


class RevocableTokenRefreshSerializer(TokenRefreshSerializer):
    """Refresh as simplejwt does (rotating the token, revoking the one sent), but only for a user whose access
    tokens would still be accepted: the same per-user check as every API request (``JWTAuthentication.get_user``:
    the account exists and is active, and its password is the one the token was issued under)."""

    def validate(self, attrs):
        JWTAuthentication().get_user(self.token_class(attrs["refresh"]))
        return super().validate(attrs)


# --- Django-level errors under /api/ keep the JSON shape (e.g. a URL that matches no route) -------------


def json_or_html_404(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "not_found", "detail": "Not found."}}, status=404)
    return page_not_found(request, exception)


def json_or_html_500(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "server_error", "detail": "Server error."}}, status=500)
    return server_error(request)

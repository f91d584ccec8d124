"""Cross-cutting API pieces: the one error shape every endpoint answers with, and the throttled
authentication endpoints (token, refresh, the sign-in page).

``{"error": {"code": "<stable machine code>", "detail": "<for people>", "fields": {...}?}}``
"""
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.views.defaults import page_not_found, server_error
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import exception_handler
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from config.openapi import ErrorOut


def error_response(*, status: int, code: str, detail: str, fields: dict | None = None, headers=None) -> Response:
    error: dict = {"code": code, "detail": detail}
    if fields:
        error["fields"] = fields
    return Response({"error": error}, status=status, headers=headers)


def api_exception_handler(exc, context):
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
            status=response.status_code, code="invalid", detail="The request has invalid fields.", fields=fields,
            headers=_passthrough_headers(response),
        )
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if isinstance(code, dict | list):
        code = "error"
    return error_response(
        status=response.status_code, code=str(code), detail=str(detail), headers=_passthrough_headers(response)
    )


def _passthrough_headers(response) -> dict:
    return {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")}

# --- authentication endpoints: throttled harder than the rest ---------------------------------------



@extend_schema(
    responses={
        200: inline_serializer("TokenPair", fields={"access": serializers.CharField(), "refresh": serializers.CharField()}),
        400: ErrorOut,
        401: ErrorOut,
        429: ErrorOut,
    }
)
class TokenObtainApi(TokenObtainPairView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"


@extend_schema(
    responses={
        200: inline_serializer("AccessToken", fields={"access": serializers.CharField()}),
        400: ErrorOut,
        401: ErrorOut,
        429: ErrorOut,
    }
)
class TokenRefreshApi(TokenRefreshView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"


class ThrottledLoginView(auth_views.LoginView):
    """The inbox's sign-in page, with the API's ``auth`` rate per client address for POSTs."""

    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        throttle = ScopedRateThrottle()
        throttle.scope = "auth"
        throttle.rate = throttle.get_rate()
        throttle.num_requests, throttle.duration = throttle.parse_rate(throttle.rate)
        key = f"login-throttle:{throttle.get_ident(request)}"
        history = [t for t in cache.get(key, []) if t > throttle.timer() - throttle.duration]
        if len(history) >= throttle.num_requests:
            wait = int(throttle.duration - (throttle.timer() - history[0])) + 1
            return HttpResponse("Too many sign-in attempts; try again shortly.", status=429, headers={"Retry-After": str(wait)})
        cache.set(key, [*history, throttle.timer()], throttle.duration)
        return super().post(request, *args, **kwargs)


# --- Django-level errors under /api/ keep the JSON shape (e.g. a URL that matches no route) -------------


def json_or_html_404(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "not_found", "detail": "Not found."}}, status=404)
    return page_not_found(request, exception)


def json_or_html_500(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "server_error", "detail": "Server error."}}, status=500)
    return server_error(request)

"""Every API error has the documented shape {"error": {"code": "<identifier>", "detail": "<plain text>"}}, whatever
the exception carried as its detail (a string, a list, a dict such as simplejwt's InvalidToken)."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from config.api import api_exception_handler

pytestmark = pytest.mark.django_db


def assert_documented_shape(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and {"code", "detail"} <= set(body["error"])
    assert body["error"]["code"] == code
    detail = body["error"]["detail"]
    assert isinstance(detail, str) and re.fullmatch(r"[A-Z\"][^{}\[\]]*", detail), detail  # a sentence, no repr
    assert "ErrorDetail" not in detail
    return detail


def bearer(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_bad_token(staff):
    detail = assert_documented_shape(bearer("not-a-jwt").get("/api/conversations/"), 401, "token_not_valid")
    assert detail == "Given token not valid for any token type"


def test_an_expired_token(staff):
    token = AccessToken.for_user(staff)
    token.set_exp(lifetime=-timedelta(seconds=10))
    assert_documented_shape(bearer(token).get("/api/conversations/"), 401, "token_not_valid")


def test_a_refresh_token_used_as_an_access_token(staff):
    assert_documented_shape(bearer(RefreshToken.for_user(staff)).get("/api/conversations/"), 401, "token_not_valid")


def test_an_access_token_sent_to_refresh(staff):
    response = APIClient().post(
        "/api/auth/token/refresh/", {"refresh": str(AccessToken.for_user(staff))}, format="json"
    )
    assert assert_documented_shape(response, 401, "token_not_valid") == "Token has wrong type"


def test_throttled(settings, staff):
    settings.SIGN_IN_FAILURE_RATE = "1/min"
    cache.clear()
    client = APIClient()
    for _ in range(2):
        response = client.post("/api/auth/token/", {"username": "ana", "password": "wrong"}, format="json")
    cache.clear()
    assert_documented_shape(response, 429, "throttled")
    assert response["Retry-After"]


def test_method_not_allowed(api):
    response = api.delete("/api/conversations/")
    assert assert_documented_shape(response, 405, "method_not_allowed") == 'Method "DELETE" not allowed.'
    assert "GET" in response["Allow"]


def test_validation_keeps_its_fields(staff):
    response = APIClient().post("/api/auth/token/", {}, format="json")
    assert_documented_shape(response, 400, "invalid")
    assert set(response.json()["error"]["fields"]) == {"username", "password"}


@pytest.mark.parametrize(
    ("exc", "code", "detail"),
    [
        (
            exceptions.AuthenticationFailed({"detail": "Token is blacklisted", "code": "token_not_valid"}),
            "token_not_valid",
            "Token is blacklisted",
        ),
        (exceptions.ParseError(["First problem.", "Second problem."]), "parse_error", "First problem. Second problem."),
        (exceptions.PermissionDenied({"number": ["Not a member."]}), "permission_denied", "number: Not a member."),
        (exceptions.NotFound(), "not_found", "Not found."),
    ],
)
def test_dict_and_list_details_become_plain_text(exc, code, detail):
    response = api_exception_handler(exc, {})
    assert response.data == {"error": {"code": code, "detail": detail}}

"""Cross-origin requests: none by default; the origins an operator lists may call the API with a JWT only."""

import pytest

pytestmark = pytest.mark.django_db

PREFLIGHT = {"HTTP_ORIGIN": "https://app.example.com", "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET"}


def test_no_origin_is_allowed_by_default(client, staff):
    client.force_login(staff)
    preflight = client.options("/api/numbers/", **PREFLIGHT)
    assert "Access-Control-Allow-Origin" not in preflight
    answer = client.get("/api/numbers/", HTTP_ORIGIN="https://app.example.com")
    assert answer.status_code == 200 and "Access-Control-Allow-Origin" not in answer


def test_a_listed_origin_may_call_the_api_without_credentials(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    preflight = client.options("/api/numbers/", **{**PREFLIGHT, "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization"})
    assert preflight["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "authorization" in preflight["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight  # the session cookie never crosses origins
    other = client.options("/api/numbers/", **{**PREFLIGHT, "HTTP_ORIGIN": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other


def test_pages_and_the_webhook_never_answer_other_origins(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    for path in ("/login/", "/api/webhook"):
        assert "Access-Control-Allow-Origin" not in client.options(path, **PREFLIGHT), path

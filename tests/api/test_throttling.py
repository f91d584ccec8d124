"""Sign-in limits and throttles: every sign-in form and token endpoint shares one limit on failed attempts, per
client address and per username; the client address is what the deployment's own proxies vouch for; Meta's
webhook deliveries are never throttled."""

import json

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import RequestFactory
from rest_framework.test import APIClient
from rest_framework.throttling import BaseThrottle

from accounts.sign_in import client_ip
from sandbox.simulation import signed_request
from tests.factories import UserFactory
from tests.webhooks.test_payloads import PAYLOADS

pytestmark = pytest.mark.django_db

SIGN_IN_FORMS = ["/login/", "/admin/login/"]


@pytest.fixture
def strict_rates(settings):
    rest = dict(settings.REST_FRAMEWORK)
    settings.REST_FRAMEWORK = rest | {"DEFAULT_THROTTLE_RATES": {"anon": "5/min", "user": "100/min"}}
    settings.SIGN_IN_FAILURE_RATE = "3/min"
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    cache.clear()
    yield
    settings.REST_FRAMEWORK = rest
    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    cache.clear()


@pytest.fixture
def sign_in_limit(settings):
    """Three failed sign-ins per address and per username; DRF's own throttles out of the way."""
    settings.SIGN_IN_FAILURE_RATE = "3/min"
    cache.clear()
    yield
    cache.clear()


def sign_in(client, path: str, username: str, password: str, **extra):
    if path == "/api/auth/token/":
        return client.post(path, {"username": username, "password": password}, content_type="application/json", **extra)
    return client.post(path, {"username": username, "password": password, "next": "/admin/"}, **extra)


def test_token_endpoint_is_throttled(sign_in_limit, staff):
    client = APIClient()
    answers = [
        client.post("/api/auth/token/", {"username": "ana", "password": "wrong"}, format="json") for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    error = answers[-1].json()["error"]
    assert error["code"] == "throttled" and error["detail"].startswith("Too many failed sign-in attempts.")
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60


@pytest.mark.parametrize("path", SIGN_IN_FORMS)
def test_sign_in_forms_are_limited_with_a_readable_page(sign_in_limit, client, staff, path):
    answers = [sign_in(client, path, "ana", "wrong") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert b"Too many sign-in attempts" in answers[-1].content and b"<html" in answers[-1].content
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60


@pytest.mark.parametrize("path", ["/api/auth/token/", *SIGN_IN_FORMS])
def test_a_new_x_forwarded_for_each_time_is_still_the_same_client(sign_in_limit, client, staff, path):
    # Nothing in front of the app (TRUSTED_PROXY_COUNT=0): the header is the client's own word. Another
    # username each time, so only the address count can stop it.
    codes = [
        sign_in(client, path, f"guess{n}", "wrong", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
        for n in range(15)
    ]
    assert codes[3:] == [429] * 12


def test_behind_one_proxy_the_address_it_appended_is_the_client(sign_in_limit, settings, client, staff):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}  # as base.py derives it
    # nginx appends the address it saw to whatever the client sent: the client's own entries change nothing.
    spoofed = [
        sign_in(client, "/login/", f"guess{n}", "wrong", headers={"X-Forwarded-For": f"10.9.9.{n}, 198.51.100.7"})
        for n in range(5)
    ]
    assert [a.status_code for a in spoofed] == [200, 200, 200, 429, 429]
    # Another client behind the same proxy has its own count.
    other = sign_in(client, "/login/", "guess-other", "wrong", headers={"X-Forwarded-For": "198.51.100.8"})
    assert other.status_code == 200


@pytest.mark.parametrize("path", ["/api/auth/token/", *SIGN_IN_FORMS])
def test_one_username_from_many_addresses_is_limited_even_with_the_right_password(sign_in_limit, client, path):
    UserFactory(username="root", is_superuser=True)
    codes = [sign_in(client, path, "root", "wrong", REMOTE_ADDR=f"192.0.2.{n}").status_code for n in range(15)]
    assert 429 in codes and codes[3:] == [429] * 12
    assert sign_in(client, path, "root", "pw-for-tests", REMOTE_ADDR="192.0.2.200").status_code == 429


def test_the_admin_sign_in_of_a_superuser_is_limited(sign_in_limit, client):
    UserFactory(username="root", is_superuser=True)
    for _ in range(15):
        sign_in(client, "/admin/login/", "root", "wrong")
    answer = sign_in(client, "/admin/login/", "root", "pw-for-tests")
    assert answer.status_code == 429
    assert client.get("/admin/").status_code == 302  # still signed out: the admin sends to its login


def test_being_signed_in_does_not_lift_the_limit(sign_in_limit, client, staff):
    UserFactory(username="root", is_superuser=True)
    client.force_login(staff)
    codes = [sign_in(client, "/admin/login/", "root", "wrong").status_code for _ in range(5)]
    assert codes[-1] == 429


@pytest.mark.parametrize("path", ["/api/auth/token/", *SIGN_IN_FORMS])
def test_successful_sign_ins_do_not_count(sign_in_limit, path, staff):
    from django.test import Client

    codes = {sign_in(Client(), path, "ana", "pw-for-tests").status_code for _ in range(6)}
    assert codes == {302 if path != "/api/auth/token/" else 200}


def test_refresh_with_bad_tokens_is_limited_per_address(sign_in_limit):
    client = APIClient()
    codes = [
        client.post("/api/auth/token/refresh/", {"refresh": f"not-a-token-{n}"}, format="json").status_code
        for n in range(5)
    ]
    assert codes == [401, 401, 401, 429, 429]


def test_drf_throttles_ignore_a_clients_own_x_forwarded_for(strict_rates, settings, staff):
    settings.SIGN_IN_FAILURE_RATE = "1000/min"
    client = APIClient()
    codes = [
        client.post(
            "/api/auth/token/",
            {"username": "ana", "password": "wrong"},
            format="json",
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        ).status_code
        for n in range(6)
    ]
    assert codes == [401] * 5 + [429]


@pytest.mark.parametrize("proxies", [0, 1, 2])
@pytest.mark.parametrize(
    "forwarded_for", [None, "198.51.100.7", "10.0.0.1, 198.51.100.7", " 10.0.0.1 ,10.0.0.2, 198.51.100.7 "]
)
def test_client_ip_is_the_address_drf_throttles_use(settings, proxies, forwarded_for):
    settings.TRUSTED_PROXY_COUNT = proxies
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}  # as base.py derives it
    headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for else {}
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", **headers)
    assert client_ip(request) == BaseThrottle().get_ident(request)


def test_the_webhook_is_never_throttled(strict_rates, client, number):
    body, headers = signed_request(
        json.loads((PAYLOADS / "message_text.json").read_text()), app_secret=django_settings.META_APP_SECRET
    )
    codes = {
        client.post(
            "/api/webhook",
            data=body,
            content_type="application/json",
            headers={"X-Hub-Signature-256": headers["X-Hub-Signature-256"]},
        ).status_code
        for _ in range(12)
    }
    assert codes == {200}

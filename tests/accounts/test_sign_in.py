"""The sign-in limit (accounts/sign_in.py): every sign-in form and token endpoint shares one limit on failed
attempts, per client address and per username; the client address is what the deployment's own proxies vouch
for; while the limit's store (Redis) is unreachable, sign-in is let through uncounted and passwords still
decide."""

import logging

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory
from rest_framework.test import APIClient
from rest_framework.throttling import BaseThrottle

from accounts.sign_in import client_ip, start_sign_in_attempt
from tests.e2e.conftest import RedisServer, free_port
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SIGN_IN_FORMS = ["/login/", "/admin/login/"]
SIGN_INS = ["/api/auth/token/", *SIGN_IN_FORMS]
UNCOUNTED = "sign-in attempt not counted: the cache is unreachable"


@pytest.fixture
def sign_in_limit(settings):
    """Three failed sign-ins per address and per username; DRF's own throttles out of the way."""
    settings.SIGN_IN_FAILURE_RATE = "3/min"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def redis_cache(settings, tmp_path):
    """The cache on a Redis server of the test's own (empty: nothing to clear), which the test may stop and start
    again; the limit as ``sign_in_limit``'s."""
    settings.SIGN_IN_FAILURE_RATE = "3/min"
    server = RedisServer(port=free_port(), workdir=str(tmp_path))
    server.start()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": server.url}}
    yield server
    server.stop()


def sign_in(client, path: str, username: str, password: str, **extra):
    if path == "/api/auth/token/":
        return client.post(path, {"username": username, "password": password}, content_type="application/json", **extra)
    return client.post(path, {"username": username, "password": password, "next": "/admin/"}, **extra)


def signed_in_code(path: str) -> int:
    return 200 if path == "/api/auth/token/" else 302


def assert_wrong_password_answer(path: str, answer) -> None:
    """The normal answer to a wrong password: the API's 401, the form shown again with its error."""
    if path == "/api/auth/token/":
        assert answer.status_code == 401, answer.content
        assert answer.json()["error"]["code"] == "no_active_account"
    else:
        assert answer.status_code == 200, answer.content
        assert answer.context["form"].errors and b"<form" in answer.content


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


@pytest.mark.parametrize("path", SIGN_INS)
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


@pytest.mark.parametrize("path", SIGN_INS)
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


@pytest.mark.parametrize("path", SIGN_INS)
def test_successful_sign_ins_do_not_count(sign_in_limit, path, staff):
    codes = {sign_in(Client(), path, "ana", "pw-for-tests").status_code for _ in range(6)}
    assert codes == {signed_in_code(path)}


def test_refresh_with_bad_tokens_is_limited_per_address(sign_in_limit):
    client = APIClient()
    codes = [
        client.post("/api/auth/token/refresh/", {"refresh": f"not-a-token-{n}"}, format="json").status_code
        for n in range(5)
    ]
    assert codes == [401, 401, 401, 429, 429]


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


# --- while Redis is down ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SIGN_INS)
def test_with_redis_stopped_sign_in_answers_as_usual_and_is_not_counted(redis_cache, staff, path, caplog):
    assert_wrong_password_answer(path, sign_in(Client(), path, "ana", "wrong"))  # counted while Redis runs
    redis_cache.stop()

    with caplog.at_level(logging.WARNING, logger="accounts.sign_in"):
        wrong = [sign_in(Client(), path, "ana", "wrong") for _ in range(5)]
        right = sign_in(Client(), path, "ana", "pw-for-tests")

    for answer in wrong:
        assert_wrong_password_answer(path, answer)  # over the limit of 3, yet never a 429 nor a 500
    assert right.status_code == signed_in_code(path), right.content
    assert caplog.text.count(UNCOUNTED) == 6


def test_with_redis_stopped_the_refresh_endpoint_answers_as_usual(redis_cache, staff):
    client = APIClient()
    refresh = client.post("/api/auth/token/", {"username": "ana", "password": "pw-for-tests"}, format="json").json()[
        "refresh"
    ]
    redis_cache.stop()

    bad = [client.post("/api/auth/token/refresh/", {"refresh": "not-a-token"}, format="json") for _ in range(5)]
    good = client.post("/api/auth/token/refresh/", {"refresh": refresh}, format="json")

    assert [a.status_code for a in bad] == [401] * 5
    assert good.status_code == 200 and good.json()["access"]


def test_with_the_cache_on_a_port_nothing_listens_on_the_sign_in_page_signs_in(settings, client, staff):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    answer = sign_in(client, "/login/", "ana", "pw-for-tests")
    assert answer.status_code == 302
    assert client.get("/inbox/").status_code == 200  # the session is the database's, not the cache's


@pytest.mark.parametrize("path", SIGN_INS)
def test_the_limit_resumes_when_redis_returns(redis_cache, staff, path):
    redis_cache.stop()
    for _ in range(5):
        sign_in(Client(), path, "ana", "wrong")
    redis_cache.start()  # the same port, empty: what was not counted is not remembered

    codes = [sign_in(Client(), path, "ana", "wrong").status_code for _ in range(5)]

    assert codes[3:] == [429, 429]
    assert sign_in(Client(), path, "ana", "pw-for-tests").status_code == 429


def test_a_success_given_back_after_redis_went_down_does_not_fail_the_sign_in(redis_cache, rf, caplog):
    attempt = start_sign_in_attempt(rf.post("/login/"), username="ana")
    redis_cache.stop()
    with caplog.at_level(logging.WARNING, logger="accounts.sign_in"):
        attempt.succeeded()
    assert "sign-in success not given back: the cache is unreachable" in caplog.text

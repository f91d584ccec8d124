"""Throttling: token and login endpoints are slowed down; Meta's webhook deliveries never are."""
import json

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.webhooks.test_payloads import PAYLOADS
from webhooks.simulation import signed_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict_rates(settings):
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {"anon": "5/min", "user": "100/min", "auth": "3/min"}
    settings.REST_FRAMEWORK = rest
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    cache.clear()
    yield
    settings.REST_FRAMEWORK = rest | {"DEFAULT_THROTTLE_RATES": django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}
    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    cache.clear()


def test_token_endpoint_is_throttled(strict_rates, staff):
    client = APIClient()
    answers = [client.post("/api/auth/token/", {"username": "ana", "password": "wrong"}, format="json") for _ in range(4)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert answers[-1].json()["error"]["code"] == "throttled" and "Retry-After" in answers[-1]


def test_login_page_is_throttled(strict_rates, client, staff):
    codes = [client.post("/login/", {"username": "ana", "password": "wrong"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_the_webhook_is_never_throttled(strict_rates, client, number):
    body, headers = signed_request(json.loads((PAYLOADS / "message_text.json").read_text()), app_secret=django_settings.META_APP_SECRET)
    codes = {
        client.post("/api/webhook", data=body, content_type="application/json",
                    headers={"X-Hub-Signature-256": headers["X-Hub-Signature-256"]}).status_code
        for _ in range(12)
    }
    assert codes == {200}

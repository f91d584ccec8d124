"""DRF's throttles: they ignore a client's own X-Forwarded-For; Meta's webhook deliveries are never throttled.
The sign-in limit has its tests in tests/accounts/test_sign_in.py."""

import json

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from rest_framework.test import APIClient

from sandbox.simulation import signed_request
from tests.webhooks.test_payloads import PAYLOADS

pytestmark = pytest.mark.django_db


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

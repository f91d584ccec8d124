"""The WSGI handler gunicorn serves (webhooks.fastpath): Meta's webhook POSTs take their own short middleware
chain, everything else Django's whole one. The ``client`` fixture serves requests with this handler."""

import logging

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from sandbox.simulation import envelope, message_change, signed_request
from webhooks.fastpath import InboxWSGIHandler
from webhooks.models import WebhookEvent


def signed_delivery() -> tuple[bytes, str]:
    payload = envelope(
        waba_id="318273645502211",
        changes=[
            message_change(
                phone_number_id="427715309981234",
                display_phone_number="15557730142",
                wa_id="2348030000001",
            )
        ],
    )
    body, headers = signed_request(payload, app_secret=django_settings.META_APP_SECRET)
    return body, headers["X-Hub-Signature-256"]


def post(client, body: bytes, signature: str, **headers):
    return client.post(
        "/api/webhook",
        data=body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": signature, **headers},
    )


@pytest.mark.django_db
def test_a_delivery_skips_the_page_middleware_but_keeps_its_request_id_and_access_line(client, number, caplog):
    body, signature = signed_delivery()
    with caplog.at_level(logging.INFO, logger="inbox.request"):
        response = post(client, body, signature, **{"X-Request-ID": "meta-delivery-1"})

    assert response.status_code == 200
    assert response["Content-Length"] == str(len(response.content))  # else gunicorn answers chunked
    assert WebhookEvent.objects.filter(request_id="meta-delivery-1").count() == 1
    assert response["X-Request-ID"] == "meta-delivery-1"
    assert [r.getMessage() for r in caplog.records if r.name == "inbox.request"] == ["POST /api/webhook 200"]
    # Headers only the whole chain sets: not on Meta's answer...
    assert "X-Frame-Options" not in response
    assert "Vary" not in response
    assert not response.cookies
    # ...but on everything else, the handshake GET on the same path included.
    handshake = client.get("/api/webhook", {"hub.mode": "subscribe", "hub.verify_token": "wrong"})
    assert handshake.status_code == 403
    assert handshake["X-Frame-Options"] == "DENY"
    assert client.get("/login/")["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_a_delivery_for_a_host_not_allowed_is_400_and_not_stored(client, number):
    body, signature = signed_delivery()
    response = post(client, body, signature, Host="webhooks.attacker.example")

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_a_delivery_over_plain_http_is_sent_to_https_when_the_site_requires_it(request, settings, number):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = request.getfixturevalue("client")  # built after the settings: the handler reads them once
    body, signature = signed_delivery()

    plain = post(client, body, signature)
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/api/webhook"
    assert not WebhookEvent.objects.exists()

    assert post(client, body, signature, **{"X-Forwarded-Proto": "https"}).status_code == 200
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_an_error_in_the_view_is_a_500_that_names_the_request(client, number, monkeypatch, caplog):
    def broken(**_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("webhooks.apis.store_webhook_event", broken)
    client.raise_request_exception = False
    body, signature = signed_delivery()
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = post(client, body, signature, **{"X-Request-ID": "meta-delivery-2"})

    assert response.status_code == 500
    assert response["X-Request-ID"] == "meta-delivery-2"
    assert response["Content-Length"] == str(len(response.content))
    assert any("Internal Server Error: /api/webhook" in r.getMessage() for r in caplog.records)


def test_a_webhook_middleware_with_hooks_the_short_chain_never_calls_is_refused(settings):
    settings.WEBHOOK_MIDDLEWARE = [*settings.WEBHOOK_MIDDLEWARE, "django.middleware.csrf.CsrfViewMiddleware"]

    with pytest.raises(ImproperlyConfigured, match="CsrfViewMiddleware has process_view"):
        InboxWSGIHandler()


@pytest.mark.django_db
def test_every_answer_to_a_delivery_says_its_length(client, number):
    body, signature = signed_delivery()
    for response in (
        post(client, body, "sha256=" + "0" * 64),
        post(client, b"{not json", signature),
        post(client, body, signature, Host="webhooks.attacker.example"),
    ):
        assert response.status_code in (400, 403)
        assert response["Content-Length"] == str(len(response.content))

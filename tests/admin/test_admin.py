"""Django admin as an admin uses it: every list and detail page renders, webhook events show their payload
and errors and can be replayed (access tokens: test_access_tokens.py)."""

import json

import pytest
from django.urls import reverse

from conversations.models import Message
from tests.factories import ConversationFactory, MessageFactory, UserFactory
from tests.webhooks.test_payloads import PAYLOADS
from webhooks.models import WebhookEvent, WebhookEventState

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", is_superuser=True))
    return client


@pytest.mark.parametrize(
    "model",
    [
        "conversations.businessnumber",
        "conversations.conversation",
        "conversations.message",
        "conversations.messagestatusevent",
        "conversations.reaction",
        "contacts.contact",
        "webhooks.webhookevent",
    ],
)
def test_every_changelist_and_change_page_renders(admin_client, number, model, post_webhook):
    post_webhook(json.loads((PAYLOADS / "message_text.json").read_text()))
    post_webhook(json.loads((PAYLOADS / "message_reaction.json").read_text()))
    post_webhook(json.loads((PAYLOADS / "status_sent.json").read_text()))
    app, name = model.split(".")
    assert admin_client.get(reverse(f"admin:{app}_{name}_changelist")).status_code == 200
    from django.apps import apps

    obj = apps.get_model(app, name).objects.first()
    assert admin_client.get(reverse(f"admin:{app}_{name}_change", args=[obj.pk])).status_code == 200


def test_messages_are_read_only(admin_client, number):
    message = MessageFactory(conversation=ConversationFactory(number=number))
    url = reverse("admin:conversations_message_change", args=[message.pk])
    admin_client.post(url, {"body": "rewritten"})
    assert Message.objects.get(pk=message.pk).body == message.body


def test_webhook_event_page_shows_payload_and_errors_and_replays(
    admin_client, number, post_webhook, django_capture_on_commit_callbacks
):
    payload = json.loads((PAYLOADS / "message_text.json").read_text())
    payload["entry"][0]["changes"][0]["value"]["messages"].append({"id": "wamid.bad", "type": "text"})
    post_webhook(payload)
    event = WebhookEvent.objects.get()
    assert event.item_errors and event.state == WebhookEventState.PROCESSED
    page = admin_client.get(reverse("admin:webhooks_webhookevent_change", args=[event.pk])).content.decode()
    assert "whatsapp_business_account" in page and "messages[1]" in page
    listing = admin_client.get(reverse("admin:webhooks_webhookevent_changelist") + "?item_errors=yes")
    assert str(event.pk) in listing.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:webhooks_webhookevent_changelist"),
            {"action": "replay", "_selected_action": [event.pk]},
        )
    assert response.status_code == 302
    # The action's message is stored with the redirect and shown on the next page.
    assert "1 event(s) queued for processing again." in admin_client.get(response["Location"]).content.decode()
    event.refresh_from_db()
    assert event.attempts == 2 and Message.objects.count() == 1


def test_merge_action_keeps_the_contact_who_wrote_last(admin_client, number):
    from datetime import UTC, datetime

    from contacts.models import Contact
    from tests.factories import ContactFactory

    old = ContactFactory(wa_id="551187654321", profile_name="Ana (old number form)")
    new = ContactFactory(wa_id="5511987654321", profile_name="Ana")
    MessageFactory(
        conversation=ConversationFactory(number=number, contact=old), timestamp=datetime(2025, 1, 1, tzinfo=UTC)
    )
    MessageFactory(
        conversation=ConversationFactory(number=number, contact=new), timestamp=datetime(2026, 1, 1, tzinfo=UTC)
    )
    response = admin_client.post(
        reverse("admin:contacts_contact_changelist"),
        {"action": "merge_selected", "_selected_action": [old.pk, new.pk]},
        follow=True,
    )
    assert "Merged 1 contact(s) into Ana" in response.content.decode()
    assert list(Contact.objects.values_list("pk", flat=True)) == [new.pk]
    assert Message.objects.filter(conversation__contact=new).count() == 2

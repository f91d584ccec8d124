"""Queueing replies through the API: what is refused before anything reaches Meta, and the outbox rules
that do not need Meta at all. The Graph API side is tested against the sandbox (tests/e2e/test_replying.py)."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from conversations.models import MediaFile, MediaState, Message, MessageStatus, MessageTemplate
from conversations.services.outbound import deliver_outbound_message
from realtime.models import Event
from sandbox.simulation import new_wamid, status_change
from tests.factories import ContactFactory, ConversationFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(number):
    conversation = ConversationFactory(number=number, contact=ContactFactory(wa_id="447700900461"))
    inbound = MessageFactory(conversation=conversation, timestamp=timezone.now() - timedelta(hours=1))
    conversation.last_inbound_at = inbound.timestamp
    conversation.save()
    return conversation


@pytest.fixture
def no_delivery(monkeypatch):
    """Keep queued messages in the outbox: these tests are about what happens before the Graph API."""
    monkeypatch.setattr("conversations.tasks.deliver_outbound_message_task.delay", lambda *args: None)


def url(conversation) -> str:
    return f"/api/conversations/{conversation.pk}/messages/"


def test_text_is_queued_pending_with_an_idempotency_key(
    api, conversation, no_delivery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(url(conversation), {"type": "text", "text": "On its way!"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert (body["direction"], body["status"], body["text"], body["wamid"]) == ("out", "pending", "On its way!", None)
    message = Message.objects.get(pk=body["id"])
    assert message.idempotency_key and message.sent_by.username == "ana"
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "On its way!" and conversation.last_message_direction == "out"
    assert Event.objects.filter(type="message.created").exists()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"type": "text", "text": "   "}, "empty"),
        ({"type": "text", "text": "x" * 4097}, "too_long"),
        ({"type": "text", "text": "hi", "reply_to": "wamid.NOT-HERE"}, "unknown_message"),
        ({"type": "reaction", "message": "wamid.NOT-HERE", "emoji": "👍"}, "unknown_message"),
        ({"type": "template", "template": 999999, "params": []}, "template_unavailable"),
        ({"type": "fax"}, "unknown_type"),
    ],
)
def test_bad_requests_are_refused_with_a_stable_error(api, conversation, no_delivery, payload, code):
    response = api.post(url(conversation), payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert not Message.objects.filter(direction="out").exists()


def test_free_text_outside_the_window_is_refused_and_templates_still_go(api, conversation, no_delivery):
    conversation.last_inbound_at = timezone.now() - timedelta(hours=25)
    conversation.save()
    response = api.post(url(conversation), {"type": "text", "text": "Hello again"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "window_closed"
    template = MessageTemplate.objects.create(
        waba_id=conversation.number.waba_id,
        name="order_update",
        language="en_US",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."}],
    )
    listing = api.get(f"/api/conversations/{conversation.pk}/templates/").json()
    assert listing["window"]["open"] is False
    [item] = listing["results"]
    assert {k: item[k] for k in ("id", "name", "language", "category", "body", "parameter_count")} == {
        "id": template.pk,
        "name": "order_update",
        "language": "en_US",
        "category": "",
        "body": template.body_text,
        "parameter_count": 2,
    }
    assert [slot["key"] for slot in item["slots"]] == ["body.1", "body.2"]
    assert (
        api.post(
            url(conversation), {"type": "template", "template": template.pk, "params": ["Amara"]}, format="json"
        ).json()["error"]["code"]
        == "template_params"
    )
    response = api.post(
        url(conversation), {"type": "template", "template": template.pk, "params": ["Amara", "#42"]}, format="json"
    )
    assert response.status_code == 202
    assert response.json()["text"] == "Hi Amara, your order #42 has shipped."


def test_a_number_needing_reauthorization_refuses_to_queue(api, conversation, no_delivery):
    conversation.number.needs_reauthorization = True
    conversation.number.save()
    response = api.post(url(conversation), {"type": "text", "text": "hi"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "reauthorization_required"


@pytest.mark.parametrize(
    ("name", "content_type", "size", "code"),
    [
        ("virus.exe", "application/x-msdownload", 10, "unsupported_media"),
        ("huge.jpg", "image/jpeg", 5 * 1024 * 1024 + 1, "too_large"),
        ("sticker.webp", "image/webp", 600 * 1024, "too_large"),
    ],
)
def test_media_outside_metas_limits_is_refused_before_upload(
    api, conversation, no_delivery, name, content_type, size, code
):
    upload = SimpleUploadedFile(name, b"x" * size, content_type=content_type)
    response = api.post(url(conversation), {"file": upload}, format="multipart")
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert not MediaFile.objects.exists()


def test_media_is_stored_and_queued(api, conversation, no_delivery):
    upload = SimpleUploadedFile("invoice.pdf", b"%PDF-1.4 test", content_type="application/pdf")
    response = api.post(url(conversation), {"file": upload, "caption": "Your invoice"}, format="multipart")
    assert response.status_code == 202
    body = response.json()
    assert body["type"] == "document" and body["text"] == "Your invoice"
    assert body["media"]["state"] == "ready" and body["media"]["url"] == f"/media/{body['id']}/"


def test_media_view_serves_members_only(client, staff, conversation, no_delivery):
    message = MessageFactory(conversation=conversation, type="image")
    media = MediaFile.objects.create(message=message, mime_type="image/png", state=MediaState.READY)
    media.file.save("pic.png", SimpleUploadedFile("pic.png", b"\x89PNG..."))
    assert client.get(f"/media/{message.pk}/").status_code == 302  # login first
    outsider = UserFactory(username="eve")
    client.force_login(outsider)
    assert client.get(f"/media/{message.pk}/").status_code == 404
    client.force_login(staff)
    response = client.get(f"/media/{message.pk}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x89PNG..."
    assert response["Content-Type"] == "image/png" and response["X-Content-Type-Options"] == "nosniff"


def test_a_status_carrying_our_key_attaches_the_wamid_and_stops_a_resend(
    api, conversation, no_delivery, deliver, number
):
    message_id = api.post(url(conversation), {"type": "text", "text": "hi"}, format="json").json()["id"]
    message = Message.objects.get(pk=message_id)
    wamid = new_wamid()
    change = status_change(
        phone_number_id=number.phone_number_id,
        display_phone_number=number.display_phone_number,
        wamid=wamid,
        status="sent",
        recipient_wa_id="447700900461",
    )
    change["value"]["statuses"][0]["biz_opaque_callback_data"] = str(message.idempotency_key)
    deliver(change)
    message.refresh_from_db()
    assert (message.wamid, message.status) == (wamid, MessageStatus.SENT)
    # The send task, retried after a lost response, finds the message already accepted by Meta.
    assert deliver_outbound_message(message_id=message.pk) == "skipped"


def test_reading_a_conversation_queues_a_read_receipt_unless_turned_off(
    client, staff, conversation, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr("conversations.tasks.send_read_receipt_task.delay", lambda pk: queued.append(pk))
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(f"/inbox/{conversation.pk}/")
    assert queued == []  # opening the page (a GET, which any site can link to) tells the customer nothing
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/conversations/{conversation.pk}/read/")
    assert queued == [conversation.pk]
    conversation.number.send_read_receipts = False
    conversation.number.save()
    MessageFactory(conversation=conversation)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/conversations/{conversation.pk}/read/")
    assert queued == [conversation.pk]

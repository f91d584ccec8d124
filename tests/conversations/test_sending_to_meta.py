"""What reaches Meta and what Meta's answers do, against the sandbox as a real HTTP server: a send Meta's
schema refuses never leaves the app, throttling answers leave the message queued for a later try, and
Graph's unknown-object answers (100 and 803) read the same."""

import functools
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from conversations.models import Message, MessageStatus
from conversations.services import pacing
from conversations.services.errors import RetryLater
from conversations.services.numbers import NumberVerificationFailed, verify_phone_number
from conversations.services.outbound import deliver_outbound_message
from tests.conversations.conftest import SANDBOX_TOKEN
from tests.factories import ContactFactory, ConversationFactory

pytestmark = pytest.mark.django_db

STICKER = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 200
VOICE_NOTE = b"OggS" + b"\x00" * 200


@pytest.fixture
def conversation(number):
    """The customer wrote a minute ago: the 24-hour window is open."""
    contact = ContactFactory(wa_id="447700900461")
    return ConversationFactory(number=number, contact=contact, last_inbound_at=timezone.now() - timedelta(minutes=1))


def sent_requests(sandbox) -> list[dict]:
    with sandbox.lock:
        return [dict(item["request"]) for item in sandbox.state.messages]


@pytest.mark.parametrize(("name", "mime_type", "data", "kind"), [
    ("hello.webp", "image/webp", STICKER, "sticker"),
    ("note.ogg", "audio/ogg", VOICE_NOTE, "audio"),
])  # fmt: skip
def test_a_sticker_or_audio_goes_to_meta_without_the_caption_its_object_does_not_take(
    meta_sandbox, api, conversation, django_capture_on_commit_callbacks, name, mime_type, data, kind
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/conversations/{conversation.pk}/messages/",
            {"file": SimpleUploadedFile(name, data, content_type=mime_type), "caption": "for you"},
            format="multipart",
        )
    assert response.status_code == 202, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert message.status != MessageStatus.FAILED, (message.error_code, message.error_title)
    assert message.wamid
    [request] = sent_requests(meta_sandbox)
    assert request["type"] == kind and set(request[kind]) == {"id"}


@pytest.fixture
def queued(api, conversation, monkeypatch) -> Message:
    """A reply in the outbox; the test delivers it itself."""
    monkeypatch.setattr("conversations.tasks.deliver_outbound_message_task.delay", lambda *args: None)
    response = api.post(
        f"/api/conversations/{conversation.pk}/messages/", {"type": "text", "text": "hi"}, format="json"
    )
    return Message.objects.get(pk=response.json()["id"])


@pytest.mark.parametrize("code", [4, 17, 341, 613, 80007, 130429, 131048, 131056])
def test_a_throttling_answer_leaves_the_reply_queued_and_the_next_try_sends_it(meta_sandbox, queued, code):
    meta_sandbox.configure({"fail_next": {"code": code, "mode": "sync"}})
    with pytest.raises(RetryLater):
        deliver_outbound_message(message_id=queued.pk)
    queued.refresh_from_db()
    assert queued.status == MessageStatus.PENDING and queued.wamid is None and queued.send_claimed_at is None
    assert deliver_outbound_message(message_id=queued.pk) == "sent"
    assert len(sent_requests(meta_sandbox)) == 1


@pytest.mark.parametrize("phone_number_id", ["999000111", "support-line"])
def test_meta_not_knowing_the_number_reads_the_same_for_100_and_803(meta_sandbox, phone_number_id):
    with pytest.raises(NumberVerificationFailed) as refused:
        verify_phone_number(phone_number_id=phone_number_id, access_token=SANDBOX_TOKEN)
    assert refused.value.reason == "unknown_number", refused.value.detail


def test_a_reply_past_its_numbers_messages_a_second_stays_queued_and_goes_in_a_later_second(
    meta_sandbox, queued, monkeypatch
):
    number = queued.conversation.number
    number.on_business_app = True  # Coexistence: 20 a second
    number.save()
    now = [5_000.5]
    frozen = functools.partial(pacing.take_send_slot, clock=lambda: now[0], sleep=lambda seconds: None)
    monkeypatch.setattr("conversations.services.outbound.take_send_slot", frozen)
    monkeypatch.setattr(pacing, "MAX_WAIT_SECONDS", 0.0)
    for _ in range(20):
        frozen(number=number)  # twenty other sends took this second

    with pytest.raises(RetryLater):
        deliver_outbound_message(message_id=queued.pk)
    queued.refresh_from_db()
    assert queued.status == MessageStatus.PENDING and queued.send_claimed_at is None
    assert sent_requests(meta_sandbox) == []

    now[0] += 1  # the next second
    assert deliver_outbound_message(message_id=queued.pk) == "sent"
    assert len(sent_requests(meta_sandbox)) == 1

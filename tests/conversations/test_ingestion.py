"""What the inbox holds after Meta's deliveries: messages of every type, reactions, statuses, contacts."""

import json
from datetime import UTC, datetime

import pytest

from contacts.models import Contact
from conversations.models import Conversation, Message, MessageStatus, MessageStatusEvent, Reaction
from conversations.services import register_sent_message
from realtime.models import Event
from sandbox.simulation import MESSAGE_TYPES, message_change, new_wamid, status_change
from tests.factories import ConversationFactory, OutboundMessageFactory
from tests.webhooks.test_payloads import PAYLOADS
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

NUMBER = {"phone_number_id": "427715309981234", "display_phone_number": "15557730142"}


def sample(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def test_text_message_creates_contact_conversation_and_message(post_webhook, number):
    post_webhook(sample("message_text.json"))
    message = Message.objects.select_related("conversation__contact").get()
    contact = message.conversation.contact
    assert (contact.wa_id, contact.user_id, contact.phone) == (
        "447700900461",
        "GB.7741902236518840217",
        "+447700900461",
    )
    assert contact.display_name == "Amara Okafor"
    assert message.direction == "in" and message.type == "text"
    raw = sample("message_text.json")["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message.timestamp == datetime.fromtimestamp(int(raw["timestamp"]), tz=UTC)
    conversation = message.conversation
    assert conversation.number == number
    assert conversation.last_message_preview == message.preview
    assert conversation.last_inbound_at == message.timestamp


@pytest.mark.parametrize(
    ("name", "message_type", "preview_part"),
    [
        ("message_image.json", "image", "Photo"),
        ("message_audio_voice.json", "audio", "Voice message"),
        ("message_video.json", "video", "Video"),
        ("message_document.json", "document", "📄"),
        ("message_sticker.json", "sticker", "Sticker"),
        ("message_location.json", "location", "📍"),
        ("message_location_pin.json", "location", "📍"),
        ("message_contacts.json", "contacts", "👤"),
        ("message_interactive_button_reply.json", "interactive", ""),
        ("message_interactive_list_reply.json", "interactive", ""),
        ("message_interactive_nfm_reply_flow.json", "interactive", "📝"),
        ("message_button_template_quick_reply.json", "button", ""),
        ("message_request_welcome.json", "request_welcome", "Opened the chat"),
        ("message_unsupported.json", "unsupported", "Unsupported message"),
        ("message_unknown_legacy.json", "unknown", "Unsupported message"),
        ("message_text_product_inquiry.json", "text", ""),
    ],
)
def test_every_inbound_type_is_stored_with_a_preview(post_webhook, number, name, message_type, preview_part):
    post_webhook(sample(name))
    message = Message.objects.get()
    assert message.type == message_type
    assert preview_part in message.preview and message.preview


def test_unsupported_message_keeps_metas_error(post_webhook, number):
    post_webhook(sample("message_unsupported.json"))
    message = Message.objects.get()
    assert message.error_code in (131051, 131060)
    assert message.error_title


def test_order_message_is_stored(deliver, number):
    deliver(message_change(**NUMBER, wa_id="447700900461", message_type="order"))
    message = Message.objects.get()
    assert message.type == "order"
    assert message.preview == "🛒 Order: 2 items"
    assert message.content["product_items"][0]["product_retailer_id"] == "sku-1"


def test_unknown_future_type_is_stored_not_dropped(deliver, number):
    deliver(message_change(**NUMBER, wa_id="447700900461", message_type="poll_vote", content={"poll_vote": {"x": 1}}))
    assert Message.objects.get().type == "poll_vote"


def test_reply_context_is_kept(post_webhook, number):
    payload = sample("message_text_reply_context.json")
    post_webhook(payload)
    expected = payload["entry"][0]["changes"][0]["value"]["messages"][0]["context"]["id"]
    assert Message.objects.get().reply_to_wamid == expected


def test_redelivery_stores_one_message(post_webhook, number):
    for _ in range(3):
        post_webhook(sample("message_text.json"))
    assert WebhookEvent.objects.count() == 3
    assert Message.objects.count() == 1
    assert Contact.objects.count() == 1
    assert Event.objects.filter(type="message.created").count() == 1


def test_thread_is_ordered_by_meta_timestamp_not_arrival(deliver, number, api):
    late, early = new_wamid(), new_wamid()
    deliver(
        message_change(
            **NUMBER, wa_id="447700900461", wamid=late, timestamp=1767262000, content={"text": {"body": "second"}}
        )
    )
    deliver(
        message_change(
            **NUMBER, wa_id="447700900461", wamid=early, timestamp=1767261000, content={"text": {"body": "first"}}
        )
    )
    conversation = Conversation.objects.get()
    texts = [m["text"] for m in api.get(f"/api/conversations/{conversation.pk}/messages/").json()["results"]]
    assert texts == ["first", "second"]
    assert conversation.last_message_preview == "second", "an older message never becomes the last one"


def test_batch_processes_every_entry_change_and_item(deliver, number):
    changes = [message_change(**NUMBER, wa_id=f"44770090{i:04d}", message_type=t) for i, t in enumerate(MESSAGE_TYPES)]
    deliver(*changes)
    assert Message.objects.count() == len(MESSAGE_TYPES)
    assert Conversation.objects.count() == len(MESSAGE_TYPES)


def test_one_bad_item_is_recorded_and_does_not_block_the_others(deliver, number):
    good = message_change(**NUMBER, wa_id="447700900461")
    bad = message_change(**NUMBER, wa_id="447700900462")
    bad["value"]["messages"][0]["timestamp"] = "not-a-time"
    also_good = status_change(**NUMBER, wamid=new_wamid(), status="sent", recipient_wa_id="447700900461")
    deliver(bad, good, also_good)
    event = WebhookEvent.objects.get()
    assert event.state == "processed"
    assert [e["path"] for e in event.item_errors] == ["entry[0].changes[0].messages[0]"]
    assert Message.objects.count() == 1
    assert MessageStatusEvent.objects.count() == 1


def test_reaction_attaches_to_its_message_and_removal_clears_it(post_webhook, number, api):
    post_webhook(sample("message_reaction.json"))
    target = sample("message_reaction.json")["entry"][0]["changes"][0]["value"]["messages"][0]["reaction"]["message_id"]
    reaction = Reaction.objects.get()
    assert reaction.message_wamid == target and reaction.emoji
    assert not Message.objects.exists(), "a reaction is not a bubble of its own"
    post_webhook(sample("message_reaction_removed.json"))
    assert Reaction.objects.get().emoji == ""


def test_older_reaction_event_does_not_override_a_newer_one(deliver, number):
    target = new_wamid()
    deliver(message_change(**NUMBER, wa_id="447700900461", message_type="text", wamid=target, timestamp=1767260000))
    newer = {"reaction": {"message_id": target, "emoji": "❤️"}}
    older = {"reaction": {"message_id": target, "emoji": "👍"}}
    deliver(
        message_change(**NUMBER, wa_id="447700900461", message_type="reaction", timestamp=1767262000, content=newer)
    )
    deliver(
        message_change(**NUMBER, wa_id="447700900461", message_type="reaction", timestamp=1767261000, content=older)
    )
    assert Reaction.objects.get().emoji == "❤️"


def test_reactions_show_on_the_message_in_the_api(deliver, number, api):
    target = new_wamid()
    deliver(message_change(**NUMBER, wa_id="447700900461", wamid=target))
    deliver(
        message_change(
            **NUMBER,
            wa_id="447700900461",
            message_type="reaction",
            content={"reaction": {"message_id": target, "emoji": "👍"}},
        )
    )
    conversation = Conversation.objects.get()
    [item] = api.get(f"/api/conversations/{conversation.pk}/messages/").json()["results"]
    assert item["reactions"] == [{"emoji": "👍", "from": "447700900461"}]


# --- statuses ---------------------------------------------------------------------------------------


@pytest.fixture
def outbound(number):
    conversation = ConversationFactory(number=number, contact__wa_id="447700900461")
    return OutboundMessageFactory(conversation=conversation, wamid=new_wamid(), status=MessageStatus.SENT)


def deliver_status(deliver, message, status, ts, **kwargs):
    deliver(
        status_change(
            **NUMBER, wamid=message.wamid, status=status, recipient_wa_id="447700900461", timestamp=ts, **kwargs
        )
    )


def test_statuses_out_of_order_end_at_the_highest(deliver, outbound):
    deliver_status(deliver, outbound, "read", 1767263000)
    deliver_status(deliver, outbound, "delivered", 1767262000)
    deliver_status(deliver, outbound, "sent", 1767261000)
    outbound.refresh_from_db()
    assert outbound.status == "read"
    assert MessageStatusEvent.objects.filter(wamid=outbound.wamid).count() == 3
    assert Event.objects.filter(type="message.status_changed").count() == 1


def test_played_outranks_read(deliver, outbound):
    deliver_status(deliver, outbound, "played", 1767263000)
    deliver_status(deliver, outbound, "read", 1767262000)
    outbound.refresh_from_db()
    assert outbound.status == "played"


def test_failed_keeps_metas_code_and_title_and_a_late_sent_does_not_unfail(deliver, outbound):
    deliver_status(deliver, outbound, "failed", 1767262000, error_code=131047, error_title="Re-engagement message")
    deliver_status(deliver, outbound, "sent", 1767261000)
    outbound.refresh_from_db()
    assert (outbound.status, outbound.error_code, outbound.error_title) == ("failed", 131047, "Re-engagement message")


def test_delivery_reported_after_a_failure_wins(deliver, outbound):
    deliver_status(deliver, outbound, "failed", 1767262000)
    deliver_status(deliver, outbound, "delivered", 1767262500)
    outbound.refresh_from_db()
    assert outbound.status == "delivered"


def test_status_for_unknown_wamid_is_kept_and_applied_when_the_message_appears(deliver, number):
    wamid = new_wamid()
    deliver(status_change(**NUMBER, wamid=wamid, status="delivered", recipient_wa_id="447700900461"))
    deliver(status_change(**NUMBER, wamid=wamid, status="sent", recipient_wa_id="447700900461"))
    assert WebhookEvent.objects.filter(item_errors=[]).count() == 2, "an unknown wamid is not an error"
    message = OutboundMessageFactory(conversation=ConversationFactory(number=number))
    register_sent_message(message=message, wamid=wamid)
    message.refresh_from_db()
    assert message.status == "delivered"


def test_sample_status_files_for_unknown_messages_are_kept(post_webhook, number):
    for name in ("status_sent.json", "status_delivered.json", "status_read.json", "status_failed_131026.json"):
        post_webhook(sample(name))
    assert MessageStatusEvent.objects.count() == 4
    failed = MessageStatusEvent.objects.get(status="failed")
    assert failed.error_code == 131026


# --- contacts ----------------------------------------------------------------------------------------


def test_username_user_without_phone_gets_a_contact(deliver, number, api):
    change = message_change(**NUMBER, wa_id=None, user_id="US.13491208655302741918", name="")
    change["value"]["contacts"][0]["profile"]["username"] = "@amara.cooks"
    deliver(change)
    contact = Contact.objects.get()
    assert contact.wa_id is None and contact.phone is None
    assert contact.display_name == "@amara.cooks"
    [item] = api.get("/api/conversations/").json()["results"]
    assert item["contact"]["phone"] is None and item["contact"]["name"] == "@amara.cooks"


def test_number_phonenumbers_calls_invalid_is_still_accepted(deliver, number):
    deliver(message_change(**NUMBER, wa_id="5215512345678"))  # Mexico's 521 form
    assert Contact.objects.get().phone == "+5215512345678"


def test_same_person_by_bsuid_and_wa_id_is_one_contact(deliver, number):
    deliver(message_change(**NUMBER, wa_id="447700900461"))
    deliver(message_change(**NUMBER, wa_id="447700900461", user_id="GB.77"))
    deliver(message_change(**NUMBER, wa_id=None, user_id="GB.77"))
    contact = Contact.objects.get()
    assert (contact.wa_id, contact.user_id) == ("447700900461", "GB.77")
    assert Message.objects.count() == 3 and Conversation.objects.count() == 1


def test_profile_name_follows_whatsapp_unless_staff_renamed(deliver, number):
    deliver(message_change(**NUMBER, wa_id="447700900461", name="Amara"))
    deliver(message_change(**NUMBER, wa_id="447700900461", name="Amara O."))
    contact = Contact.objects.get()
    assert contact.display_name == "Amara O."
    contact.custom_name = "Amara (VIP)"
    contact.save()
    deliver(message_change(**NUMBER, wa_id="447700900461", name="Amara Okafor"))
    contact.refresh_from_db()
    assert contact.profile_name == "Amara Okafor" and contact.display_name == "Amara (VIP)"


def test_bsuid_change_system_message_moves_the_contact_to_the_new_id(post_webhook, number):
    post_webhook(sample("message_text.json"))
    post_webhook(sample("message_system_user_changed_user_id.json"))
    contact = Contact.objects.get()
    assert contact.user_id == "GB.5520984417306651289"
    assert Message.objects.filter(type="system").count() == 1


def test_phone_number_change_system_message(deliver, number):
    deliver(message_change(**NUMBER, wa_id="447700900461"))
    system = {
        "system": {
            "body": "User changed from 447700900461 to 447700900999",
            "wa_id": "447700900999",
            "type": "user_changed_number",
        }
    }
    change = message_change(**NUMBER, wa_id="447700900461", message_type="system", content=system)
    del change["value"]["contacts"]
    deliver(change)
    deliver(message_change(**NUMBER, wa_id="447700900999"))
    contact = Contact.objects.get()
    assert (contact.wa_id, contact.phone) == ("447700900999", "+447700900999")
    assert Message.objects.count() == 3

"""What Meta charges for a message, as its status webhooks report it: parsed leniently, stored on the message in
the status's own writes, and shown for a template sent through the Meta sandbox."""

import json
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.models import Message, MessageStatusEvent
from conversations.services.statuses import register_sent_message
from sandbox.simulation import status_change
from tests.factories import ConversationFactory, OutboundMessageFactory
from webhooks.payloads import parse_status

pytestmark = pytest.mark.django_db

PAYLOADS = Path(__file__).parent.parent / "webhooks" / "payloads"


def sample_status() -> dict:
    body = json.loads((PAYLOADS / "status_sent_template_with_tracker.json").read_text())
    return body["entry"][0]["changes"][0]["value"]["statuses"][0]


def test_pricing_of_a_status_is_parsed_from_metas_sample():
    pricing = parse_status(sample_status()).pricing
    assert (pricing.billable, pricing.model, pricing.type, pricing.category) == (True, "PMP", "regular", "utility")


def test_unknown_pricing_values_are_kept_and_values_of_the_wrong_type_left_out():
    raw = {**sample_status(), "pricing": {"billable": "yes", "pricing_model": 7, "type": "regular",
                                          "category": "general_purpose_ai"}}  # fmt: skip
    pricing = parse_status(raw).pricing
    assert (pricing.billable, pricing.model, pricing.type, pricing.category) == (
        None,
        "",
        "regular",
        "general_purpose_ai",
    )
    assert parse_status({**sample_status(), "pricing": "regular"}).pricing is None
    assert parse_status({k: v for k, v in sample_status().items() if k != "pricing"}).pricing is None


def status(number, message, name, *, pricing=None):
    change = status_change(
        phone_number_id=number.phone_number_id,
        display_phone_number=number.display_phone_number,
        wamid=message.wamid,
        status=name,
        recipient_wa_id=message.conversation.contact.wa_id,
    )
    if pricing is not None:
        change["value"]["statuses"][0]["pricing"] = pricing
    return change


MARKETING = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}


def test_a_status_webhook_stores_its_pricing_on_the_message_in_the_same_queries(number, deliver):
    conversation = ConversationFactory(number=number)
    plain = OutboundMessageFactory(conversation=conversation, wamid="wamid.PLAIN", type="template")
    priced = OutboundMessageFactory(conversation=conversation, wamid="wamid.PRICED", type="template")
    with CaptureQueriesContext(connection) as without:
        deliver(status(number, plain, "sent"))
    with CaptureQueriesContext(connection) as with_pricing:
        deliver(status(number, priced, "sent", pricing={**MARKETING, "category": "marketing_lite_v2"}))
    assert len(with_pricing) == len(without)
    priced.refresh_from_db()
    assert (priced.status, priced.pricing_type, priced.pricing_category) == ("sent", "regular", "marketing_lite_v2")
    assert priced.pricing_billable is True and priced.pricing_model == "PMP"
    plain.refresh_from_db()
    assert plain.pricing_category == "" and plain.pricing_billable is None


def test_pricing_on_a_status_that_does_not_move_the_message_is_still_stored(number, deliver):
    message = OutboundMessageFactory(conversation=ConversationFactory(number=number), wamid="wamid.LATE")
    deliver(status(number, message, "read"))
    deliver(status(number, message, "delivered", pricing=MARKETING))
    message.refresh_from_db()
    assert (message.status, message.pricing_category) == ("read", "marketing")


def test_pricing_that_came_before_the_send_answer_is_applied_with_the_wamid(number, deliver):
    message = OutboundMessageFactory(conversation=ConversationFactory(number=number), wamid=None)
    deliver(status(number, Message(wamid="wamid.EARLY", conversation=message.conversation), "sent", pricing=MARKETING))
    assert MessageStatusEvent.objects.get(wamid="wamid.EARLY").pricing_category == "marketing"
    register_sent_message(message=message, wamid="wamid.EARLY")
    message.refresh_from_db()
    assert (message.status, message.pricing_type, message.pricing_category) == ("sent", "regular", "marketing")

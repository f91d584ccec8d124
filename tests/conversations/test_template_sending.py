"""Sending approved templates: what the composer is offered, what the API refuses, and the request that
reaches Meta (the sandbox) for headers, named and positional parameters and button values."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from conversations.models import MarketingPreference, Message, MessageStatus
from tests.factories import ContactFactory, ConversationFactory, MessageTemplateFactory

pytestmark = pytest.mark.django_db

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 300
DELIVERY = [
    {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2U=:ARb"]}},
    {
        "type": "BODY",
        "text": "Hi {{first_name}}, order {{order_number}} is on its way.",
        "example": {
            "body_text_named_params": [
                {"param_name": "first_name", "example": "Sam"},
                {"param_name": "order_number", "example": "10423"},
            ]
        },
    },
    {"type": "FOOTER", "text": "Reply STOP to opt out"},
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}",
             "example": ["https://shop.example/track/AB12"]},
            {"type": "QUICK_REPLY", "text": "Stop"},
        ],
    },
]  # fmt: skip


@pytest.fixture
def conversation(number):
    """The customer wrote two days ago: only a template may go."""
    contact = ContactFactory(wa_id="447700900461")
    return ConversationFactory(number=number, contact=contact, last_inbound_at=timezone.now() - timedelta(days=2))


def in_sandbox(sandbox, *templates):
    sandbox.configure({"templates": [
        {"id": t.meta_template_id, "name": t.name, "language": t.language, "status": t.status,
         "category": t.category, "components": t.components} for t in templates
    ]})  # fmt: skip


def sent_templates(sandbox) -> list[dict]:
    with sandbox.lock:
        return [dict(item["request"]["template"]) for item in sandbox.state.messages]


def offered(api, conversation) -> list[str]:
    response = api.get(f"/api/conversations/{conversation.pk}/templates/")
    assert response.status_code == 200
    return [t["name"] for t in response.json()["results"]]


def test_a_header_image_named_parameters_and_a_link_ending_reach_meta_in_its_shape(
    meta_sandbox, api, conversation, django_capture_on_commit_callbacks
):
    template = MessageTemplateFactory(name="order_shipped", components=DELIVERY)
    in_sandbox(meta_sandbox, template)
    [item] = api.get(f"/api/conversations/{conversation.pk}/templates/").json()["results"]
    assert [s["key"] for s in item["slots"]] == ["header", "body.first_name", "body.order_number", "button.0"]
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/conversations/{conversation.pk}/messages/",
            {
                "type": "template",
                "template": template.pk,
                "values": '{"body.first_name": "Amara", "body.order_number": "8812", "button.0": "AB12"}',
                "header_file": SimpleUploadedFile("parcel.jpg", JPEG, content_type="image/jpeg"),
            },
            format="multipart",
        )
    assert response.status_code == 202, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert message.status != MessageStatus.FAILED, (message.error_code, message.error_title)
    assert message.body == "Hi Amara, order 8812 is on its way."
    [sent] = sent_templates(meta_sandbox)
    media_id = message.media.meta_media_id
    assert media_id
    assert sent == {
        "name": "order_shipped",
        "language": {"code": "en_US"},
        "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"id": media_id}}]},
            {"type": "body", "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Amara"},
                {"type": "text", "parameter_name": "order_number", "text": "8812"},
            ]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "AB12"}]},
        ],
    }  # fmt: skip


def test_positional_parameters_a_document_link_and_a_copy_code_reach_meta_in_its_shape(
    meta_sandbox, api, conversation, django_capture_on_commit_callbacks
):
    template = MessageTemplateFactory(
        name="winter_offer",
        category="MARKETING",
        components=[
            {"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": ["4::cGRm:ARb"]}},
            {"type": "BODY", "text": "{{1}}, take {{2}} off.", "example": {"body_text": [["Sam", "20%"]]}},
            {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": "WINTER25"}]},
        ],
    )
    in_sandbox(meta_sandbox, template)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/conversations/{conversation.pk}/messages/",
            {
                "type": "template",
                "template": template.pk,
                "params": ["Amara", "25%"],
                "values": {"button.0": "AMARA25"},
                "header_link": "https://files.example/offer.pdf",
            },
            format="json",
        )
    assert response.status_code == 202, response.content
    [sent] = sent_templates(meta_sandbox)
    assert sent["components"] == [
        {"type": "header", "parameters": [
            {"type": "document", "document": {"link": "https://files.example/offer.pdf", "filename": "offer.pdf"}}
        ]},
        {"type": "body", "parameters": [{"type": "text", "text": "Amara"}, {"type": "text", "text": "25%"}]},
        {"type": "button", "sub_type": "copy_code", "index": "0",
         "parameters": [{"type": "coupon_code", "coupon_code": "AMARA25"}]},
    ]  # fmt: skip


def test_a_missing_value_is_refused_naming_it_and_nothing_is_queued(api, conversation):
    template = MessageTemplateFactory(components=DELIVERY)
    response = api.post(
        f"/api/conversations/{conversation.pk}/messages/",
        {"type": "template", "template": template.pk, "values": {"body.first_name": "Amara"},
         "header_link": "https://files.example/a.jpg"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "template_params"
    assert "order_number" in response.json()["error"]["detail"]
    assert not Message.objects.filter(conversation=conversation).exists()


def test_a_paused_template_is_not_offered_and_the_api_refuses_it(api, conversation):
    MessageTemplateFactory(name="still_fine")
    paused = MessageTemplateFactory(name="paused_one", status="PAUSED")
    assert offered(api, conversation) == ["still_fine"]
    response = api.post(
        f"/api/conversations/{conversation.pk}/messages/", {"type": "template", "template": paused.pk}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "template_not_approved"
    assert not Message.objects.filter(conversation=conversation).exists()


def test_a_customer_who_stopped_marketing_is_not_offered_marketing_templates_and_the_api_refuses_them(
    api, conversation
):
    MessageTemplateFactory(name="receipt", category="UTILITY")
    sale = MessageTemplateFactory(name="big_sale", category="MARKETING")
    assert offered(api, conversation) == ["big_sale", "receipt"]
    MarketingPreference.objects.create(
        number=conversation.number, contact=conversation.contact, opted_out=True, changed_at=timezone.now()
    )
    assert offered(api, conversation) == ["receipt"]
    response = api.post(
        f"/api/conversations/{conversation.pk}/messages/", {"type": "template", "template": sale.pk}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "marketing_opted_out"


def test_stopping_marketing_on_another_number_leaves_this_one_offered(api, conversation):
    MessageTemplateFactory(name="big_sale", category="MARKETING")
    other = ConversationFactory(contact=conversation.contact)
    MarketingPreference.objects.create(
        number=other.number, contact=conversation.contact, opted_out=True, changed_at=timezone.now()
    )
    assert offered(api, conversation) == ["big_sale"]

"""Creating, editing and deleting templates at Meta (the sandbox) through the API: the creation JSON Meta
receives for each component kind, refusals naming the field with nothing stored, and who may do it."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations.models import MemberRole, MessageTemplate, NumberMembership
from tests.conversations.team import as_user
from tests.factories import BusinessNumberFactory, MessageTemplateFactory

pytestmark = pytest.mark.django_db

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 300


@pytest.fixture
def sue(team):
    return as_user(team["sue"])


@pytest.fixture
def sandboxed(meta_sandbox, number, settings):
    settings.META_APP_ID = "1234567890"
    meta_sandbox.configure({"waba_id": number.waba_id, "templates": []})
    return meta_sandbox


def created_json(sandbox) -> list[dict]:
    with sandbox.lock:
        return [
            r["json"]
            for r in sandbox.state.requests
            if r["method"] == "POST" and r["path"].split("?")[0].endswith("/message_templates")
        ]


def url(number, template=None):
    return f"/api/numbers/{number.pk}/templates/" + (f"{template.pk}/" if template else "")


def test_text_header_named_body_footer_and_each_button_reach_meta_as_documented(sandboxed, sue, number):
    definition = {
        "name": "order_update", "language": "en_GB", "category": "MARKETING",
        "header": {"format": "TEXT", "text": "Order {{order}}", "example": {"order": "8812"}},
        "body": {"text": "Hi {{first_name}}, your order ships today.", "examples": {"first_name": "Amara"}},
        "footer": "Reply STOP to opt out",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "Stop"},
            {"type": "URL", "text": "Track", "url": "https://x.example/track/{{1}}", "example": "https://x.example/track/AB12"},
            {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+447700900461"},
            {"type": "COPY_CODE", "example": "WINTER25"},
        ],
    }  # fmt: skip
    response = sue.post(url(number), definition, format="json")
    assert response.status_code == 201, response.content
    assert created_json(sandboxed) == [{
        "name": "order_update", "language": "en_GB", "category": "MARKETING", "parameter_format": "named",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{order}}",
             "example": {"header_text_named_params": [{"param_name": "order", "example": "8812"}]}},
            {"type": "BODY", "text": "Hi {{first_name}}, your order ships today.",
             "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Amara"}]}},
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop"},
                {"type": "URL", "text": "Track", "url": "https://x.example/track/{{1}}",
                 "example": ["https://x.example/track/AB12"]},
                {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+447700900461"},
                {"type": "COPY_CODE", "example": "WINTER25"},
            ]},
        ],
    }]  # fmt: skip
    stored = MessageTemplate.objects.get(name="order_update")
    assert stored.status == "PENDING" and stored.meta_template_id == response.json()["meta_template_id"]


def test_an_image_header_goes_through_the_resumable_upload_and_a_positional_body_as_documented(sandboxed, sue, number):
    definition = {
        "name": "summer_sale", "language": "en_US", "category": "MARKETING",
        "header": {"format": "IMAGE"},
        "body": {"text": "{{1}} off until {{2}}.", "examples": ["20%", "Sunday"]},
    }  # fmt: skip
    response = sue.post(
        url(number),
        {
            "definition": json.dumps(definition),
            "header_file": SimpleUploadedFile("s.jpg", JPEG, content_type="image/jpeg"),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    [sent] = created_json(sandboxed)
    [handle] = sent["components"][0]["example"]["header_handle"]
    assert sent["parameter_format"] == "positional"
    assert sent["components"] == [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": [handle]}},
        {"type": "BODY", "text": "{{1}} off until {{2}}.", "example": {"body_text": [["20%", "Sunday"]]}},
    ]
    with sandboxed.lock:
        assert handle in sandboxed.state.samples


@pytest.mark.parametrize(("change", "field"), [
    ({"body": {"text": "Hi {{1}} and {{2}}", "examples": ["Amara"]}}, "body.examples"),
    ({"category": "NEWSLETTER"}, "category"),
    ({"name": "Order Update"}, "name"),
    ({"footer": "x" * 61}, "footer"),
    ({"buttons": [{"type": "QUICK_REPLY", "text": f"r{i}"} for i in range(11)]}, "buttons"),
])  # fmt: skip
def test_bad_input_is_refused_naming_the_field_and_nothing_reaches_meta_or_is_stored(
    sandboxed, sue, number, change, field
):
    definition = {"name": "hello", "language": "en_US", "category": "UTILITY", "body": {"text": "Hello"}} | change
    response = sue.post(url(number), definition, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert created_json(sandboxed) == [] and not MessageTemplate.objects.exists()


def test_a_header_image_over_metas_size_is_refused_naming_the_file(sandboxed, sue, number):
    big = SimpleUploadedFile("big.jpg", JPEG + b"\x00" * (5 * 1024 * 1024), content_type="image/jpeg")
    definition = {"name": "big", "language": "en_US", "category": "MARKETING", "header": {"format": "IMAGE"},
                  "body": {"text": "Look"}}  # fmt: skip
    response = sue.post(url(number), {"definition": json.dumps(definition), "header_file": big}, format="multipart")
    assert response.status_code == 400
    assert "header.file" in response.json()["error"]["fields"]
    assert not MessageTemplate.objects.exists()


def test_meta_refusing_a_duplicate_shows_metas_words_and_stores_nothing(sandboxed, sue, number):
    sandboxed.configure({"templates": [{"name": "hello", "language": "en_US"}]})
    definition = {"name": "hello", "language": "en_US", "category": "UTILITY", "body": {"text": "Hello"}}
    response = sue.post(url(number), definition, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "meta_refused"
    assert "already exists" in response.json()["error"]["detail"]
    assert not MessageTemplate.objects.exists()


def test_editing_and_deleting_reach_meta(sandboxed, sue, number):
    definition = {"name": "hello", "language": "en_US", "category": "UTILITY", "body": {"text": "Hello"}}
    created = sue.post(url(number), definition, format="json").json()
    template = MessageTemplate.objects.get(meta_template_id=created["meta_template_id"])
    assert sue.post(url(number, template), definition, format="json").json()["error"]["code"] == "template_not_editable"
    MessageTemplate.objects.filter(pk=template.pk).update(status="REJECTED")
    sandboxed.configure({"templates": [{"id": template.meta_template_id, "name": "hello", "language": "en_US",
                                        "status": "REJECTED"}]})  # fmt: skip
    edited = sue.post(url(number, template), definition | {"body": {"text": "Hello there"}}, format="json")
    assert edited.status_code == 200, edited.content
    assert edited.json()["template"]["status"] == "PENDING" and edited.json()["template"]["body"] == "Hello there"
    assert sue.delete(url(number, template)).status_code == 204
    assert not MessageTemplate.objects.exists()
    with sandboxed.lock:
        assert sandboxed.config.templates == []


def test_an_agent_gets_403_and_another_numbers_supervisor_404(sandboxed, team, number):
    other = BusinessNumberFactory()
    NumberMembership.objects.filter(user=team["olga"]).update(role=MemberRole.SUPERVISOR)
    template = MessageTemplateFactory()
    definition = {"name": "hello", "language": "en_US", "category": "UTILITY", "body": {"text": "Hello"}}
    agent, outsider = as_user(team["ana"]), as_user(team["olga"])
    assert agent.get(url(number)).status_code == 403
    assert agent.post(url(number), definition, format="json").status_code == 403
    assert agent.delete(url(number, template)).status_code == 403
    for response in (outsider.get(url(number)), outsider.post(url(number), definition, format="json"),
                     outsider.delete(url(number, template))):  # fmt: skip
        assert response.status_code == 404
    assert other.pk != number.pk and created_json(sandboxed) == [] and MessageTemplate.objects.count() == 1


def approve(sandbox, template):
    """Meta approved it (the sandbox's copy and ours)."""
    MessageTemplate.objects.filter(pk=template.pk).update(status="APPROVED")
    with sandbox.lock:
        next(t for t in sandbox.config.templates if t["id"] == template.meta_template_id)["status"] = "APPROVED"


def test_an_approved_template_edited_twice_in_a_day_is_refused_with_metas_reason_and_kept(sandboxed, sue, number):
    definition = {"name": "hello", "language": "en_US", "category": "UTILITY", "body": {"text": "Hello"}}
    template = MessageTemplate.objects.get(
        meta_template_id=sue.post(url(number), definition, format="json").json()["meta_template_id"]
    )
    approve(sandboxed, template)
    assert (
        sue.post(url(number, template), definition | {"body": {"text": "Hello there"}}, format="json").status_code
        == 200
    )
    approve(sandboxed, template)  # reviewed again, the same day

    refused = sue.post(url(number, template), definition | {"body": {"text": "Hi there"}}, format="json")

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "meta_refused"
    assert "once a day and 10 times in 30 days" in refused.json()["error"]["detail"]
    template.refresh_from_db()
    assert (template.status, template.body_text) == ("APPROVED", "Hello there")

"""A template's life in the browser: a supervisor writes it on the number's Templates page (the preview follows
the typing), Meta (the sandbox) approves it with its signed webhook, the row turns approved live, and an agent
in another browser sends it from the composer with its values; Meta receives it in its own shape. Headless
Chromium against real Daphne, Celery, PostgreSQL, Redis and the Meta sandbox."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from conversations.models import MemberRole, MessageTemplate, NumberMembership
from sandbox.customers import png_bytes
from tests.e2e import test_inbox_access as inbox
from tests.e2e.conftest import logged_in_page, sandbox_stack_overrides, staff_member, wait_for
from tests.e2e.test_inbox_access import assert_meets_wcag, open_page
from tests.factories import ContactFactory, ConversationFactory, MessageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

stack_overrides = sandbox_stack_overrides
# The sandbox as the inbox tests have it: the customers' reply windows taken as open.
sandbox_config = inbox.sandbox_config


def test_a_template_written_on_the_page_is_approved_live_and_sent_from_the_composer(
    stack, browser, axe, sandbox, number
):
    boss = staff_member("sam", number)
    NumberMembership.objects.filter(user=boss, number=number).update(role=MemberRole.SUPERVISOR)
    at = datetime.now(UTC) - timedelta(minutes=5)
    conversation = ConversationFactory(
        number=number, contact=ContactFactory(profile_name="Amara Okafor"), last_message_at=at, last_inbound_at=at
    )
    MessageFactory(conversation=conversation, body="Where is my parcel?", preview="Where is my parcel?", timestamp=at)

    page = open_page(logged_in_page(browser, stack.base_url, boss, bypass_csp=True), f"/numbers/{number.pk}/templates/")
    expect(page.locator("#templates-empty")).to_be_visible()
    page.get_by_role("button", name="New template").click()
    page.get_by_label("Name", exact=True).fill("parcel_update")
    page.get_by_label("Language", exact=True).fill("en_GB")
    page.get_by_label("Body:").fill("Hi {{first_name}}, your parcel arrives {{day}}.")
    page.get_by_label("Example for {{first_name}}").fill("Amara")
    expect(page.locator("#tpl-preview .template-preview-body")).to_have_text("Hi Amara, your parcel arrives {{day}}.")
    page.get_by_label("Example for {{day}}").fill("on Friday")
    page.get_by_label("Footer", exact=True).fill("Reply STOP to opt out")
    page.locator("#tpl-add-button-kind").select_option("QUICK_REPLY")
    page.get_by_role("button", name="Add button").click()
    page.get_by_label("Button label", exact=True).fill("Thanks")
    preview = page.locator("#tpl-preview")
    expect(preview.locator(".template-preview-body")).to_have_text("Hi Amara, your parcel arrives on Friday.")
    expect(preview.locator(".template-preview-footer")).to_have_text("Reply STOP to opt out")
    expect(preview.locator(".template-preview-button")).to_have_text(["Thanks"])
    assert_meets_wcag(page, axe)

    page.get_by_role("button", name="Submit to Meta").click()
    row = page.locator("#template-rows tr", has_text="parcel_update")
    expect(row.locator('[data-cell="status"]')).to_have_text("PENDING")
    expect(page.locator("#template-editor")).to_be_hidden()

    sandbox.control("POST", "template_status", {"name": "parcel_update", "language": "en_GB", "event": "APPROVED"})
    expect(row.locator('[data-cell="status"]')).to_have_text("APPROVED", timeout=5000)
    assert MessageTemplate.objects.get(name="parcel_update").status == "APPROVED"

    agent = open_page(
        logged_in_page(browser, stack.base_url, staff_member("ana", number), bypass_csp=True),
        f"/inbox/{conversation.pk}/",
    )
    agent.locator("#show-templates").click()
    agent.locator("#template-select").select_option(label="parcel_update (en_GB)")
    agent.get_by_label("{{first_name}}", exact=True).fill("Amara")
    agent.get_by_label("{{day}}", exact=True).fill("tomorrow")
    expect(agent.locator("#template-body .template-preview-body")).to_have_text(
        "Hi Amara, your parcel arrives tomorrow."
    )
    assert_meets_wcag(agent, axe)
    agent.get_by_role("button", name="Send template").click()

    def sent_template():
        return [m for m in sandbox.sent() if m.get("type") == "template"]

    (sent,) = wait_for(sent_template, what="the template at Meta")
    sent = sent["request"]
    assert sent["to"].lstrip("+") == conversation.contact.wa_id
    assert sent["template"]["name"] == "parcel_update"
    assert sent["template"]["language"] == {"code": "en_GB"}
    assert sent["template"]["components"] == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Amara"},
                {"type": "text", "parameter_name": "day", "text": "tomorrow"},
            ],
        }
    ]
    for opened in (page, agent):
        opened.context.close()


def test_a_template_with_an_image_header_is_uploaded_then_edited_and_deleted_at_meta(
    stack, browser, axe, sandbox, number, tmp_path
):
    boss = staff_member("sam", number)
    NumberMembership.objects.filter(user=boss, number=number).update(role=MemberRole.SUPERVISOR)
    photo = tmp_path / "parcel.png"
    photo.write_bytes(png_bytes(rng=random.Random(5)))

    page = open_page(logged_in_page(browser, stack.base_url, boss, bypass_csp=True), f"/numbers/{number.pk}/templates/")
    page.get_by_role("button", name="New template").click()
    page.get_by_label("Name", exact=True).fill("parcel_photo")
    page.get_by_label("Language", exact=True).fill("en_GB")
    page.get_by_label("Header", exact=True).select_option("IMAGE")
    page.get_by_label("Sample file").set_input_files(str(photo))
    page.get_by_label("Body:").fill("Your parcel is on its way.")
    page.get_by_role("button", name="Submit to Meta").click()
    row = page.locator("#template-rows tr", has_text="parcel_photo")
    expect(row.locator('[data-cell="status"]')).to_have_text("PENDING")

    requests_seen = sandbox.control("GET", "requests")
    uploads = [r for r in requests_seen if r["method"] == "POST" and "/uploads" in r["path"]]
    created = [
        r for r in requests_seen if r["method"] == "POST" and r["path"].split("?")[0].endswith("/message_templates")
    ]
    assert uploads, "the sample went up by Meta's Resumable Upload"
    [header] = [c for c in created[-1]["json"]["components"] if c["type"] == "HEADER"]
    assert header["format"] == "IMAGE" and header["example"]["header_handle"][0]

    sandbox.control("POST", "template_status", {"name": "parcel_photo", "language": "en_GB", "event": "APPROVED"})
    expect(row.locator('[data-cell="status"]')).to_have_text("APPROVED", timeout=5000)

    page.get_by_role("button", name="Edit parcel_photo (en_GB)").click()
    expect(page.get_by_label("Body:")).to_have_value("Your parcel is on its way.")
    page.get_by_label("Body:").fill("Your parcel left the warehouse.")
    page.get_by_label("Header", exact=True).select_option("")  # the edit drops the photo
    page.get_by_role("button", name="Submit the changes to Meta").click()
    expect(row.locator('[data-cell="status"]')).to_have_text("PENDING")
    template = MessageTemplate.objects.get(name="parcel_photo")
    edits = [
        r
        for r in sandbox.control("GET", "requests")
        if r["method"] == "POST" and r["path"].split("?")[0].endswith(f"/{template.meta_template_id}")
    ]
    assert [c["type"] for c in edits[-1]["json"]["components"]] == ["BODY"]
    assert_meets_wcag(page, axe)

    page.get_by_role("button", name="Delete parcel_photo (en_GB)").click()
    dialog = page.get_by_role("dialog", name="Delete this template?")
    expect(dialog).to_contain_text("parcel_photo (en_GB) is deleted at Meta")
    dialog.get_by_role("button", name="Delete at Meta").click()
    expect(row).to_have_count(0)
    assert not MessageTemplate.objects.filter(name="parcel_photo").exists()
    deletes = [r for r in sandbox.control("GET", "requests") if r["method"] == "DELETE"]
    assert "name=parcel_photo" in deletes[-1]["path"]
    page.context.close()

"""Replying across real processes, with the Meta sandbox as a real server: sends of every type, Meta's
error codes, retries without double sends, the window, media both ways, read receipts and typing."""

import base64
import hashlib
import subprocess
import sys
import time

import pytest
import requests
from playwright.sync_api import expect

from conversations.models import BusinessNumber, Conversation, MediaFile, Message, MessageTemplate
from tests.e2e.conftest import (
    NUMBER,
    ROOT,
    SANDBOX_TOKEN,
    WABA,
    Api,
    logged_in_page,
    sandbox_stack_overrides,
    staff_member,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


# The stack with the Meta sandbox as its Graph API (tests/e2e/conftest.py).
stack_overrides = sandbox_stack_overrides


@pytest.fixture
def conversation(sandbox, number, api) -> Conversation:
    """A customer wrote in through the sandbox: the window is open on both sides."""
    sandbox.customer_writes(text="Hi, where is my order?")
    return wait_for(lambda: Conversation.objects.first(), what="the customer's conversation")


def message_in(conversation_id: int, message_id: int, api: Api) -> dict:
    return next(m for m in api.messages(conversation_id) if m["id"] == message_id)


def wait_status(api: Api, conversation: Conversation, message_id: int, status: str, timeout: float = 15) -> dict:
    return wait_for(
        lambda: (m := message_in(conversation.pk, message_id, api))["status"] == status and m,
        timeout=timeout,
        what=f"message {message_id} to be {status}",
    )


def test_text_reply_goes_pending_then_sent_delivered_read(sandbox, api, conversation):
    response = api.send(conversation.pk, type="text", text="It ships today 📦")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    message_id = response.json()["id"]
    item = wait_status(api, conversation, message_id, "read")
    [sent] = sandbox.sent()
    assert sent["wamid"] == item["wamid"]
    assert sent["to"] == "+447700900461"
    assert sent["request"]["text"]["body"] == "It ships today 📦"
    assert sent["biz_opaque_callback_data"] == str(Message.objects.get(pk=message_id).idempotency_key)


def test_reply_context_reaction_and_template(sandbox, api, conversation):
    customer_wamid = Message.objects.get(direction="in").wamid
    reply = api.send(conversation.pk, type="text", text="Let me check", reply_to=customer_wamid).json()
    reaction = api.send(conversation.pk, type="reaction", message=customer_wamid, emoji="👍").json()
    template = MessageTemplate.objects.create(
        waba_id=WABA,
        name="order_update",
        language="en_US",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}],
    )
    sandbox.configure(
        templates=[
            {
                "name": "order_update",
                "language": "en_US",
                "status": "APPROVED",
                "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}],
            }
        ]
    )
    templated = api.send(conversation.pk, type="template", template=template.pk, params=["Amara", "#42"]).json()
    wait_for(lambda: len(sandbox.sent()) == 3, what="three sends")
    by_type = {s["type"]: s for s in sandbox.sent()}
    assert by_type["text"]["context"] == customer_wamid
    assert by_type["reaction"]["request"]["reaction"] == {"message_id": customer_wamid, "emoji": "👍"}
    assert by_type["template"]["request"]["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Amara"},
        {"type": "text", "text": "#42"},
    ]
    wait_status(api, conversation, reply["id"], "read")
    wait_status(api, conversation, templated["id"], "read")
    # The business's reaction shows under the customer's message; it is not a bubble of its own.
    thread = api.messages(conversation.pk)
    assert reaction["id"] not in [m["id"] for m in thread]
    assert {"emoji": "👍", "from": "business"} in next(m for m in thread if m["wamid"] == customer_wamid)["reactions"]


@pytest.mark.parametrize(
    ("code", "mode", "expected_title"),
    [
        (131026, "sync", "Message undeliverable"),
        (131026, "async", "Message undeliverable"),
        (131009, "sync", None),
    ],
)
def test_permanent_errors_fail_the_message_with_metas_code(sandbox, api, conversation, code, mode, expected_title):
    sandbox.configure(fail_next={"code": code, "mode": mode})
    message_id = api.send(conversation.pk, type="text", text="hello").json()["id"]
    item = wait_status(api, conversation, message_id, "failed")
    assert item["error"]["code"] == code
    if expected_title:
        assert expected_title in item["error"]["title"]
    assert len(sandbox.sent()) <= 1


def test_closed_window_on_metas_side_fails_with_131047_and_asks_for_a_template(sandbox, api, conversation, number):
    sandbox.control("POST", "window", {**NUMBER, "wa_id": "447700900461", "last_inbound_at": time.time() - 25 * 3600})
    message_id = api.send(conversation.pk, type="text", text="Still there?").json()["id"]
    item = wait_status(api, conversation, message_id, "failed")
    assert item["error"]["code"] == 131047


def test_our_closed_window_refuses_free_text_and_templates_go(sandbox, api, conversation):
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=conversation.last_inbound_at.replace(year=2025)
    )
    response = api.send(conversation.pk, type="text", text="hello?")
    assert response.status_code == 409 and response.json()["error"]["code"] == "window_closed"
    template = MessageTemplate.objects.create(
        waba_id=WABA,
        name="hello_world",
        language="en_US",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Hello World"}],
    )
    message_id = api.send(conversation.pk, type="template", template=template.pk, params=[]).json()["id"]
    wait_status(api, conversation, message_id, "read")
    assert sandbox.sent()[0]["type"] == "template"


@pytest.mark.parametrize(
    "failure",
    [
        {"server_error_next": 2},
        {"rate_limit_mps": 0},
        {"fail_next": {"code": 131056, "count": 2}},  # pair rate limit
        {"fail_next": {"code": 80007, "count": 1}},  # WABA rate limit
        {"fail_next": {"code": 131000, "count": 1}},  # Meta's "something went wrong"
    ],
)
def test_transient_errors_retry_and_never_send_twice(sandbox, api, conversation, failure):
    if "rate_limit_mps" in failure:
        sandbox.configure(rate_limit_mps=1)
        # Fill this second's budget so the reply meets Meta's 130429, then is retried after backoff.
        requests.post(
            f"{sandbox.base_url}/v23.0/{NUMBER['phone_number_id']}/messages",
            headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
            timeout=5,
            json={
                "messaging_product": "whatsapp",
                "to": "+447700900461",
                "type": "template",
                "template": {"name": "hello_world", "language": {"code": "en_US"}},
            },
        )
    else:
        sandbox.configure(**failure)
    message_id = api.send(conversation.pk, type="text", text="retry me").json()["id"]
    wait_status(api, conversation, message_id, "read", timeout=30)
    texts = [s for s in sandbox.sent() if s["type"] == "text" and s["outcome"] == "accepted"]
    assert len(texts) == 1, "exactly one accepted send, whatever the retries"
    assert Message.objects.get(pk=message_id).send_attempts >= 2


@pytest.mark.parametrize(
    ("name", "mime_type", "content", "kind"),
    [
        ("terms.pdf", "application/pdf", b"%PDF-1.4\n%test\n", "document"),
        ("note.ogg", "audio/ogg", b"OggS" + b"\0" * 60, "audio"),
        ("clip.mp4", "video/mp4", b"\0\0\0\x18ftypmp42" + b"\0" * 60, "video"),
    ],
)
def test_every_media_kind_is_sent_by_id(sandbox, api, conversation, name, mime_type, content, kind):
    sandbox.configure(sniff_media=False)
    response = api.send(conversation.pk, data={"caption": "here"}, files={"file": (name, content, mime_type)})
    assert response.status_code == 202, response.text
    wait_status(api, conversation, response.json()["id"], "read")
    [sent] = sandbox.sent()
    assert sent["type"] == kind and sent["request"][kind]["id"]
    if kind == "document":
        assert sent["request"]["document"]["filename"] == name


def test_sync_templates_command_against_the_sandbox(sandbox, number, stack):
    sandbox.configure(
        templates=[
            {
                "name": "order_update",
                "language": "en_US",
                "status": "APPROVED",
                "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}],
            },
            {
                "name": "promo",
                "language": "pt_BR",
                "status": "REJECTED",
                "category": "MARKETING",
                "components": [{"type": "BODY", "text": "Oferta"}],
            },
        ]
    )
    MessageTemplate.objects.create(waba_id=WABA, name="gone", language="en_US", status="APPROVED")
    result = subprocess.run(
        [sys.executable, "manage.py", "sync_templates"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "  synced 1/1 numbers, 100%, " in result.stdout  # not on a terminal: plain progress lines
    assert "2 template(s) from 1 of 1 number(s)." in result.stdout
    assert set(MessageTemplate.objects.values_list("name", "status")) == {
        ("order_update", "APPROVED"),
        ("promo", "REJECTED"),
    }
    bad = subprocess.run(
        [sys.executable, "manage.py", "sync_templates", "--number", "000"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "unknown phone_number_id" in bad.stderr


def test_expired_token_flags_the_number_for_reauthorization(sandbox, api, conversation, number):
    sandbox.configure(expire_token=True)
    message_id = api.send(conversation.pk, type="text", text="hello").json()["id"]
    item = wait_status(api, conversation, message_id, "failed")
    assert item["error"]["code"] == 190
    assert BusinessNumber.objects.get(pk=number.pk).needs_reauthorization
    refused = api.send(conversation.pk, type="text", text="again")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "reauthorization_required"


def test_outbound_media_is_uploaded_then_sent_by_id(sandbox, api, conversation):
    response = api.send(
        conversation.pk, data={"caption": "Your parcel"}, files={"file": ("parcel.png", PNG, "image/png")}
    )
    assert response.status_code == 202, response.text
    item = wait_status(api, conversation, response.json()["id"], "read")
    [sent] = sandbox.sent()
    assert sent["type"] == "image" and sent["request"]["image"]["caption"] == "Your parcel"
    media_id = sent["request"]["image"]["id"]
    info = requests.get(
        f"{sandbox.base_url}/v23.0/{media_id}", headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}, timeout=5
    ).json()
    assert info["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert item["media"]["state"] == "ready"


def test_inbound_media_is_downloaded_verified_and_served_to_members(sandbox, api, conversation, stack):
    sandbox.customer_writes(
        media={
            "type": "image",
            "mime_type": "image/png",
            "data_base64": base64.b64encode(PNG).decode(),
            "caption": "broken",
        }
    )
    media = wait_for(lambda: MediaFile.objects.filter(state="ready").first(), what="media downloaded")
    assert media.message.body == "broken"
    media_url = f"{stack.base_url}/media/{media.message_id}/"
    assert requests.get(media_url, allow_redirects=False, timeout=10).status_code == 302, "no public URL"
    browser = requests.Session()  # a staff member's browser session
    browser.get(f"{stack.base_url}/login/", timeout=10)
    browser.post(
        f"{stack.base_url}/login/",
        timeout=10,
        data={"username": "e2e-admin", "password": "pw-for-tests", "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
    )
    response = browser.get(media_url, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert response.content == PNG


def test_inbound_media_with_a_wrong_sha256_is_rejected(sandbox, api, conversation):
    sandbox.customer_writes(
        media={"type": "image", "mime_type": "image/png", "data_base64": base64.b64encode(PNG).decode()},
        corrupt_sha256=True,
    )
    media = wait_for(lambda: MediaFile.objects.filter(state="failed").first(), timeout=30, what="media refused")
    assert "sha256 mismatch" in media.error
    assert not media.file
    [item] = [m for m in api.messages(conversation.pk) if m["type"] == "image"]
    assert item["media"]["state"] == "failed" and item["media"]["url"] is None


def test_opening_the_conversation_sends_a_read_receipt(sandbox, api, conversation, stack):
    customer_wamid = Message.objects.get(direction="in").wamid
    assert (
        api.session.post(f"{stack.base_url}/api/conversations/{conversation.pk}/read/", timeout=10).status_code == 200
    )
    read = wait_for(lambda: sandbox.reads(), what="read receipt")
    assert read[0]["message_id"] == customer_wamid and not read[0]["typing_indicator"]


# --- in the browser ------------------------------------------------------------------------------------


def test_composer_reply_shows_pending_then_ticks_driven_by_metas_webhooks(
    sandbox, api, conversation, browser, stack, number
):
    sandbox.configure(status_delay=1.0)
    page = open_conversation(browser, stack, number, conversation)
    page.locator("#composer-input").fill("It ships today")
    page.locator("#composer-input").press("Enter")
    bubble = page.locator(".message-out", has_text="It ships today")
    ticks = bubble.locator(".ticks")
    expect(ticks).to_have_attribute("data-status", "pending")
    expect(page.locator("#composer-input")).to_have_value("")
    for status in ("sent", "delivered", "read"):
        expect(ticks).to_have_attribute("data-status", status, timeout=10000)
    assert [s["request"]["text"]["body"] for s in sandbox.sent()] == ["It ships today"]


def test_shift_enter_adds_a_line_and_reply_and_react_from_the_bubble(
    sandbox, api, conversation, browser, stack, number
):
    page = open_conversation(browser, stack, number, conversation)
    customer = page.locator(".message-in").first
    customer.hover()
    customer.locator(".action-reply").click()
    expect(page.locator("#reply-preview")).to_be_visible()
    composer = page.locator("#composer-input")
    composer.type("Line one")
    composer.press("Shift+Enter")
    composer.type("Line two")
    composer.press("Enter")
    reply = page.locator(".message-out").last
    expect(reply.locator(".content")).to_have_text("Line one\nLine two")
    expect(reply.locator(".quote")).to_have_text("Hi, where is my order?")
    customer.hover()
    customer.locator(".action-react", has_text="❤️").click()
    expect(customer.locator(".reaction")).to_have_text("❤️")
    wait_for(lambda: {s["type"] for s in sandbox.sent()} == {"text", "reaction"}, what="reply and reaction sent")
    assert next(s for s in sandbox.sent() if s["type"] == "text")["context"] == customer.get_attribute("data-wamid")


def test_outside_the_window_the_composer_offers_templates_only(sandbox, api, browser, stack, number):
    sandbox.customer_writes(text="Are you open on Sunday?", timestamp=int(time.time()) - 25 * 3600)
    conversation = wait_for(lambda: Conversation.objects.first(), what="a conversation from yesterday")
    MessageTemplate.objects.create(
        waba_id=WABA,
        name="order_update",
        language="en_US",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}],
    )
    sandbox.configure(
        templates=[
            {
                "name": "order_update",
                "language": "en_US",
                "status": "APPROVED",
                "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}],
            }
        ]
    )
    page = open_conversation(browser, stack, number, conversation)
    expect(page.locator("#window-state")).to_contain_text("only templates")
    expect(page.locator("#free-form")).to_be_hidden()
    expect(page.locator("#template-form")).to_be_visible()
    expect(page.locator("#template-body")).to_have_text("Hi {{1}}, order {{2}} has shipped.")
    params = page.locator(".template-param")
    expect(params).to_have_count(2)
    params.nth(0).fill("Amara")
    params.nth(1).fill("#42")
    page.locator("#send-template").click()
    bubble = page.locator(".message-out", has_text="Hi Amara, order #42 has shipped.")
    expect(bubble.locator(".ticks")).to_have_attribute("data-status", "read", timeout=10000)
    # The customer answers: the window opens in the page as their message arrives, without a reload.
    sandbox.customer_writes(text="Thanks, see you then")
    expect(page.locator(".message-in", has_text="Thanks, see you then")).to_be_visible(timeout=10000)
    expect(page.locator("#window-state")).to_contain_text("Reply window open")
    expect(page.locator("#free-form")).to_be_visible()


def test_values_typed_into_a_template_survive_live_updates_that_came_while_templates_loaded(
    sandbox, api, browser, stack, number
):
    # Each live update re-checks the reply window and asked for the templates again while none had arrived; the
    # later load rebuilt the inputs empty after the agent had typed ("This template needs 2 value(s)").
    sandbox.customer_writes(text="Are you open on Sunday?", timestamp=int(time.time()) - 25 * 3600)
    conversation = wait_for(lambda: Conversation.objects.first(), what="a conversation from yesterday")
    MessageTemplate.objects.create(
        waba_id=WABA,
        name="order_update",
        language="en_US",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}],
    )
    page = logged_in_page(browser, stack.base_url, staff_member("ana", number))
    held = []
    page.route(
        "**/templates/", lambda route: held.append(route)
    )  # every load of the templates waits until released below
    page.goto(f"/inbox/{conversation.pk}/")
    expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
    sandbox.customer_writes(text="And on Monday?", timestamp=int(time.time()) - 25 * 3600 + 60)
    expect(page.locator(".message-in", has_text="And on Monday?")).to_be_visible(timeout=10000)
    expect(page.locator("#window-state")).to_contain_text("only templates")
    assert len(held) == 1
    held[0].continue_()
    params = page.locator(".template-param")
    expect(params).to_have_count(2)
    params.nth(0).fill("Amara")
    params.nth(1).fill("#42")
    page.locator("#send-template").click()
    expect(page.locator(".message-out", has_text="Hi Amara, order #42 has shipped.")).to_be_visible(timeout=10000)
    assert len(held) == 1


def test_a_draft_survives_a_reload_of_the_tab_until_it_is_sent(sandbox, api, conversation, browser, stack, number):
    # The server reloads a tab itself: after too long offline, and when the agent's access to numbers changes.
    page = open_conversation(browser, stack, number, conversation)
    composer = page.locator("#composer-input")
    composer.fill("Let me check the courier's")
    page.reload()
    expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
    expect(composer).to_have_value("Let me check the courier's")
    composer.press("End")
    composer.type(" tracking page")
    composer.press("Enter")
    expect(page.locator(".message-out", has_text="Let me check the courier's tracking page")).to_be_visible(
        timeout=10000
    )
    expect(composer).to_have_value("")
    page.reload()
    expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
    expect(composer).to_have_value("")


def test_attaching_a_file_too_large_is_refused_in_the_browser_and_a_good_one_is_sent(
    sandbox, api, conversation, browser, stack, number, tmp_path
):
    page = open_conversation(browser, stack, number, conversation)
    big = tmp_path / "huge.png"
    big.write_bytes(PNG + b"\0" * (5 * 1024 * 1024))
    page.locator("#attach-input").set_input_files(str(big))
    expect(page.locator("#composer-error")).to_have_text("WhatsApp limits images to 5 MB.")
    good = tmp_path / "parcel.png"
    good.write_bytes(PNG)
    page.locator("#attach-input").set_input_files(str(good))
    image = page.locator(".message-out img.media-image")
    expect(image).to_be_visible(timeout=10000)
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1
    expect(page.locator(".message-out .ticks").last).to_have_attribute("data-status", "read", timeout=10000)


def test_typing_sends_metas_typing_indicator_at_most_every_20_seconds(
    sandbox, api, conversation, browser, stack, number
):
    page = open_conversation(browser, stack, number, conversation)
    wait_for(lambda: sandbox.reads(), what="the read receipt from opening the conversation")
    composer = page.locator("#composer-input")
    composer.type("Let me check that for you", delay=150)
    wait_for(lambda: [r for r in sandbox.reads() if r["typing_indicator"]], what="typing indicator")
    page.wait_for_timeout(4000)
    composer.type(" right now", delay=150)
    page.wait_for_timeout(1000)
    typing = [r for r in sandbox.reads() if r["typing_indicator"]]
    assert len(typing) == 1
    assert typing[0]["message_id"] == Message.objects.get(direction="in").wamid


def test_inbound_image_plays_inline_once_downloaded(sandbox, api, conversation, browser, stack, number):
    page = open_conversation(browser, stack, number, conversation)
    sandbox.customer_writes(
        media={"type": "image", "mime_type": "image/png", "data_base64": base64.b64encode(PNG).decode()}
    )
    image = page.locator(".message-in img.media-image")
    expect(image).to_be_visible(timeout=10000)
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1


def open_conversation(browser, stack, number, conversation):
    page = logged_in_page(browser, stack.base_url, staff_member("ana", number))
    page.goto(f"/inbox/{conversation.pk}/")
    expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
    return page


def test_admin_checks_the_connection_and_a_new_token_clears_the_flag(sandbox, number, client, settings):
    from django.urls import reverse

    from tests.factories import UserFactory

    settings.META_GRAPH_API_URL = sandbox.base_url
    BusinessNumber.objects.filter(pk=number.pk).update(access_token=SANDBOX_TOKEN)
    client.force_login(UserFactory(username="root", is_superuser=True))
    changelist = reverse("admin:conversations_businessnumber_changelist")
    action = {"action": "check_connection", "_selected_action": [number.pk]}
    page = client.post(changelist, action, follow=True).content.decode()
    assert "connected as" in page
    sandbox.configure(expire_token=True)
    page = client.post(changelist, action, follow=True).content.decode()
    assert "flagged for re-authorisation" in page
    number.refresh_from_db()
    assert number.needs_reauthorization
    form = {
        "phone_number_id": number.phone_number_id,
        "display_phone_number": number.display_phone_number,
        "waba_id": number.waba_id,
        "name": number.name,
        "new_access_token": "a-fresh-token",
        "send_read_receipts": "on",
        "auto_assignment": "off",
        "assign_on_reply": "on",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    assert client.post(reverse("admin:conversations_businessnumber_change", args=[number.pk]), form).status_code == 302
    number.refresh_from_db()
    assert not number.needs_reauthorization and number.access_token == "a-fresh-token"
    # Flagged again, while the stored token works after all (Meta's 190 was passing): checking clears the flag.
    BusinessNumber.objects.filter(pk=number.pk).update(access_token=SANDBOX_TOKEN, needs_reauthorization=True)
    sandbox.configure(expire_token=False)
    page = client.post(changelist, action, follow=True).content.decode()
    assert "connected as" in page and "The re-authorisation flag is cleared: sending resumes." in page
    number.refresh_from_db()
    assert not number.needs_reauthorization

"""Replying across real processes, with the Meta sandbox as a real server: sends of every type, Meta's
error codes, retries without double sends, the window, media both ways, read receipts and typing."""
import base64
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings

from conversations.models import BusinessNumber, Conversation, MediaFile, Message, MessageTemplate
from tests.e2e.conftest import ROOT, Api, free_port, stop_process, wait_for
from tests.factories import BusinessNumberFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NUMBER = {"phone_number_id": "427715309981234", "display_phone_number": "15557730142"}
WABA = "318273645502211"
TOKEN = "sandbox-access-token"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


class Sandbox:
    def __init__(self, base_url: str):
        self.base_url = base_url

    def control(self, method: str, name: str, body: dict | None = None):
        response = requests.request(method, f"{self.base_url}/_sandbox/{name}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def configure(self, **changes):
        return self.control("POST", "config", changes)

    def sent(self) -> list[dict]:
        return self.control("GET", "messages")

    def reads(self) -> list[dict]:
        return self.control("GET", "reads")

    def customer_writes(self, *, wa_id: str = "447700900461", name: str = "Amara Okafor", **kwargs) -> str:
        body = {**NUMBER, "wa_id": wa_id, "name": name, **kwargs}
        return self.control("POST", "inbound", body)["wamid"]


@pytest.fixture(scope="module")
def sandbox_process(e2e_database_url) -> Iterator[Sandbox]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "meta_sandbox", "--port", str(port), "--webhook-url", "http://127.0.0.1:9/api/webhook",
         "--app-secret", settings.META_APP_SECRET, "--access-token", TOKEN, "--status-delay", "0.2",
         "--phone-number-id", NUMBER["phone_number_id"], "--display-phone-number", NUMBER["display_phone_number"],
         "--waba-id", WABA],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.base", "DJANGO_READ_DOT_ENV_FILE": "0"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    sandbox = Sandbox(f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=1).ok, timeout=30, what="sandbox")
        yield sandbox
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def stack_overrides(sandbox_process) -> dict[str, str]:
    return {"META_GRAPH_API_URL": sandbox_process.base_url, "META_ACCESS_TOKEN": TOKEN}


@pytest.fixture
def sandbox(sandbox_process, stack) -> Sandbox:
    sandbox_process.control("POST", "reset")
    sandbox_process.configure(webhook_url=f"{stack.base_url}/api/webhook", status_delay=0.2)
    return sandbox_process


@pytest.fixture
def number(stack):
    return BusinessNumberFactory(**NUMBER, waba_id=WABA)


@pytest.fixture
def api(stack, number) -> Api:
    return Api(stack.base_url)


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
        waba_id=WABA, name="order_update", language="en_US", status="APPROVED",
        components=[{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}],
    )
    sandbox.configure(templates=[{"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
                                  "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."}]}])
    templated = api.send(conversation.pk, type="template", template=template.pk, params=["Amara", "#42"]).json()
    wait_for(lambda: len(sandbox.sent()) == 3, what="three sends")
    by_type = {s["type"]: s for s in sandbox.sent()}
    assert by_type["text"]["context"] == customer_wamid
    assert by_type["reaction"]["request"]["reaction"] == {"message_id": customer_wamid, "emoji": "👍"}
    assert by_type["template"]["request"]["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Amara"}, {"type": "text", "text": "#42"}
    ]
    wait_status(api, conversation, reply["id"], "read")
    wait_status(api, conversation, templated["id"], "read")
    # The business's reaction shows under the customer's message; it is not a bubble of its own.
    thread = api.messages(conversation.pk)
    assert reaction["id"] not in [m["id"] for m in thread]
    assert {"emoji": "👍", "from": "business"} in next(m for m in thread if m["wamid"] == customer_wamid)["reactions"]


@pytest.mark.parametrize(
    "code, mode, expected_title",
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
    Conversation.objects.filter(pk=conversation.pk).update(last_inbound_at=conversation.last_inbound_at.replace(year=2025))
    response = api.send(conversation.pk, type="text", text="hello?")
    assert response.status_code == 409 and response.json()["error"]["code"] == "window_closed"
    template = MessageTemplate.objects.create(waba_id=WABA, name="hello_world", language="en_US", status="APPROVED",
                                              components=[{"type": "BODY", "text": "Hello World"}])
    message_id = api.send(conversation.pk, type="template", template=template.pk, params=[]).json()["id"]
    wait_status(api, conversation, message_id, "read")
    assert sandbox.sent()[0]["type"] == "template"


@pytest.mark.parametrize("failure", [{"server_error_next": 2}, {"rate_limit_mps": 0}])
def test_transient_errors_retry_and_never_send_twice(sandbox, api, conversation, failure):
    if "rate_limit_mps" in failure:
        sandbox.configure(rate_limit_mps=1)
        # Fill this second's budget so the reply meets Meta's 130429, then is retried after backoff.
        requests.post(f"{sandbox.base_url}/v23.0/{NUMBER['phone_number_id']}/messages",
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5,
                      json={"messaging_product": "whatsapp", "to": "+447700900461", "type": "template",
                            "template": {"name": "hello_world", "language": {"code": "en_US"}}})
    else:
        sandbox.configure(**failure)
    message_id = api.send(conversation.pk, type="text", text="retry me").json()["id"]
    wait_status(api, conversation, message_id, "read", timeout=30)
    texts = [s for s in sandbox.sent() if s["type"] == "text" and s["outcome"] == "accepted"]
    assert len(texts) == 1, "exactly one accepted send, whatever the retries"
    assert Message.objects.get(pk=message_id).send_attempts >= 2


def test_expired_token_flags_the_number_for_reauthorization(sandbox, api, conversation, number):
    sandbox.configure(expire_token=True)
    message_id = api.send(conversation.pk, type="text", text="hello").json()["id"]
    item = wait_status(api, conversation, message_id, "failed")
    assert item["error"]["code"] == 190
    assert BusinessNumber.objects.get(pk=number.pk).needs_reauthorization
    refused = api.send(conversation.pk, type="text", text="again")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "reauthorization_required"


def test_outbound_media_is_uploaded_then_sent_by_id(sandbox, api, conversation):
    response = api.send(conversation.pk, data={"caption": "Your parcel"}, files={"file": ("parcel.png", PNG, "image/png")})
    assert response.status_code == 202, response.text
    item = wait_status(api, conversation, response.json()["id"], "read")
    [sent] = sandbox.sent()
    assert sent["type"] == "image" and sent["request"]["image"]["caption"] == "Your parcel"
    media_id = sent["request"]["image"]["id"]
    info = requests.get(f"{sandbox.base_url}/v23.0/{media_id}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).json()
    assert info["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert item["media"]["state"] == "ready"


def test_inbound_media_is_downloaded_verified_and_served_to_members(sandbox, api, conversation, stack):
    sandbox.customer_writes(media={"type": "image", "mime_type": "image/png", "data_base64": base64.b64encode(PNG).decode(), "caption": "broken"})
    media = wait_for(lambda: MediaFile.objects.filter(state="ready").first(), what="media downloaded")
    assert media.message.body == "broken"
    media_url = f"{stack.base_url}/media/{media.message_id}/"
    assert requests.get(media_url, allow_redirects=False, timeout=10).status_code == 302, "no public URL"
    browser = requests.Session()  # a staff member's browser session
    browser.get(f"{stack.base_url}/login/", timeout=10)
    browser.post(f"{stack.base_url}/login/", timeout=10, data={
        "username": "e2e-admin", "password": "pw-for-tests", "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
    response = browser.get(media_url, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert response.content == PNG


def test_inbound_media_with_a_wrong_sha256_is_rejected(sandbox, api, conversation):
    sandbox.customer_writes(media={"type": "image", "mime_type": "image/png", "data_base64": base64.b64encode(PNG).decode()}, corrupt_sha256=True)
    media = wait_for(lambda: MediaFile.objects.filter(state="failed").first(), timeout=30, what="media refused")
    assert "sha256 mismatch" in media.error
    assert not media.file
    [item] = [m for m in api.messages(conversation.pk) if m["type"] == "image"]
    assert item["media"]["state"] == "failed" and item["media"]["url"] is None


def test_opening_the_conversation_sends_a_read_receipt(sandbox, api, conversation, stack):
    customer_wamid = Message.objects.get(direction="in").wamid
    assert api.session.post(f"{stack.base_url}/api/conversations/{conversation.pk}/read/", timeout=10).status_code == 200
    read = wait_for(lambda: sandbox.reads(), what="read receipt")
    assert read[0]["message_id"] == customer_wamid and not read[0]["typing_indicator"]


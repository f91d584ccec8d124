"""The sandbox plays Meta's account-level side: its control API changes what Meta knows about a number, the
account, a template or a customer's marketing choice, sends the signed webhook Meta sends for it, which the app
accepts and applies, and answers the Graph API's reads of the same state."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conversations.graph_api import GraphClient, GraphError
from conversations.models import (
    AccountChange,
    BusinessAccount,
    BusinessNumber,
    MarketingPreference,
    MessageTemplate,
    NumberAlert,
)
from tests.conftest import SANDBOX_TOKEN
from tests.e2e.conftest import free_port
from tests.factories import BusinessNumberFactory
from tests.sandbox.test_sandbox import wait_until
from webhooks.models import WebhookEvent, WebhookEventState

pytestmark = pytest.mark.django_db

TEMPLATE = {
    "name": "order_ready",
    "language": "en_GB",
    "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Your order is ready."}],
}


class Capture:
    """Stands in for the app's webhook URL: keeps each delivery's bytes and signature, answers 200."""

    def __init__(self):
        self.deliveries: list[tuple[bytes, str]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                capture.deliveries.append((body, self.headers.get("X-Hub-Signature-256", "")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/api/webhook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def capture():
    capture = Capture()
    yield capture
    capture.httpd.shutdown()
    capture.httpd.server_close()


@pytest.fixture
def sandbox(start_sandbox, capture):
    sandbox = start_sandbox()
    control(
        sandbox,
        "config",
        {"webhook_url": capture.url, "templates": [TEMPLATE], "numbers": {"106540352240077": "15550787777"}},
    )
    return sandbox


@pytest.fixture
def line(sandbox):
    """A business number of the sandbox's account, as the app has it registered."""
    return BusinessNumberFactory(
        phone_number_id="106540352240077", display_phone_number="15550787777", waba_id=sandbox.config.waba_id
    )


def control(sandbox, name: str, payload: dict) -> dict:
    response = requests.post(f"{sandbox.base_url}/_sandbox/{name}", json=payload, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def deliver_to_app(client, django_capture_on_commit_callbacks, capture, count: int) -> WebhookEvent:
    """Post the sandbox's last delivery to the app exactly as it came (bytes and signature)."""
    wait_until(lambda: len(capture.deliveries) >= count, what="the sandbox's webhook")
    body, signature = capture.deliveries[count - 1]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/webhook", data=body, content_type="application/json", headers={"X-Hub-Signature-256": signature}
        )
    assert response.status_code == 200, response.content
    return WebhookEvent.objects.get(pk=response.json()["event_id"])


def number_of(line) -> BusinessNumber:
    return BusinessNumber.objects.get(pk=line.pk)


def account_of(line) -> BusinessAccount:
    return BusinessAccount.objects.get(waba_id=line.waba_id)


CASES = [
    (
        "number_quality",
        {"event": "UPGRADE", "old_limit": "TIER_2K", "current_limit": "TIER_10K", "portfolio_limit": "TIER_10K"},
        "phone_number_quality_update",
        lambda line: (
            (number_of(line).messaging_limit_tier, account_of(line).messaging_limit) == ("TIER_10K", "TIER_10K")
        ),
    ),
    (
        "number_quality",
        {"event": "THROUGHPUT_UPGRADE", "current_limit": "TIER_UNLIMITED"},
        "phone_number_quality_update",
        lambda line: number_of(line).throughput_level == "HIGH",
    ),
    (
        "number_name",
        {"decision": "APPROVED", "requested_verified_name": "Kirkgate Kitchenware"},
        "phone_number_name_update",
        lambda line: number_of(line).verified_name == "Kirkgate Kitchenware",
    ),
    (
        "account_update",
        {
            "event": "ACCOUNT_RESTRICTION",
            "restriction_info": [
                {"restriction_type": "RESTRICTED_CUSTOMER_INITIATED_MESSAGING", "expiration": 1790000000}
            ],
        },
        "account_update",
        lambda line: account_of(line).restrictions[0]["type"] == "RESTRICTED_CUSTOMER_INITIATED_MESSAGING",
    ),
    (
        "account_update",
        {"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": "May 1, 2026"}},
        "account_update",
        lambda line: account_of(line).ban_state == "DISABLE",
    ),
    (
        "account_alert",
        {
            "entity_type": "BUSINESS",
            "entity_id": "209481736652043",
            "alert_info": {
                "alert_severity": "CRITICAL",
                "alert_status": "ACTIVE",
                "alert_type": "INCREASED_CAPABILITIES_ELIGIBILITY_FAILED",
                "alert_description": "Not this time.",
            },
        },
        "account_alerts",
        lambda line: account_of(line).last_alert["severity"] == "CRITICAL",
    ),
    (
        "account_review",
        {"decision": "REJECTED"},
        "account_review_update",
        lambda line: account_of(line).review_decision == "REJECTED",
    ),
    (
        "business_capability",
        {"max_daily_conversations_per_business": 100000, "max_phone_numbers_per_waba": 25},
        "business_capability_update",
        lambda line: (account_of(line).messaging_limit, account_of(line).max_phone_numbers) == ("TIER_100K", 25),
    ),
    (
        "template_status",
        {
            "name": "order_ready",
            "language": "en_GB",
            "event": "REJECTED",
            "reason": "INVALID_FORMAT",
            "rejection_info": {"reason": "Too short.", "recommendation": "Say more."},
        },
        "message_template_status_update",
        lambda line: MessageTemplate.objects.get(name="order_ready").status_reason == "INVALID_FORMAT",
    ),
    (
        "template_quality",
        {"name": "order_ready", "language": "en_GB", "new_quality_score": "RED"},
        "message_template_quality_update",
        lambda line: MessageTemplate.objects.get(name="order_ready").quality_score == "RED",
    ),
    (
        "template_category",
        {"name": "order_ready", "language": "en_GB", "new_category": "MARKETING"},
        "template_category_update",
        lambda line: MessageTemplate.objects.get(name="order_ready").category == "MARKETING",
    ),
    (
        "user_preferences",
        {"wa_id": "447700900461", "value": "stop"},
        "user_preferences",
        lambda line: MarketingPreference.objects.get(number=line).opted_out is True,
    ),
    (
        "security",
        {"event": "PIN_RESET_REQUEST", "requester": "100084421965309"},
        "security",
        lambda line: NumberAlert.objects.get(number=line).condition == "PIN_RESET_REQUEST",
    ),
]


@pytest.mark.parametrize(("name", "payload", "field", "applied"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_each_control_call_sends_metas_signed_webhook_which_the_app_applies(
    sandbox, line, capture, client, django_capture_on_commit_callbacks, name, payload, field, applied
):
    if name in ("number_quality", "number_name", "user_preferences", "security"):
        payload = {"phone_number_id": line.phone_number_id, **payload}
    answer = control(sandbox, name, payload)
    assert answer["field"] == field and answer["webhook_id"]

    event = deliver_to_app(client, django_capture_on_commit_callbacks, capture, 1)
    assert (event.state, event.item_errors) == (WebhookEventState.PROCESSED, [])
    assert AccountChange.objects.get().field == field
    assert applied(line)
    envelope = event.payload["entry"][0]
    assert envelope["id"] == line.waba_id and isinstance(envelope["time"], int)
    if field != "user_preferences":
        assert "metadata" not in envelope["changes"][0]["value"]  # as Meta: routed by the account id


def test_an_older_change_sent_late_is_recorded_and_changes_nothing(
    sandbox, line, capture, client, django_capture_on_commit_callbacks
):
    control(
        sandbox,
        "number_quality",
        {"phone_number_id": line.phone_number_id, "event": "UPGRADE", "current_limit": "TIER_10K"},
    )
    control(
        sandbox,
        "number_quality",
        {"phone_number_id": line.phone_number_id, "event": "DOWNGRADE", "current_limit": "TIER_2K", "time": 1700000000},
    )
    deliver_to_app(client, django_capture_on_commit_callbacks, capture, 1)
    deliver_to_app(client, django_capture_on_commit_callbacks, capture, 2)
    assert number_of(line).messaging_limit_tier == "TIER_10K"
    assert list(AccountChange.objects.order_by("pk").values_list("applied", flat=True)) == [True, False]


def test_the_graph_api_answers_the_state_the_control_api_set(sandbox, line):
    control(
        sandbox,
        "number_quality",
        {
            "phone_number_id": line.phone_number_id,
            "quality_rating": "YELLOW",
            "status": "RESTRICTED",
            "current_limit": "TIER_250",
            "portfolio_limit": "TIER_10K",
        },
    )
    control(
        sandbox,
        "number_name",
        {"phone_number_id": line.phone_number_id, "decision": "REJECTED", "requested_verified_name": "X"},
    )
    graph = GraphClient(access_token=SANDBOX_TOKEN)
    fields = ["quality_rating", "throughput", "name_status", "status", "messaging_limit_tier"]
    assert graph.phone_number_fields(phone_number_id=line.phone_number_id, fields=fields) == {
        "id": line.phone_number_id,
        "quality_rating": "YELLOW",
        "throughput": {"level": "STANDARD"},
        "name_status": "DECLINED",
        "status": "RESTRICTED",
        "messaging_limit_tier": "TIER_250",
    }
    limit = graph.phone_number_fields(
        phone_number_id=sandbox.config.waba_id, fields=["whatsapp_business_manager_messaging_limit"]
    )
    assert limit == {"id": sandbox.config.waba_id, "whatsapp_business_manager_messaging_limit": "TIER_10K"}


def test_a_field_the_graph_api_does_not_have_is_metas_error_100(sandbox, line):
    with pytest.raises(GraphError) as raised:
        GraphClient(access_token=SANDBOX_TOKEN).phone_number_fields(
            phone_number_id=line.phone_number_id, fields=["quality_score"]
        )
    assert raised.value.code == 100


def test_a_control_call_for_a_template_the_sandbox_lacks_is_refused(sandbox):
    response = requests.post(
        f"{sandbox.base_url}/_sandbox/template_status",
        json={"name": "nope", "language": "en_GB", "event": "APPROVED"},
        timeout=5,
    )
    assert response.status_code == 400 and "no template nope" in response.json()["error"]

"""A number's health: the Numbers page and its API (supervisors only, each of their numbers in a bounded number of
queries), and the alerts Meta's news raises (once per change, ended by recovery) with their banner and
notification."""

import json
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import MemberRole, MessageTemplate, Notification, NumberAlert, NumberMembership
from conversations.selectors import number_health, supervised_numbers
from conversations.services.account import apply_number_snapshot, snapshot_of
from realtime.models import Event
from tests.conversations.team import as_user
from tests.factories import (
    BusinessNumberFactory,
    ContactFactory,
    ConversationFactory,
    OutboundMessageFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PAYLOADS = Path(__file__).parent.parent / "webhooks" / "payloads" / "account"


def sample(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def value_of(payload: dict) -> dict:
    return payload["entry"][0]["changes"][0]["value"]


@pytest.fixture
def post(post_webhook):
    def post_and_check(payload: dict):
        response = post_webhook(payload)
        assert response.status_code == 200, response.content

    return post_and_check


def banners(client) -> str:
    page = client.get("/inbox/")
    assert page.status_code == 200
    return page.content.decode()


def poll(number, rating: str):
    number.refresh_from_db()
    return apply_number_snapshot(number=number, snapshot=snapshot_of({"quality_rating": rating}))


# --- alerts ----------------------------------------------------------------------------------------------


def test_a_flagged_number_alerts_its_members_once_and_notifies_its_supervisor(post, number, team, client):
    post(sample("phone_number_quality_update_flagged"))
    post(sample("phone_number_quality_update_flagged"))  # a redelivery

    alert = NumberAlert.objects.get()
    assert (alert.number, alert.kind, alert.condition, alert.resolved_at) == (number, "quality", "FLAGGED", None)
    client.force_login(team["ana"])
    assert "Quality is low: Meta flagged this number" in banners(client)
    notification = Notification.objects.get()
    assert (notification.recipient, notification.kind) == (team["sue"], "number_alert")
    listed = as_user(team["sue"]).get("/api/notifications/").json()["results"]
    assert [(n["title"], n["url"]) for n in listed] == [
        ("Quality is low: Meta flagged this number", f"/numbers/#number-{number.pk}")
    ]
    assert as_user(team["ana"]).get("/api/notifications/").json()["results"] == []
    assert Event.objects.filter(type="number.alerts_changed", number_id=number.pk).count() == 1


def test_a_polled_drop_alerts_once_a_further_drop_raises_another_and_green_clears_the_banner(number, team, client):
    poll(number, "YELLOW")
    poll(number, "YELLOW")  # the next poll finds the same: nothing new
    assert list(NumberAlert.objects.values_list("condition", flat=True)) == ["YELLOW"]
    poll(number, "RED")
    assert list(NumberAlert.objects.filter(resolved_at__isnull=True).values_list("condition", flat=True)) == ["RED"]
    assert Notification.objects.filter(recipient=team["sue"]).count() == 2
    client.force_login(team["ana"])
    assert "Quality is low" in banners(client)

    poll(number, "GREEN")

    assert not NumberAlert.objects.filter(resolved_at__isnull=True).exists()
    assert 'id="number-alerts" aria-label="Number alerts" hidden' in banners(client)
    last = Event.objects.filter(type="number.alerts_changed").order_by("-id").first()
    assert last.payload == {"number_id": number.pk, "alerts": []}


def test_a_restricted_account_alerts_every_number_of_it_until_lifted(post, number, team, client):
    other = BusinessNumberFactory(waba_id=number.waba_id)
    post(sample("account_update_restriction"))

    assert sorted(
        NumberAlert.objects.filter(number__in=[number, other]).values_list("number_id", "condition")
    ) == sorted([(number.pk, "ACCOUNT_RESTRICTION"), (other.pk, "ACCOUNT_RESTRICTION")])
    client.force_login(team["ana"])
    assert "The account is restricted" in banners(client)
    lifted = sample("account_update_restriction")
    lifted["entry"][0]["time"] += 60
    value_of(lifted)["restriction_info"] = []
    post(lifted)
    assert not NumberAlert.objects.filter(resolved_at__isnull=True).exists()


def test_a_banned_account_alerts_with_what_meta_said(post, number, team):
    payload = sample("account_update_restriction")
    value_of(payload).clear()
    value_of(payload).update(
        event="DISABLED_UPDATE", ban_info={"waba_ban_state": "DISABLE", "waba_ban_date": "April 17, 2026"}
    )
    post(payload)
    alert = NumberAlert.objects.get(number=number)
    assert (alert.kind, alert.condition, alert.detail) == ("account", "DISABLE", "April 17, 2026")


def test_a_paused_template_alerts_and_its_approval_ends_it(post, number, team, client):
    post(sample("message_template_status_update_paused"))
    alert = NumberAlert.objects.get(number=number)
    assert (alert.kind, alert.condition) == ("template", "PAUSED")
    client.force_login(team["ana"])
    assert "A template is paused" in banners(client)

    approved = sample("message_template_status_update_paused")
    approved["entry"][0]["time"] += 60
    value_of(approved)["event"] = "APPROVED"
    post(approved)
    assert not NumberAlert.objects.filter(resolved_at__isnull=True).exists()


def test_a_two_step_verification_reset_request_notifies_the_numbers_supervisors_once_and_raises_no_banner(
    post, number, team, client
):
    other = BusinessNumberFactory(waba_id=number.waba_id)
    NumberMembership.objects.create(number=other, user=UserFactory(username="vic"), role=MemberRole.SUPERVISOR)
    post(sample("security_pin_reset_request"))
    post(sample("security_pin_reset_request"))  # a redelivery

    notice = NumberAlert.objects.get()
    assert (notice.number, notice.kind, notice.condition) == (number, "security", "PIN_RESET_REQUEST")
    assert notice.detail == "Requested by Business Suite user 100084421965309"
    listed = as_user(team["sue"]).get("/api/notifications/").json()["results"]
    assert [(n["title"], n["url"]) for n in listed] == [
        ("A reset of the number's two-step verification PIN was requested", f"/numbers/#number-{number.pk}")
    ]
    # Not Ana (an agent), Olga (another account's number) nor Vic (the account's other number).
    assert list(Notification.objects.values_list("recipient__username", flat=True)) == ["sue"]
    client.force_login(team["ana"])
    assert 'id="number-alerts" aria-label="Number alerts" hidden' in banners(client)


def test_each_two_step_verification_change_is_its_own_notice_and_one_meta_adds_later_reads_plainly(post, number, team):
    post(sample("security_pin_changed"))
    later = sample("security_pin_changed")
    later["entry"][0]["time"] += 60
    value_of(later)["event"] = "TWO_STEP_VERIFICATION_DISABLED"
    post(later)
    titles = {n["title"] for n in as_user(team["sue"]).get("/api/notifications/").json()["results"]}
    assert titles == {
        "The number's two-step verification PIN was changed",
        "The number's two-step verification changed",
    }
    assert not NumberAlert.objects.filter(resolved_at__isnull=True).exists()


def test_the_banner_is_one_query_on_the_inbox(number, team, client):
    poll(number, "RED")
    client.force_login(team["ana"])
    with CaptureQueriesContext(connection) as queries:
        client.get("/inbox/")
    alert_reads = [q for q in queries.captured_queries if q["sql"].startswith('SELECT "conversations_numberalert"')]
    assert len(alert_reads) == 1


# --- the page and the API ----------------------------------------------------------------------------------


def test_the_numbers_page_is_for_supervisors_of_the_number_only(number, team, client):
    other = BusinessNumberFactory(name="Sales line")
    client.force_login(team["ana"])
    assert client.get("/numbers/").status_code == 403
    assert 'href="/numbers/"' not in banners(client)
    client.force_login(team["sue"])
    page = client.get("/numbers/").content.decode()
    assert number.name in page and other.name not in page
    assert 'href="/numbers/"' in banners(client)


def test_the_health_api_checks_membership_and_role(number, team):
    other = BusinessNumberFactory()
    NumberMembership.objects.create(number=other, user=team["olga"], role=MemberRole.SUPERVISOR)
    assert as_user(team["olga"]).get(f"/api/numbers/{number.pk}/health/").status_code == 404
    refused = as_user(team["ana"]).get(f"/api/numbers/{number.pk}/health/")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_allowed"
    assert as_user(team["sue"]).get(f"/api/numbers/{number.pk}/health/").status_code == 200


def test_health_counts_the_portfolios_customers_reached_templates_and_quality_history(number, team):
    sibling = BusinessNumberFactory(waba_id=number.waba_id)
    maria = ContactFactory()
    for line in (number, sibling):  # Maria reached from both numbers counts once
        OutboundMessageFactory(
            conversation=ConversationFactory(number=line, contact=maria),
            type="template",
            business_initiated=True,
            timestamp=timezone.now(),
        )
    OutboundMessageFactory(
        conversation=ConversationFactory(number=number),
        type="template",
        business_initiated=True,
        timestamp=timezone.now(),
    )
    # Inside the customer's window a template, like a reply, opens nothing: not counted (the limit's own rule).
    OutboundMessageFactory(conversation=ConversationFactory(number=number), type="template", timestamp=timezone.now())
    OutboundMessageFactory(conversation=ConversationFactory(number=number), type="text", timestamp=timezone.now())
    MessageTemplate.objects.create(waba_id=number.waba_id, name="welcome", language="en", status="APPROVED")
    MessageTemplate.objects.create(waba_id=number.waba_id, name="promo", language="en", status="PAUSED")
    poll(number, "YELLOW")
    poll(number, "GREEN")

    health = as_user(team["sue"]).get(f"/api/numbers/{number.pk}/health/").json()

    assert health["messaging_limit"]["used_24h"] == 2
    assert health["templates"]["counts"] == {"APPROVED": 1, "PAUSED": 1}
    assert [t["name"] for t in health["templates"]["items"] if t["stopped"]] == ["promo"]
    assert [p["quality"] for p in health["quality"]["history"]] == ["YELLOW", "GREEN"]
    assert health["quality"]["rating"] == "GREEN"
    assert health["last_outbound_at"] is not None and health["last_inbound_at"] is None


def test_health_of_several_numbers_takes_a_bounded_number_of_queries(team, django_assert_max_num_queries):
    for _ in range(5):
        line = BusinessNumberFactory(waba_id=f"waba-{_}")
        NumberMembership.objects.create(number=line, user=team["sue"], role=MemberRole.SUPERVISOR)
        OutboundMessageFactory(conversation=ConversationFactory(number=line), type="template")
        MessageTemplate.objects.create(waba_id=line.waba_id, name="t", language="en", status="APPROVED")
        poll(line, "RED")
    with django_assert_max_num_queries(7):
        health = number_health(numbers=supervised_numbers(user=team["sue"]))
    assert len(health) == 6 and sum(len(h["alerts"]) for h in health) == 5


def test_a_template_name_is_data_not_markup_on_the_page(number, team, client):
    MessageTemplate.objects.create(waba_id=number.waba_id, name="<b>x</b>", language="en", status="APPROVED")
    client.force_login(team["sue"])
    page = client.get("/numbers/").content.decode()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page

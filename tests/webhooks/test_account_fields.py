"""Meta's account-level webhook fields applied: numbers' health and name review, the account's status, alerts
and limits, templates' status, quality and category, customers' marketing opt-outs; each change kept once with
the delivery it came from, never rolled back by an older one, never failing a delivery on a value we do not
know."""

import copy
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from contacts.models import Contact
from conversations.alerts import alert_snapshot
from conversations.models import (
    AccountChange,
    BusinessAccount,
    BusinessNumber,
    ChangeSource,
    MarketingPreference,
    MessageTemplate,
    NumberAlertKind,
)
from conversations.selectors import open_alerts
from realtime.models import Event
from tests.factories import BusinessNumberFactory, ContactFactory, UserFactory
from webhooks.drain import process_webhook_event
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.services import purge_webhook_events

pytestmark = pytest.mark.django_db

ACCOUNT_PAYLOADS = Path(__file__).parent / "payloads" / "account"
WABA = "318273645502211"


def sample(name: str) -> dict:
    return json.loads((ACCOUNT_PAYLOADS / f"{name}.json").read_text())


def value_of(payload: dict) -> dict:
    return payload["entry"][0]["changes"][0]["value"]


def at_time(payload: dict, seconds: int) -> dict:
    payload = copy.deepcopy(payload)
    payload["entry"][0]["time"] = seconds
    return payload


@pytest.fixture
def post(post_webhook):
    def post_and_get(payload: dict) -> WebhookEvent:
        response = post_webhook(payload)
        assert response.status_code == 200, response.content
        return WebhookEvent.objects.get(pk=response.json()["event_id"])

    return post_and_get


def refreshed(number: BusinessNumber) -> BusinessNumber:
    number.refresh_from_db()
    return number


def processed_cleanly(event: WebhookEvent) -> bool:
    return event.state == WebhookEventState.PROCESSED and event.item_errors == []


# --- each field, from Meta's documented shapes ---------------------------------------------------------


def test_a_messaging_limit_upgrade_moves_the_number_and_the_portfolio(post, number):
    event = post(sample("phone_number_quality_update_upgrade"))

    assert processed_cleanly(event)
    number = refreshed(number)
    assert (number.quality_event, number.messaging_limit_tier) == ("UPGRADE", "TIER_10K")
    assert BusinessAccount.objects.get(waba_id=WABA).messaging_limit == "TIER_10K"
    change = AccountChange.objects.get()
    assert (change.number, change.waba_id, change.field, change.source, change.applied) == (
        number,
        WABA,
        "phone_number_quality_update",
        ChangeSource.WEBHOOK,
        True,
    )
    assert change.webhook_event == event
    assert change.values["old_limit"] == "TIER_2K"
    assert change.raw == value_of(sample("phone_number_quality_update_upgrade"))


def test_a_legacy_flagged_quality_event_is_kept_as_received(post, number):
    assert processed_cleanly(post(sample("phone_number_quality_update_flagged")))
    number = refreshed(number)
    assert (number.quality_event, number.messaging_limit_tier) == ("FLAGGED", "TIER_10K")


def test_a_throughput_upgrade_makes_the_number_high_throughput_and_the_portfolio_unlimited(post, number):
    payload = sample("phone_number_quality_update_upgrade")
    value_of(payload).clear()
    value_of(payload).update(
        display_phone_number="15557730142",
        event="THROUGHPUT_UPGRADE",
        current_limit="TIER_UNLIMITED",
        max_daily_conversations_per_business="TIER_UNLIMITED",
    )
    assert processed_cleanly(post(payload))
    number = refreshed(number)
    assert (number.throughput_level, number.messaging_limit_tier) == ("HIGH", "TIER_UNLIMITED")
    assert BusinessAccount.objects.get(waba_id=WABA).messaging_limit == "TIER_UNLIMITED"


def test_an_approved_display_name_becomes_the_numbers_verified_name(post, number):
    assert processed_cleanly(post(sample("phone_number_name_update_approved")))
    number = refreshed(number)
    assert (number.name_status, number.requested_name, number.verified_name, number.name_rejection_reason) == (
        "APPROVED",
        "Kirkgate Kitchenware",
        "Kirkgate Kitchenware",
        "",
    )


def test_a_rejected_display_name_keeps_the_verified_one(post, number):
    payload = sample("phone_number_name_update_approved")
    value_of(payload).update(
        decision="REJECTED", requested_verified_name="KK!!", rejection_reason="NAME_FORMAT_UNACCEPTABLE"
    )
    BusinessNumber.objects.filter(pk=number.pk).update(verified_name="Kirkgate")
    assert processed_cleanly(post(payload))
    number = refreshed(number)
    assert (number.name_status, number.requested_name, number.verified_name, number.name_rejection_reason) == (
        "REJECTED",
        "KK!!",
        "Kirkgate",
        "NAME_FORMAT_UNACCEPTABLE",
    )


def test_an_account_restriction_is_kept_on_the_account_with_its_expiry(post, number):
    event = post(sample("account_update_restriction"))
    assert processed_cleanly(event)
    account = BusinessAccount.objects.get(waba_id=WABA)
    assert account.status_event == "ACCOUNT_RESTRICTION"
    assert account.restrictions == [
        {"type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expires_at": "2026-01-08T00:00:00+00:00"},
        {"type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION", "expires_at": "2026-01-08T00:00:00+00:00"},
    ]
    change = AccountChange.objects.get()
    assert change.number is None and change.webhook_event == event  # account-wide


def test_a_restriction_expiry_written_as_text_reads_too(post, number):
    payload = sample("account_update_restriction")
    value_of(payload)["restriction_info"] = [
        {"restriction_type": "RESTRICTED_CUSTOMER_INITIATED_MESSAGING", "expiration": "2026-04-19T13:59:20+0000"}
    ]
    assert processed_cleanly(post(payload))
    assert BusinessAccount.objects.get(waba_id=WABA).restrictions == [
        {"type": "RESTRICTED_CUSTOMER_INITIATED_MESSAGING", "expires_at": "2026-04-19T13:59:20+00:00"}
    ]


def test_a_ban_and_a_violation_are_kept_on_the_account(post, number):
    ban = sample("account_update_restriction")
    value_of(ban).clear()
    value_of(ban).update(
        event="DISABLED_UPDATE", ban_info={"waba_ban_state": "SCHEDULE_FOR_DISABLE", "waba_ban_date": "April 17, 2026"}
    )
    violation = at_time(ban, 1767369601)
    value_of(violation).clear()
    value_of(violation).update(event="ACCOUNT_VIOLATION", violation_info={"violation_type": "SCAM"})
    assert processed_cleanly(post(ban)) and processed_cleanly(post(violation))
    account = BusinessAccount.objects.get(waba_id=WABA)
    assert (account.status_event, account.violation_type, account.ban_state, account.ban_date) == (
        "ACCOUNT_VIOLATION",
        "SCAM",
        "SCHEDULE_FOR_DISABLE",
        "April 17, 2026",
    )


def test_an_account_alert_is_the_accounts_last_alert(post, number):
    assert processed_cleanly(post(sample("account_alerts_limit_increase_deferred")))
    alert = BusinessAccount.objects.get(waba_id=WABA).last_alert
    assert (alert["type"], alert["severity"], alert["status"], alert["entity_type"]) == (
        "INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED",
        "WARNING",
        "ACTIVE",
        "BUSINESS",
    )
    assert alert["description"].startswith("Limits cannot be increased")


def review(decision, **extra) -> dict:
    payload = copy.deepcopy(sample("account_alerts_limit_increase_deferred"))
    change = payload["entry"][0]["changes"][0]
    change.update(field="account_review_update", value={"decision": decision, **extra})
    return payload


def test_an_account_review_is_kept_and_a_rejection_raises_the_account_alert_until_approved(post, number):
    assert processed_cleanly(post(at_time(review("REJECTED"), 1_780_000_000)))
    assert BusinessAccount.objects.get(waba_id=WABA).review_decision == "REJECTED"
    [alert] = open_alerts(numbers=[number.pk])
    assert (alert.kind, alert.condition) == (NumberAlertKind.ACCOUNT, "REVIEW_REJECTED")
    assert alert_snapshot(alert)["title"] == "Meta rejected the account's review"

    assert processed_cleanly(post(at_time(review("APPROVED", reviewer="someone"), 1_780_000_100)))  # a new key
    assert BusinessAccount.objects.get(waba_id=WABA).review_decision == "APPROVED"
    assert list(open_alerts(numbers=[number.pk])) == []
    assert processed_cleanly(post(at_time(review("REJECTED"), 1_780_000_050)))  # older, late: changes nothing
    assert BusinessAccount.objects.get(waba_id=WABA).review_decision == "APPROVED"


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(10000, "TIER_10K"), ("2000", "TIER_2K"), ("TIER_100K", "TIER_100K"), (-1, "TIER_UNLIMITED"), (5000, "5000")],
)
def test_the_portfolio_limit_reads_as_a_number_or_a_tier(post, number, limit, expected):
    payload = sample("business_capability_update_limit_increase")
    value_of(payload)["max_daily_conversations_per_business"] = limit
    assert processed_cleanly(post(payload))
    account = BusinessAccount.objects.get(waba_id=WABA)
    assert (account.messaging_limit, account.max_phone_numbers) == (expected, 20)


def test_the_legacy_per_phone_capability_key_is_the_portfolio_limit(post, number):
    payload = sample("business_capability_update_limit_increase")
    value_of(payload).clear()
    value_of(payload).update(max_daily_conversation_per_phone=2000, max_phone_numbers_per_business=2)
    assert processed_cleanly(post(payload))
    account = BusinessAccount.objects.get(waba_id=WABA)
    assert (account.messaging_limit, account.max_phone_numbers) == ("TIER_2K", 2)


def test_a_template_approval_is_applied_to_the_template(post, number):
    template = MessageTemplate.objects.create(
        waba_id=WABA,
        name="delivery_slot_confirmation",
        language="en_GB",
        status="PENDING",
        components=[{"type": "BODY"}],
    )
    assert processed_cleanly(post(sample("message_template_status_update_approved")))
    template.refresh_from_db()
    assert (template.status, template.category, template.status_reason, template.meta_template_id) == (
        "APPROVED",
        "UTILITY",
        "NONE",
        "1893027461150627",
    )
    assert template.components == [{"type": "BODY"}]
    assert AccountChange.objects.get().number is None


def test_a_rejection_keeps_metas_reason_and_advice(post, number):
    assert processed_cleanly(post(sample("message_template_status_update_rejected_invalid_format")))
    template = MessageTemplate.objects.get(name="winter_sale_2026")  # announced before any sync
    assert (template.status, template.status_reason, template.category) == ("REJECTED", "INVALID_FORMAT", "MARKETING")
    assert "begins with a parameter" in template.status_detail
    assert "fixed wording" in template.status_detail


def test_a_pause_keeps_its_notice(post, number):
    assert processed_cleanly(post(sample("message_template_status_update_paused")))
    template = MessageTemplate.objects.get(name="restock_alert")
    assert template.status == "PAUSED"
    assert template.status_detail.startswith("FIRST_PAUSE Your WhatsApp message template has been paused")


def test_a_template_quality_change_is_applied(post, number):
    assert processed_cleanly(post(sample("message_template_quality_update_yellow")))
    assert MessageTemplate.objects.get(name="restock_alert", language="en_GB").quality_score == "YELLOW"


def test_an_impending_recategorisation_is_announced_then_done(post, number):
    assert processed_cleanly(post(sample("template_category_update_impending")))
    template = MessageTemplate.objects.get(name="delivery_slot_confirmation")
    assert (template.category, template.pending_category) == ("UTILITY", "MARKETING")
    assert template.category_switches_at.isoformat() == "2026-01-02T16:00:00+00:00"

    done = at_time(sample("template_category_update_impending"), 1767369700)
    value = value_of(done)
    del value["correct_category"], value["category_update_timestamp"]
    value.update(previous_category="UTILITY", new_category="MARKETING")
    assert processed_cleanly(post(done))
    template.refresh_from_db()
    assert (template.category, template.pending_category, template.category_switches_at) == ("MARKETING", "", None)


def test_a_two_step_verification_change_is_kept_for_the_number_it_names(post, number):
    BusinessNumberFactory(waba_id=number.waba_id)  # the account's other number
    event = post(sample("security_pin_reset_request"))
    assert processed_cleanly(event)
    change = AccountChange.objects.get()
    assert (change.field, change.number, change.applied, change.webhook_event_id) == (
        "security",
        number,
        True,
        event.pk,
    )
    assert change.values == {"event": "PIN_RESET_REQUEST", "requester": "100084421965309"}


def test_a_two_step_verification_change_of_the_wrong_type_is_recorded_and_alerts_nobody(post, number):
    payload = sample("security_pin_changed")
    value_of(payload).update(event={"what": "PIN_CHANGED"}, requester=["someone"])
    event = post(payload)
    assert event.state == WebhookEventState.PROCESSED
    assert [error["path"] for error in event.item_errors] == [
        "entry[0].changes[0].event",
        "entry[0].changes[0].requester",
    ]
    assert AccountChange.objects.get().applied is False
    assert not open_alerts(numbers=[number.pk]).exists()


def test_a_marketing_stop_is_kept_for_the_number_and_the_customer(post, number):
    assert processed_cleanly(post(sample("user_preferences_stop_marketing")))
    preference = MarketingPreference.objects.get()
    assert (preference.number, preference.contact.wa_id, preference.contact.user_id, preference.opted_out) == (
        number,
        "447700900461",
        "GB.7741902236518840217",
        True,
    )
    assert AccountChange.objects.get().number == number


def test_a_stop_to_one_number_leaves_the_customers_preference_for_another_business(post, number):
    other = BusinessNumberFactory(waba_id="900000000000001")
    contact = ContactFactory(wa_id="447700900461", user_id="GB.7741902236518840217")
    MarketingPreference.objects.create(number=other, contact=contact, opted_out=False, changed_at="2026-01-01T00:00Z")
    assert processed_cleanly(post(sample("user_preferences_stop_marketing")))
    assert MarketingPreference.objects.get(number=other).opted_out is False
    assert MarketingPreference.objects.get(number=number, contact=contact).opted_out is True


def test_a_resume_after_a_stop_lets_marketing_through_again_and_a_late_stop_does_not_undo_it(post, number):
    stop = sample("user_preferences_stop_marketing")
    resume = copy.deepcopy(stop)
    value_of(resume)["user_preferences"][0].update(value="resume", timestamp=1767301300)
    assert processed_cleanly(post(resume))
    assert processed_cleanly(post(stop))  # older, delivered late
    assert MarketingPreference.objects.get().opted_out is False
    assert list(AccountChange.objects.order_by("pk").values_list("applied", flat=True)) == [True, False]


def test_metas_newer_word_replaces_a_staff_members_mark_and_no_longer_names_them(post, number):
    contact = ContactFactory(wa_id="447700900461", user_id="GB.7741902236518840217")
    MarketingPreference.objects.create(
        number=number, contact=contact, opted_out=False, changed_at="2026-01-01T00:00Z", changed_by=UserFactory()
    )
    assert processed_cleanly(post(sample("user_preferences_stop_marketing")))
    preference = MarketingPreference.objects.get(number=number, contact=contact)
    assert (preference.opted_out, preference.changed_by) == (True, None)


# --- what Meta may send that we do not know -----------------------------------------------------------


def test_unknown_values_and_keys_are_stored_as_received_and_never_fail_the_delivery(post, number):
    payload = sample("phone_number_quality_update_upgrade")
    value_of(payload).update(
        event="THROUGHPUT_DOWNGRADE_2027", current_limit="TIER_5M", shiny_new_key={"nested": [1, 2]}, old_limit=None
    )
    event = post(payload)
    assert processed_cleanly(event)
    number = refreshed(number)
    assert (number.quality_event, number.messaging_limit_tier) == ("THROUGHPUT_DOWNGRADE_2027", "TIER_5M")
    assert AccountChange.objects.get().raw["shiny_new_key"] == {"nested": [1, 2]}


def test_an_unknown_template_status_and_an_unknown_preference_are_recorded(post, number):
    status = sample("message_template_status_update_approved")
    value_of(status).update(event="UNDER_SECOND_REVIEW", reason="SOMETHING_NEW", brand_new={"a": 1})
    preference = sample("user_preferences_stop_marketing")
    value_of(preference)["user_preferences"][0]["value"] = "signup"
    assert processed_cleanly(post(status)) and processed_cleanly(post(preference))
    assert MessageTemplate.objects.get().status == "UNDER_SECOND_REVIEW"
    assert not MarketingPreference.objects.exists()
    assert AccountChange.objects.filter(field="user_preferences", applied=False).count() == 1


def test_a_value_of_the_wrong_type_is_recorded_and_the_rest_applied(post, number):
    payload = sample("phone_number_quality_update_upgrade")
    value_of(payload).update(current_limit={"tier": "TIER_10K"}, max_daily_conversations_per_business=["x"])
    event = post(payload)
    assert event.state == WebhookEventState.PROCESSED
    assert [error["path"] for error in event.item_errors] == [
        "entry[0].changes[0].current_limit",
        "entry[0].changes[0].max_daily_conversations_per_business",
    ]
    number = refreshed(number)
    assert (number.quality_event, number.messaging_limit_tier) == ("UPGRADE", "")
    change = AccountChange.objects.get()
    assert change.values["ignored"] == ["current_limit", "max_daily_conversations_per_business"]
    assert change.raw["current_limit"] == {"tier": "TIER_10K"}


@pytest.mark.parametrize(
    "garbage",
    [
        {"restriction_info": "soon"},
        {"restriction_info": [1, {"restriction_type": 7, "expiration": "next week"}]},
        {"event": ["ACCOUNT_RESTRICTION"], "restriction_info": None},
        {"violation_info": "SCAM", "ban_info": [1]},
    ],
)
def test_wrong_types_anywhere_in_an_account_update_never_fail_it(post, number, garbage):
    payload = sample("account_update_restriction")
    value_of(payload).update(garbage)
    event = post(payload)
    assert event.state == WebhookEventState.PROCESSED
    assert all(error["error"].startswith("ignored") for error in event.item_errors)
    assert AccountChange.objects.get().raw == value_of(payload)


def test_a_change_whose_value_is_not_an_object_is_recorded_on_the_event(post, number):
    payload = sample("account_alerts_limit_increase_deferred")
    payload["entry"][0]["changes"][0]["value"] = "alert!"
    event = post(payload)
    assert event.item_errors == [{"path": "entry[0].changes[0]", "error": "change has no value object"}]
    assert not AccountChange.objects.exists()


def test_the_entry_time_of_the_wrong_type_falls_back_to_when_it_was_applied(post, number):
    payload = sample("phone_number_name_update_approved")
    payload["entry"][0]["time"] = "yesterday"
    assert post(payload).state == WebhookEventState.PROCESSED
    assert refreshed(number).name_status == "APPROVED"


# --- once, in order -------------------------------------------------------------------------------


def test_a_redelivery_is_recorded_and_applied_once(post, number):
    first = post(sample("phone_number_quality_update_upgrade"))
    BusinessNumber.objects.filter(pk=number.pk).update(messaging_limit_tier="TIER_2K")  # so a second apply would show
    second = post(sample("phone_number_quality_update_upgrade"))

    assert processed_cleanly(first) and processed_cleanly(second)
    assert AccountChange.objects.get().webhook_event == first
    assert refreshed(number).messaging_limit_tier == "TIER_2K"
    process_webhook_event(event_id=first.pk, force=True)  # an operator's replay
    assert AccountChange.objects.count() == 1
    assert Event.objects.filter(type="number.updated").count() == 1


def test_an_older_update_delivered_late_never_overwrites_a_newer_one(post, number):
    newer = sample("phone_number_quality_update_upgrade")
    value_of(newer)["current_limit"] = "TIER_100K"
    older = at_time(sample("phone_number_quality_update_upgrade"), 1767355200 - 3600)
    value_of(older).update(current_limit="TIER_2K", max_daily_conversations_per_business="TIER_2K")

    assert processed_cleanly(post(newer)) and processed_cleanly(post(older))
    assert refreshed(number).messaging_limit_tier == "TIER_100K"
    assert BusinessAccount.objects.get(waba_id=WABA).messaging_limit == "TIER_10K"
    assert list(AccountChange.objects.order_by("pk").values_list("applied", flat=True)) == [True, False]


def test_template_statuses_out_of_order_keep_the_newest(post, number):
    paused = sample("message_template_status_update_paused")  # 1767297600
    approved = at_time(sample("message_template_status_update_approved"), 1767297600 - 60)
    value_of(approved).update(message_template_name="restock_alert", message_template_id=1893027461150651)
    post(paused), post(approved)
    assert MessageTemplate.objects.get(name="restock_alert").status == "PAUSED"


def test_purging_old_deliveries_keeps_the_history_of_what_they_changed(post, number):
    event = post(sample("account_update_restriction"))
    assert purge_webhook_events(before=timezone.now() + timedelta(days=1)) == 1
    assert not WebhookEvent.objects.filter(pk=event.pk).exists()
    change = AccountChange.objects.get()
    assert (change.webhook_event, change.field, change.applied) == (None, "account_update", True)


# --- routing ---------------------------------------------------------------------------------------


def test_a_number_scoped_change_reaches_only_the_number_it_names_within_the_account(post, number):
    sibling = BusinessNumberFactory(waba_id=WABA, display_phone_number="15550009999")
    elsewhere = BusinessNumberFactory(waba_id="900000000000001", display_phone_number="+1 555-773-0142")
    post(sample("phone_number_quality_update_upgrade"))
    assert refreshed(number).messaging_limit_tier == "TIER_10K"
    assert refreshed(sibling).messaging_limit_tier == ""
    assert refreshed(elsewhere).messaging_limit_tier == ""


def test_a_display_number_stored_with_formatting_still_matches(post):
    formatted = BusinessNumberFactory(waba_id=WABA, display_phone_number="+1 555-773-0142")
    assert processed_cleanly(post(sample("phone_number_name_update_approved")))
    assert refreshed(formatted).name_status == "APPROVED"


def test_an_unknown_account_is_unroutable(post, number):
    payload = sample("account_update_restriction")
    payload["entry"][0]["id"] = "999999999999999"
    event = post(payload)
    assert event.state == WebhookEventState.UNROUTABLE
    assert event.item_errors == [
        {"path": "entry[0].changes[0]", "error": "unknown WhatsApp Business Account id '999999999999999'"}
    ]
    assert not BusinessAccount.objects.exists() and not AccountChange.objects.exists()


def test_an_unknown_number_in_a_known_account_is_unroutable(post, number):
    payload = sample("phone_number_quality_update_upgrade")
    value_of(payload)["display_phone_number"] = "15550000000"
    event = post(payload)
    assert event.state == WebhookEventState.UNROUTABLE
    assert "unknown number '15550000000'" in event.item_errors[0]["error"]
    assert refreshed(number).messaging_limit_tier == ""


def test_one_bad_change_does_not_hold_back_the_others_of_its_delivery(post, number):
    payload = sample("phone_number_quality_update_upgrade")
    good = payload["entry"][0]["changes"][0]
    unknown_number = copy.deepcopy(good)
    unknown_number["value"]["display_phone_number"] = "15550000000"
    payload["entry"][0]["changes"] = [unknown_number, good]
    event = post(payload)
    assert event.state == WebhookEventState.PROCESSED
    assert [error["path"] for error in event.item_errors] == ["entry[0].changes[0]"]
    assert refreshed(number).messaging_limit_tier == "TIER_10K"


# --- realtime ----------------------------------------------------------------------------------------


def test_applying_publishes_the_number_as_it_is_now_to_every_number_of_the_account(post, number):
    sibling = BusinessNumberFactory(waba_id=WABA)
    post(sample("account_update_restriction"))
    published = Event.objects.filter(type="number.updated").order_by("number_id")
    assert [event.number_id for event in published] == [number.pk, sibling.pk]
    assert published[0].payload["number"]["account"]["restrictions"][0]["type"] == "RESTRICTED_BIZ_INITIATED_MESSAGING"


def test_a_template_change_is_published_to_the_accounts_numbers(post, number):
    BusinessNumberFactory(waba_id="900000000000001")  # another account's number hears nothing
    post(sample("message_template_quality_update_yellow"))
    (published,) = Event.objects.filter(type="template.updated")
    assert published.number_id == number.pk
    assert published.payload["template"]["quality_score"] == "YELLOW"


def test_a_marketing_stop_is_published_to_its_number(post, number):
    post(sample("user_preferences_stop_marketing"))
    (published,) = Event.objects.filter(type="contact.marketing_changed")
    contact = Contact.objects.get(wa_id="447700900461")
    assert (published.number_id, published.payload["contact_id"], published.payload["opted_out"]) == (
        number.pk,
        contact.pk,
        True,
    )


def test_a_change_that_moves_nothing_publishes_nothing(post, number):
    post(sample("phone_number_quality_update_upgrade"))
    post(at_time(sample("phone_number_quality_update_upgrade"), 1))  # older: recorded, not applied
    assert Event.objects.filter(type="number.updated").count() == 1

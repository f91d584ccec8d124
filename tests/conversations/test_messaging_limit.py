"""The portfolio's messaging limit: business-initiated templates counted per distinct customer across the
account's numbers, refused past the limit before Meta, a warning to supervisors at 80 %, and two sends racing
for the last slot."""

import functools
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import (
    BusinessAccount,
    BusinessNumber,
    MemberRole,
    Message,
    MessageTemplate,
    Notification,
    NumberAlert,
    NumberMembership,
)
from conversations.selectors import notifications_for, number_health, portfolio_usage
from conversations.services.errors import SendRefused
from conversations.services.outbound import send_template, send_text
from realtime.models import Event
from tests.factories import BusinessNumberFactory, ConversationFactory, UserFactory
from tests.threads import in_threads

WABA = "318273645502211"


def closed_window(number):
    return ConversationFactory(number=number, last_inbound_at=timezone.now() - timedelta(days=2))


@pytest.fixture
def template(db):
    return MessageTemplate.objects.create(
        waba_id=WABA, name="order_update", language="en", status="APPROVED", category="UTILITY",
        components=[{"type": "BODY", "text": "Your order is on its way."}],
    )  # fmt: skip


@pytest.fixture
def account(db):
    return BusinessAccount.objects.create(waba_id=WABA, messaging_limit="TIER_50")


def test_only_templates_outside_the_window_count_once_per_customer_across_numbers(number, staff, account, template):
    other_number = BusinessNumberFactory(waba_id=WABA)
    cold = closed_window(number)
    send_template(user=staff, conversation=cold, template=template, params=[])
    send_template(user=staff, conversation=cold, template=template, params=[])
    send_template(user=staff, conversation=closed_window(other_number), template=template, params=[])
    warm = ConversationFactory(number=number, last_inbound_at=timezone.now() - timedelta(hours=1))
    send_template(user=staff, conversation=warm, template=template, params=[])
    send_text(user=staff, conversation=warm, text="Anything else?")
    assert portfolio_usage(waba_ids=[WABA]) == {WABA: 2}


def test_a_new_customer_past_the_limit_is_refused_and_one_already_reached_is_not(
    number, staff, account, template, settings
):
    account.messaging_limit = "2"  # the legacy numeric spelling
    account.save()
    first, second = closed_window(number), closed_window(number)
    send_template(user=staff, conversation=first, template=template, params=[])
    send_template(user=staff, conversation=second, template=template, params=[])
    with pytest.raises(SendRefused) as refused:
        send_template(user=staff, conversation=closed_window(number), template=template, params=[])
    assert refused.value.code == "messaging_limit_reached"
    send_template(user=staff, conversation=first, template=template, params=[])
    account.limit_enforcement = "warn"
    account.save()
    send_template(user=staff, conversation=closed_window(number), template=template, params=[])
    assert Message.objects.filter(business_initiated=True).count() == 4


def test_the_api_answers_409_messaging_limit_reached(number, staff, api, account, template):
    account.messaging_limit = "1"
    account.save()
    send_template(user=staff, conversation=closed_window(number), template=template, params=[])
    conversation = closed_window(number)
    response = api.post(
        f"/api/conversations/{conversation.pk}/messages/", {"type": "template", "template": template.pk}, format="json"
    )
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "messaging_limit_reached"


def test_supervisors_are_warned_once_per_crossing_at_80_percent(number, staff, account, template):
    boss = UserFactory(username="boss")
    NumberMembership.objects.create(number=number, user=boss, role=MemberRole.SUPERVISOR)
    account.messaging_limit = "5"
    account.save()
    conversations = [closed_window(number) for _ in range(5)]
    for conversation in conversations[:3]:
        send_template(user=staff, conversation=conversation, template=template, params=[])
    assert not Notification.objects.filter(recipient=boss).exists()
    send_template(user=staff, conversation=conversations[3], template=template, params=[])  # 4 of 5
    send_template(user=staff, conversation=conversations[4], template=template, params=[])
    assert Notification.objects.filter(recipient=boss).count() == 1
    assert Notification.objects.filter(recipient=staff).count() == 0  # agents are not warned
    alert = NumberAlert.objects.get(number=number, kind="limit", resolved_at__isnull=True)
    assert (alert.condition, alert.detail) == ("NEAR_LIMIT", "4 of 5 customers in the last 24 hours")
    # Shown as every alert is: the inbox's banner, the Numbers page, the supervisor's notification list.
    (health,) = number_health(numbers=BusinessNumber.objects.filter(pk=number.pk))
    assert [a["title"] for a in health["alerts"]] == ["The messaging limit is nearly reached"]
    assert [n.pk for n in notifications_for(user=boss)] == [Notification.objects.get(recipient=boss).pk]
    assert Event.objects.filter(type="number.alerts_changed").exists()


@pytest.mark.django_db(transaction=True)
def test_two_sends_racing_for_the_last_slot_let_one_through(number, staff, account, template, meta_sandbox):
    account.messaging_limit = "1"
    account.save()
    racing = [closed_window(number), closed_window(number)]
    barrier = threading.Barrier(2)

    def send(conversation) -> str:
        barrier.wait()
        try:
            send_template(user=staff, conversation=conversation, template=template, params=[])
        except SendRefused as refused:
            return refused.code
        return "sent"

    outcomes = in_threads(*(functools.partial(send, conversation) for conversation in racing))
    assert sorted(outcomes) == ["messaging_limit_reached", "sent"]
    assert Message.objects.filter(business_initiated=True).count() == 1


def test_a_limit_only_the_number_knows_is_enforced_as_the_numbers_page_shows_it(number, staff, template):
    """Graph API v23 and older name the limit only on the number (``messaging_limit_tier``)."""
    BusinessNumber.objects.filter(pk=number.pk).update(waba_id=WABA, messaging_limit_tier="1")
    number.refresh_from_db()
    send_template(user=staff, conversation=closed_window(number), template=template, params=[])

    with pytest.raises(SendRefused) as refused:
        send_template(user=staff, conversation=closed_window(number), template=template, params=[])

    assert refused.value.code == "messaging_limit_reached"
    [health] = number_health(numbers=BusinessNumber.objects.filter(pk=number.pk))
    assert (health["messaging_limit"]["limit"], health["messaging_limit"]["used_24h"]) == (1, 1)

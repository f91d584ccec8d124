from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.models import MemberRole, NumberMembership, RateCardEntry
from conversations.selectors import number_costs
from tests.factories import (
    BusinessNumberFactory,
    ContactFactory,
    ConversationFactory,
    OutboundMessageFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def at(day, hour=12):
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def charged(conversation, *, day, category="marketing", pricing_type="regular"):
    return OutboundMessageFactory(
        conversation=conversation,
        timestamp=at(day),
        status="delivered",
        pricing_type=pricing_type,
        pricing_category=category,
        pricing_billable=pricing_type == "regular",
    )


@pytest.fixture
def card():
    RateCardEntry.objects.create(
        market="BR",
        category="marketing",
        price=Decimal("0.0625"),
        currency="USD",
        valid_from=date(2026, 1, 1),
        valid_until=date(2026, 3, 10),
    )
    RateCardEntry.objects.create(
        market="BR", category="marketing", price=Decimal("0.07"), currency="USD", valid_from=date(2026, 3, 10)
    )
    RateCardEntry.objects.create(
        market="+44", category="utility", price=Decimal("0.02"), currency="USD", valid_from=date(2026, 1, 1)
    )


@pytest.fixture
def number():
    return BusinessNumberFactory()


def test_messages_are_priced_at_the_rate_of_their_day_for_the_customer_country(card, number):
    brazil = ConversationFactory(number=number, contact=ContactFactory(wa_id="5511987654321"))
    britain = ConversationFactory(number=number, contact=ContactFactory(wa_id="447700900123"))
    charged(brazil, day=9)
    charged(brazil, day=10)
    charged(britain, day=10, category="utility")
    charged(britain, day=11)  # no marketing rate for +44
    charged(brazil, day=11, pricing_type="free_customer_service", category="service")
    OutboundMessageFactory(
        conversation=brazil,
        timestamp=datetime(2026, 4, 1, tzinfo=UTC),
        pricing_type="regular",
        pricing_category="marketing",
    )

    costs = number_costs(number=number, month=date(2026, 3, 1))

    assert costs["total"] == {"count": 3, "amount": Decimal("0.1525")}
    assert costs["currency"] == "USD"
    assert costs["by_category"] == [
        {"category": "marketing", "count": 2, "amount": Decimal("0.1325")},
        {"category": "utility", "count": 1, "amount": Decimal("0.02")},
    ]
    assert [(d["day"].day, d["count"], d["amount"]) for d in costs["by_day"]] == [
        (9, 1, Decimal("0.0625")),
        (10, 2, Decimal("0.09")),
    ]
    assert costs["no_rate"] == [{"category": "marketing", "count": 1}]


def test_queries_do_not_grow_with_the_messages(card, number):
    conversation = ConversationFactory(number=number, contact=ContactFactory(wa_id="5511987654321"))

    def queries():
        with CaptureQueriesContext(connection) as captured:
            number_costs(number=number, month=date(2026, 3, 1))
        return len(captured)

    for day in (1, 2, 3):
        charged(conversation, day=day)
    few = queries()
    for i in range(297):
        charged(conversation, day=1 + i % 28)
    assert number_costs(number=number, month=date(2026, 3, 1))["total"]["count"] == 300
    assert queries() == few


@pytest.fixture
def team(number):
    users = {name: UserFactory(username=name) for name in ("sue", "ann", "olga")}
    NumberMembership.objects.create(number=number, user=users["sue"], role=MemberRole.SUPERVISOR)
    NumberMembership.objects.create(number=number, user=users["ann"], role=MemberRole.AGENT)
    NumberMembership.objects.create(number=BusinessNumberFactory(), user=users["olga"], role=MemberRole.SUPERVISOR)
    return users


def test_the_api_answers_the_number_supervisors_only(client, card, number, team):
    charged(ConversationFactory(number=number, contact=ContactFactory(wa_id="5511987654321")), day=12)
    url = f"/api/numbers/{number.pk}/costs/?month=2026-03"
    client.force_login(team["sue"])
    body = client.get(url).json()
    assert body["total"] == {"count": 1, "amount": "0.070000"}
    assert body["rows"] == [{"day": "2026-03-12", "category": "marketing", "count": 1, "amount": "0.070000"}]
    bad = client.get(f"/api/numbers/{number.pk}/costs/?month=March")
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"].keys() == {"month"}
    client.force_login(team["ann"])
    assert client.get(url).status_code == 403
    client.force_login(team["olga"])
    assert client.get(url).status_code == 404
    assert client.get(f"/numbers/{number.pk}/costs/?month=2026-03").status_code == 404


def test_the_page_and_its_csv(client, card, number, team):
    conversation = ConversationFactory(number=number, contact=ContactFactory(wa_id="5511987654321"))
    charged(conversation, day=12)
    charged(conversation, day=12)
    charged(ConversationFactory(number=number, contact=ContactFactory(wa_id="447700900123")), day=13)
    client.force_login(team["sue"])
    page = client.get(f"/numbers/{number.pk}/costs/?month=2026-03").content.decode()
    assert "Total: 2 billable message(s), 0.14 USD" in page
    assert "No rate: marketing 1 message(s)" in page
    assert f'href="/numbers/{number.pk}/costs/"' in client.get("/numbers/").content.decode()
    csv = client.get(f"/numbers/{number.pk}/costs/?month=2026-03&format=csv").content.decode()
    assert csv.splitlines() == ["day,category,count,amount,currency", "2026-03-12,marketing,2,0.140000,USD"]
    client.force_login(team["ann"])
    assert client.get(f"/numbers/{number.pk}/costs/?month=2026-03").status_code == 403

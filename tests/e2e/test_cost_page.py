"""A number's cost page in headless Chromium against real Daphne, Celery, PostgreSQL and Redis: a supervisor sees
the month's priced totals, and axe-core finds nothing against WCAG 2.1 A and AA."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from conversations.models import MemberRole, NumberMembership, RateCardEntry
from tests.e2e.axe import axe_source, wcag_violations
from tests.e2e.conftest import logged_in_page, staff_member
from tests.factories import ContactFactory, ConversationFactory, OutboundMessageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_supervisor_sees_the_month_costs(stack, browser, number):
    RateCardEntry.objects.create(
        market="BR", category="marketing", price=Decimal("0.0625"), currency="USD", valid_from=date(2026, 1, 1)
    )
    conversation = ConversationFactory(number=number, contact=ContactFactory(wa_id="5511987654321"))
    for day in (3, 3, 17):
        OutboundMessageFactory(
            conversation=conversation,
            timestamp=datetime(2026, 3, day, 9, tzinfo=UTC),
            status="delivered",
            pricing_type="regular",
            pricing_category="marketing",
            pricing_billable=True,
        )
    sue = staff_member("sue")
    NumberMembership.objects.create(number=number, user=sue, role=MemberRole.SUPERVISOR)
    page = logged_in_page(browser, stack.base_url, sue, bypass_csp=True)

    page.goto("/numbers/")
    page.get_by_role("link", name="Costs").click()
    page.get_by_label("Month").fill("2026-03")
    page.get_by_role("button", name="Show").click()

    expect(page.locator("#cost-total")).to_have_text("Total: 3 billable message(s), 0.19 USD")
    expect(page.locator("#cost-by-day tbody tr")).to_have_count(2)
    expect(page.locator(".cost-chart rect")).to_have_count(2)
    violations = wcag_violations(page, axe_source())
    assert not violations, "\n".join(violations)

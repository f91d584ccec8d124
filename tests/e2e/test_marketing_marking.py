"""Marking a customer's marketing stop in the contact panel, in headless Chromium against real Daphne, Celery,
PostgreSQL and Redis: the panel says who marked it, and another agent's open panel follows live."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import logged_in_page, sandbox_stack_overrides, staff_member
from tests.e2e.test_inbox_browser import open_inbox
from tests.factories import ContactFactory, ConversationFactory, MessageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Opening a conversation sends a read receipt: the sandbox answers it.
stack_overrides = sandbox_stack_overrides


def test_a_stop_marked_by_one_agent_shows_for_another_live(stack, browser, number):
    at = datetime.now(UTC) - timedelta(minutes=5)
    conversation = ConversationFactory(
        number=number, contact=ContactFactory(profile_name="Amara Okafor"), last_message_at=at, last_inbound_at=at
    )
    MessageFactory(conversation=conversation, body="Please stop the offers", timestamp=at)
    pages = [
        open_inbox(logged_in_page(browser, stack.base_url, staff_member(name, number)), f"/inbox/{conversation.pk}/")
        for name in ("ana", "ben")
    ]
    panels = []
    for page in pages:
        page.get_by_role("button", name="Contact").click()
        panels.append(page.get_by_role("complementary", name="Amara Okafor"))
        expect(panels[-1].locator("#contact-marketing")).to_have_text("No choice known: marketing may be sent.")

    panels[0].get_by_role("button", name="Mark as stopped marketing").click()

    for panel in panels:
        expect(panel.locator("#contact-marketing")).to_contain_text("Stopped marketing, marked by Ana")
        expect(panel.get_by_role("button", name="Mark as resumed marketing")).to_be_visible()

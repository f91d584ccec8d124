"""A template send the API refuses, in headless Chromium against real Daphne, Celery, PostgreSQL and Redis: the
composer shows the refusal's words, here the portfolio's messaging limit reached."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from conversations.models import BusinessAccount, Message, MessageTemplate
from tests.e2e.conftest import WABA, logged_in_page, sandbox_stack_overrides, staff_member
from tests.e2e.test_inbox_browser import open_inbox
from tests.factories import ContactFactory, ConversationFactory, MessageFactory, OutboundMessageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Opening a conversation sends a read receipt: the sandbox answers it.
stack_overrides = sandbox_stack_overrides


def test_a_send_past_the_messaging_limit_shows_why_in_the_composer(stack, browser, number):
    BusinessAccount.objects.create(waba_id=WABA, messaging_limit="1")
    now = datetime.now(UTC)
    OutboundMessageFactory(conversation=ConversationFactory(number=number), business_initiated=True, timestamp=now)
    MessageTemplate.objects.create(
        waba_id=WABA,
        name="order_update",
        language="en_US",
        status="APPROVED",
        category="UTILITY",
        components=[{"type": "BODY", "text": "Your order has shipped."}],
    )
    at = now - timedelta(days=2)
    conversation = ConversationFactory(
        number=number, contact=ContactFactory(profile_name="Amara Okafor"), last_message_at=at, last_inbound_at=at
    )
    MessageFactory(conversation=conversation, body="Where is my parcel?", timestamp=at)
    page = open_inbox(
        logged_in_page(browser, stack.base_url, staff_member("ana", number)), f"/inbox/{conversation.pk}/"
    )

    if page.locator("#template-form").is_hidden():
        page.get_by_role("button", name="Template").click()
    expect(page.get_by_label("Template")).to_contain_text("order_update")
    page.get_by_role("button", name="Send template").click()

    expect(page.locator("#composer-error")).to_contain_text("messaging limit")
    assert not Message.objects.filter(conversation=conversation, direction="out").exists()

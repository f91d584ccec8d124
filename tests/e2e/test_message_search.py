"""Message search and the contact panel in headless Chromium against real Daphne, Celery, PostgreSQL and Redis: a word
of an old message finds it, and the hit opens its conversation there; the contact panel shows the contact's other
conversation, and a note one agent writes appears for another live. From the keyboard, meeting WCAG 2.1 AA."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation, ConversationStatus
from tests.e2e.axe import axe_source
from tests.e2e.conftest import logged_in_page, sandbox_stack_overrides, staff_member
from tests.e2e.test_inbox_access import assert_meets_wcag, small_controls
from tests.e2e.test_inbox_browser import open_inbox
from tests.factories import BusinessNumberFactory, ContactFactory, ConversationFactory, MessageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Opening a conversation sends a read receipt: the sandbox answers it.
stack_overrides = sandbox_stack_overrides

# More than the thread's first page (50): the oldest message is not on it.
MESSAGES = 80


@pytest.fixture
def conversation(number) -> Conversation:
    """Amara wrote MESSAGES messages a minute apart, the oldest with her tracking code; she wrote to a second number
    too, where that conversation is resolved."""
    start = datetime.now(UTC) - timedelta(minutes=MESSAGES)
    amara = ContactFactory(profile_name="Amara Okafor")
    conversation = ConversationFactory(
        number=number, contact=amara, last_message_at=start + timedelta(minutes=MESSAGES - 1), last_inbound_at=start
    )
    MessageFactory(conversation=conversation, body="My tracking code is ZX81, where is the parcel?", timestamp=start)
    for n in range(1, MESSAGES):
        MessageFactory(conversation=conversation, body=f"Update number {n}", timestamp=start + timedelta(minutes=n))
    return conversation


@pytest.fixture
def second_number(number, conversation):
    other = BusinessNumberFactory(display_phone_number="15550002222")
    ConversationFactory(number=other, contact=conversation.contact, status=ConversationStatus.RESOLVED)
    return other


def test_a_word_of_an_old_message_opens_its_conversation_there_and_the_contact_panel_shares_notes_live(
    stack, browser, number, conversation, second_number
):
    axe = axe_source()
    ana_user = staff_member("ana", number, second_number)
    ana = open_inbox(logged_in_page(browser, stack.base_url, ana_user, bypass_csp=True), "/inbox/")

    search = ana.get_by_role("searchbox", name="Search contacts and messages")
    search.fill("tracking")
    search.press("Enter")
    hits = ana.locator("#message-hit-list .message-hit-link")
    expect(hits).to_have_count(1)
    expect(hits.first.locator(".hit-contact")).to_have_text("Amara Okafor")
    expect(hits.first.locator("mark")).to_have_text(["tracking"])
    assert_meets_wcag(ana, axe)

    # From the keyboard: the hit is a link; Enter opens the conversation at the message, far above the newest page.
    hits.first.focus()
    hits.first.press("Enter")
    expect(ana.locator("#connection-state")).to_have_attribute("data-state", "live")
    found = ana.locator(".message-found")
    expect(found).to_have_count(1)
    expect(found).to_contain_text("My tracking code is ZX81")
    expect(found).to_be_in_viewport()
    expect(found).to_be_focused()
    expect(ana.locator("#messages .message").last).not_to_contain_text(f"Update number {MESSAGES - 1}")
    # The newer history loads as the reader scrolls down to it.
    ana.wait_for_function(
        """(newest) => {
          const thread = document.getElementById("thread");
          thread.scrollTo({ top: thread.scrollHeight });
          const messages = thread.querySelectorAll(".message");
          return messages[messages.length - 1].textContent.includes(newest);
        }""",
        arg=f"Update number {MESSAGES - 1}",
        polling=250,
    )
    expect(ana.locator("#messages .message")).to_have_count(MESSAGES)  # every one, none twice

    # The contact panel, from the keyboard (i): the contact's conversation on the other number, with its status.
    ana.keyboard.press("i")
    panel = ana.get_by_role("complementary", name="Amara Okafor")
    expect(panel).to_be_visible()
    other = panel.locator(".contact-conversation-link")
    expect(other).to_have_count(1)
    expect(other).to_contain_text("+15550002222")
    expect(other).to_contain_text("Resolved")

    ben = open_inbox(logged_in_page(browser, stack.base_url, staff_member("ben", number)), f"/inbox/{conversation.pk}/")
    ben.get_by_role("button", name="Contact").click()
    ben_panel = ben.get_by_role("complementary", name="Amara Okafor")
    expect(ben_panel.get_by_text("No notes yet.")).to_be_visible()
    expect(ben_panel.locator(".contact-conversation-link")).to_have_count(0)  # Ben is not on the other number

    ana.get_by_label("New note").fill("Prefers messages to calls")
    ana.get_by_role("button", name="Add note").press("Enter")
    expect(panel.locator(".contact-note-body")).to_have_text(["Prefers messages to calls"])
    expect(ben_panel.locator(".contact-note-body")).to_have_text(["Prefers messages to calls"])
    expect(ben_panel.locator(".contact-note-meta")).to_contain_text("Ana")
    assert_meets_wcag(ana, axe)

    # Escape closes it, and focus goes back to the control that opened it.
    panel.get_by_role("button", name="Add note").press("Escape")
    expect(panel).to_be_hidden()
    expect(ana.get_by_role("button", name="Contact")).to_be_focused()
    ana.context.close()
    ben.context.close()


def test_on_a_phone_the_contact_panel_is_a_pane_of_its_own_with_a_way_back(stack, browser, number, conversation):
    phone = {"viewport": {"width": 390, "height": 800}, "is_mobile": True, "has_touch": True}
    ana = open_inbox(
        logged_in_page(browser, stack.base_url, staff_member("ana", number), **phone), f"/inbox/{conversation.pk}/"
    )
    thread = ana.get_by_role("main")
    expect(thread).to_be_visible()

    ana.get_by_role("button", name="Contact").tap()
    panel = ana.get_by_role("complementary", name="Amara Okafor")
    expect(panel).to_be_visible()
    expect(thread).to_be_hidden()
    expect(ana.get_by_role("complementary", name="Inbox")).to_be_hidden()
    assert small_controls(ana) == []

    panel.get_by_role("button", name="Close the contact panel, back to the conversation").tap()
    expect(panel).to_be_hidden()
    expect(thread).to_be_visible()
    expect(ana.get_by_role("button", name="Contact")).to_be_focused()
    ana.context.close()

"""Private notes and mentions in headless Chromium against real Daphne, Celery, PostgreSQL, Redis and the Meta
sandbox: an agent writes a note mentioning a colleague, who is notified live in their own browser, and the
customer receives nothing. From the keyboard, and meeting WCAG 2.1 AA."""

import pytest
from playwright.sync_api import Page, expect

from conversations.models import Conversation, ConversationNote, Direction, Message
from tests.e2e.axe import axe_source, wcag_violations
from tests.e2e.conftest import logged_in_page, sandbox_stack_overrides, staff_member, wait_for
from tests.e2e.test_inbox_browser import deliver, open_inbox, processed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

stack_overrides = sandbox_stack_overrides

# Records every browser notification the page raises (the real one, permission granted, still shows).
RECORD_NOTIFICATIONS = """
window.shownNotifications = [];
const Original = window.Notification;
window.Notification = class extends Original {
  constructor(title, options) { super(title, options); window.shownNotifications.push({ title, body: options.body }); }
};
Object.defineProperty(window.Notification, "permission", { get: () => Original.permission });
window.Notification.requestPermission = Original.requestPermission.bind(Original);
"""


@pytest.fixture
def conversation(stack, number) -> Conversation:
    deliver(stack, wa_id="447700900461", name="Amara Okafor", content={"text": {"body": "Where is my refund?"}})
    wait_for(processed, what="the customer's message")
    return Conversation.objects.get(number=number)


def assert_meets_wcag(page: Page, axe: str) -> None:
    violations = wcag_violations(page, axe)
    assert not violations, "\n".join(violations)


def test_a_note_mentioning_a_colleague_notifies_them_live_and_never_reaches_the_customer(
    stack, browser, number, conversation, sandbox_process
):
    axe = axe_source()
    ana = open_inbox(
        logged_in_page(browser, stack.base_url, staff_member("ana", number), bypass_csp=True),
        f"/inbox/{conversation.pk}/",
    )
    ben_page = logged_in_page(browser, stack.base_url, staff_member("ben", number), notifications=True, bypass_csp=True)
    ben_page.add_init_script(RECORD_NOTIFICATIONS)
    ben = open_inbox(ben_page, "/inbox/")
    expect(ben.locator("#notification-count")).to_be_hidden()

    # Ana switches the composer to a note from the keyboard, picks Ben from the "@" menu and adds the note.
    ana.get_by_role("button", name="Private note").focus()
    ana.keyboard.press("Enter")
    expect(ana.get_by_role("button", name="Private note")).to_have_attribute("aria-pressed", "true")
    note_box = ana.get_by_role("textbox", name="Private note")
    expect(note_box).to_be_focused()
    note_box.press_sequentially("@be")
    expect(ana.get_by_role("option", name="@ben Ben")).to_be_visible()
    ana.keyboard.press("Enter")
    note_box.press_sequentially("can you approve the refund?")
    expect(note_box).to_have_value("@ben can you approve the refund?")
    ana.keyboard.press("Enter")

    note = ana.locator(".thread-note")
    expect(note).to_have_count(1)
    expect(note).to_contain_text("Private note")
    expect(note.locator(".note-author")).to_have_text("Ana")
    expect(note.locator(".mention")).to_have_text("@ben")
    expect(note.locator(".note-body")).to_have_text("@ben can you approve the refund?")
    expect(note_box).to_have_value("")
    # Between the messages in time order: after the customer's message.
    expect(ana.locator("#messages > .message, #messages > .thread-note").last).to_have_class("thread-note")
    assert_meets_wcag(ana, axe)

    # Ben hears of it at once: the bell's count, the list, the browser's notification.
    expect(ben.locator("#notification-count")).to_have_text("1")
    ben.wait_for_function("() => window.shownNotifications.length === 1")
    assert ben.evaluate("window.shownNotifications[0]") == {
        "title": "Ana mentioned you",
        "body": "@ben can you approve the refund?",
    }
    bell = ben.get_by_role("button", name="Notifications: 1 unread")
    bell.focus()
    ben.keyboard.press("Enter")
    entry = ben.locator(".notification-link")
    expect(entry).to_be_focused()
    expect(entry).to_contain_text("Ana mentioned you")
    expect(entry).to_contain_text("Amara Okafor")

    # Opening it (Enter) reads it and opens the conversation at the note.
    ben.keyboard.press("Enter")
    note_id = ConversationNote.objects.get().pk
    expect(ben).to_have_url(f"{stack.base_url}/inbox/{conversation.pk}/#note-{note_id}")
    expect(ben.locator(f"#note-{note_id}")).to_be_focused()
    expect(ben.locator("#notification-count")).to_be_hidden()
    ben.get_by_role("button", name="Notifications").click()
    expect(ben.locator(".notification-link")).to_have_attribute("data-unread", "false")
    assert_meets_wcag(ben, axe)
    ben.keyboard.press("Escape")
    expect(ben.locator("#notification-panel")).to_be_hidden()

    # The customer got nothing: no message was made, the sandbox (Meta) received no send.
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()
    assert sandbox_process.sent() == []
    ana.context.close()
    ben.context.close()

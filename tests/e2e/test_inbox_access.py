"""The inbox for everyone: on a phone (one pane at a time), from the keyboard alone, and against axe-core's WCAG 2.1
A and AA rules, in headless Chromium against real Daphne, Celery, PostgreSQL, Redis and the Meta sandbox."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from conversations.models import Conversation, MessageStatus
from tests.e2e.axe import AXE_INTEGRITY, AXE_VERSION, axe_source, integrity_of, wcag_violations
from tests.e2e.conftest import logged_in_page, sandbox_stack_overrides, staff_member, wait_for
from tests.factories import (
    CannedReplyFactory,
    ContactFactory,
    ConversationFactory,
    LabelFactory,
    MessageFactory,
    OutboundMessageFactory,
    UserFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

stack_overrides = sandbox_stack_overrides

PHONE = {"viewport": {"width": 390, "height": 800}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
# What a finger can hit (Apple's and WCAG 2.5.5's 44 CSS pixels), for every control of the phone layout.
TOUCH_PX = 44
CONTROLS = "a[href], button, select, input:not([type=hidden]), textarea, label.attach"


@pytest.fixture(scope="module")
def sandbox_config() -> dict:
    # The customers of these tests are made in the database, not written in through the sandbox: its side of the
    # reply window is taken as open, as ours is.
    return {"assume_window_open": True}


def recent_conversation(number, name: str, *, minutes_ago: int, text: str) -> Conversation:
    """A customer who wrote ``minutes_ago``: the reply window is open, the text composer shown."""
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    conversation = ConversationFactory(
        number=number, contact=ContactFactory(profile_name=name), last_message_at=at, last_inbound_at=at
    )
    MessageFactory(conversation=conversation, body=text, preview=text, timestamp=at)
    return conversation


def open_page(page: Page, path: str) -> Page:
    page.goto(path)
    expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
    return page


def row(page: Page, conversation: Conversation):
    return page.locator(f'.conversation-row[data-conversation-id="{conversation.pk}"]')


def focused_conversation(page: Page) -> int | None:
    return page.evaluate(
        "() => { const row = document.activeElement.closest('.conversation-row');"
        " return row ? Number(row.dataset.conversationId) : null; }"
    )


def small_controls(page: Page) -> list[str]:
    """Visible controls smaller than a fingertip, as "<tag>#id.class WxH"."""
    return page.locator(CONTROLS).evaluate_all(
        """(nodes, minimum) => nodes
          .filter((n) => n.getClientRects().length && getComputedStyle(n).visibility !== 'hidden')
          .filter((n) => !n.closest('.content'))  // links inside a customer's text are text
          .filter((n) => !n.matches('.visually-hidden'))  // the file input: its label is what a finger hits
          .map((n) => [n, n.getBoundingClientRect()])
          .filter(([, box]) => box.width < minimum || box.height < minimum)
          .map(([n, box]) => `${n.tagName.toLowerCase()}#${n.id}.${n.className} ${box.width}x${box.height}`)""",
        TOUCH_PX,
    )


def assert_meets_wcag(page: Page, axe: str) -> None:
    violations = wcag_violations(page, axe)
    assert not violations, "\n".join(violations)


def test_axe_core_is_the_pinned_release_and_a_damaged_copy_is_fetched_again(axe, tmp_path):
    assert axe.startswith(f"/*! axe v{AXE_VERSION}\n")
    damaged = tmp_path / "axe-core.tgz"
    damaged.write_bytes(b"not the release")
    assert axe_source(cache=damaged) == axe
    assert integrity_of(damaged.read_bytes()) == AXE_INTEGRITY


def test_the_sign_in_page_meets_wcag_21_aa(stack, browser, axe):
    page = browser.new_page(base_url=stack.base_url, bypass_csp=True)
    page.goto("/login/")
    assert_meets_wcag(page, axe)
    page.fill("#id_username", "nobody")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".form-error")).to_be_visible()
    assert_meets_wcag(page, axe)
    page.context.close()


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_inbox_and_a_thread_meet_wcag_21_aa(stack, browser, axe, number, device):
    conversation = recent_conversation(number, "Amara Okafor", minutes_ago=5, text="Is my order on its way?")
    MessageFactory.create_batch(2, conversation=ConversationFactory(number=number))  # unread badges
    for status in (MessageStatus.READ, MessageStatus.FAILED, MessageStatus.UNCONFIRMED):
        OutboundMessageFactory(
            conversation=conversation, body=f"A reply, {status}", status=status, timestamp=datetime.now(UTC)
        )
    page = logged_in_page(browser, stack.base_url, staff_member("ana", number), bypass_csp=True, **device)
    open_page(page, "/inbox/")
    expect(page.locator(".conversation-row .badge")).to_have_count(2)
    assert_meets_wcag(page, axe)
    page.get_by_role("button", name="Keyboard shortcuts").click()
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    assert_meets_wcag(page, axe)

    open_page(page, f"/inbox/{conversation.pk}/")
    expect(page.locator("#messages .message")).to_have_count(4)
    expect(page.locator(".decision-buttons button")).to_have_count(2)
    page.locator(".message-in").first.hover()
    page.locator(".message-in .action-reply").first.click()  # the reply preview shows
    expect(page.locator("#reply-preview")).to_be_visible()
    assert_meets_wcag(page, axe)
    page.context.close()


def test_on_a_phone_a_conversation_opens_full_screen_takes_a_reply_and_goes_back(stack, browser, sandbox, number):
    older = recent_conversation(number, "Bea Lind", minutes_ago=30, text="Hello")
    conversation = recent_conversation(number, "Amara Okafor", minutes_ago=5, text="Is my order on its way?")
    page = open_page(logged_in_page(browser, stack.base_url, staff_member("ana", number), **PHONE), "/inbox/")
    expect(page.locator(".sidebar")).to_be_visible()
    expect(page.locator("#thread-pane")).to_be_hidden()
    expect(page.locator(".conversation-row")).to_have_count(2)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert small_controls(page) == []

    row(page, conversation).locator("a").tap()
    expect(page).to_have_url(re.compile(rf"/inbox/{conversation.pk}/$"))
    expect(page.locator(".sidebar")).to_be_hidden()
    expect(page.locator(".thread-title")).to_have_text("Amara Okafor")
    back = page.get_by_role("link", name="Back to conversations")
    expect(back).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert small_controls(page) == []
    composer = page.locator("#composer-input")
    assert composer.bounding_box()["y"] + composer.bounding_box()["height"] <= 800

    composer.tap()
    # The on-screen keyboard takes the lower part of the screen: the page fits what is left, composer at its foot.
    page.set_viewport_size({"width": 390, "height": 450})
    expect(page.locator(".inbox")).to_have_js_property("offsetHeight", 450)
    assert page.evaluate("() => document.documentElement.style.getPropertyValue('--app-height')") == "450px"
    box = composer.bounding_box()
    assert box["y"] > 0 and box["y"] + box["height"] <= 450
    expect(composer).to_be_focused()
    composer.fill("It ships today")
    page.locator("#send-button").tap()
    expect(page.locator(".message-out", has_text="It ships today")).to_be_visible()
    expect(composer).to_have_value("")
    wait_for(lambda: [s["request"]["text"]["body"] for s in sandbox.sent()] == ["It ships today"], what="the send")
    page.set_viewport_size(PHONE["viewport"])

    back.tap()
    expect(page).to_have_url(re.compile(r"/inbox/$"))
    expect(page.locator("#thread-pane")).to_be_hidden()
    expect(row(page, older)).to_be_visible()
    expect(row(page, conversation).locator(".preview")).to_have_text("You: It ships today")
    page.context.close()


def test_the_inbox_works_from_the_keyboard_alone(stack, browser, sandbox, number):
    newer = recent_conversation(number, "Amara Okafor", minutes_ago=5, text="Is my order on its way?")
    older = recent_conversation(number, "Bea Lind", minutes_ago=30, text="Hello")
    page = open_page(logged_in_page(browser, stack.base_url, staff_member("ana", number), **DESKTOP), "/inbox/")
    # The desktop keeps list and thread side by side, without a back control.
    sidebar, pane = page.locator(".sidebar").bounding_box(), page.locator("#thread-pane").bounding_box()
    assert sidebar["x"] + sidebar["width"] <= pane["x"] and sidebar["y"] == pane["y"]

    page.keyboard.press("j")
    assert focused_conversation(page) == newer.pk
    assert page.evaluate("() => document.activeElement.matches(':focus-visible')")
    assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("ArrowDown")
    assert focused_conversation(page) == older.pk
    page.keyboard.press("k")
    assert focused_conversation(page) == newer.pk
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/inbox/{older.pk}/$"))
    expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
    expect(page.get_by_role("link", name="Back to conversations")).to_be_hidden()
    # Opened from the keyboard: the place in the list is kept.
    wait_for(lambda: focused_conversation(page) == older.pk, what="the open row focused")

    page.keyboard.press("r")
    expect(page.locator("#composer-input")).to_be_focused()
    page.keyboard.type("Line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("Line two")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".message-out .content")).to_have_text("Line one\nLine two")
    expect(page.locator("#composer-input")).to_have_value("")
    page.keyboard.type("Sent with Enter")
    page.keyboard.press("Enter")
    expect(page.locator(".message-out", has_text="Sent with Enter")).to_be_visible()

    page.keyboard.press("Escape")  # out of the composer, back to the list, where the reply moved its row to the top
    assert focused_conversation(page) == older.pk
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/inbox/{newer.pk}/$"))
    wait_for(lambda: focused_conversation(page) == newer.pk, what="the open row focused")

    # ? lists the shortcuts, and single-key ones can be turned off there (WCAG 2.1.4); the list's arrows stay.
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog.locator("dd")).to_contain_text(
        ["Next conversation", "Write a reply", "Send (Shift+Enter: a new line)"]
    )
    switch = dialog.get_by_label("Single-key shortcuts")
    expect(switch).to_be_focused()
    expect(switch).to_be_checked()
    page.keyboard.press("Space")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # The dialog's close event (a task after it hides) puts focus back on the row, redrawn meanwhile or not.
    wait_for(lambda: focused_conversation(page) == newer.pk, what="focus back on the open row")
    page.keyboard.press("k")
    assert focused_conversation(page) == newer.pk
    page.keyboard.press("ArrowUp")
    assert focused_conversation(page) == older.pk
    wait_for(lambda: len(sandbox.sent()) == 2, what="both replies sent")
    page.context.close()


def test_a_bubbles_reply_and_reaction_buttons_are_reached_from_the_keyboard(stack, browser, sandbox, number):
    conversation = recent_conversation(number, "Amara Okafor", minutes_ago=5, text="Is my order on its way?")
    MessageFactory(
        conversation=conversation, body="It was due Monday", preview="It was due Monday", timestamp=datetime.now(UTC)
    )
    customers = list(conversation.messages.order_by("timestamp"))
    page = open_page(
        logged_in_page(browser, stack.base_url, staff_member("ana", number), **DESKTOP), f"/inbox/{conversation.pk}/"
    )
    page.locator("#thread").focus()
    page.keyboard.press("ArrowUp")  # from the thread itself: the newest message
    newest = page.locator(f'#messages .message[data-message-id="{customers[1].pk}"]')
    expect(newest).to_be_focused()
    page.keyboard.press("ArrowUp")
    oldest = page.locator(f'#messages .message[data-message-id="{customers[0].pk}"]')
    expect(oldest).to_be_focused()
    page.keyboard.press("Tab")
    expect(oldest.get_by_role("button", name="Reply")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#reply-preview")).to_contain_text("Replying to: Is my order on its way?")
    expect(page.locator("#composer-input")).to_be_focused()
    page.keyboard.type("On its way today")
    page.keyboard.press("Enter")
    wait_for(lambda: [s["request"].get("context") for s in sandbox.sent()], what="the reply sent")
    assert sandbox.sent()[0]["request"]["context"] == {"message_id": customers[0].wamid}

    page.locator("#thread").focus()
    page.keyboard.press("ArrowUp")  # the newest is now the reply; up once more to the customer's
    page.keyboard.press("ArrowUp")
    expect(newest).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(newest.get_by_role("button", name="React 👍")).to_be_focused()
    page.keyboard.press("Enter")
    wait_for(lambda: any(s["type"] == "reaction" for s in sandbox.sent()), what="the reaction sent")
    reaction = next(s["request"]["reaction"] for s in sandbox.sent() if s["type"] == "reaction")
    assert reaction == {"message_id": customers[1].wamid, "emoji": "👍"}
    page.context.close()


def test_a_slash_offers_canned_replies_and_the_one_picked_is_sent_filled_in(stack, browser, axe, sandbox, number):
    conversation = recent_conversation(number, "Amara Okafor", minutes_ago=5, text="Is my order on its way?")
    ana = staff_member("ana", number)
    CannedReplyFactory(number=number, shortcut="thanks", text="Thank you, {{contact_name}}! {{agent_name}}")
    CannedReplyFactory(number=None, owner=ana, shortcut="tracking", text="Your tracking number follows.")
    CannedReplyFactory(number=None, owner=UserFactory(), shortcut="theirs", text="Not offered to Ana")
    page = open_page(
        logged_in_page(browser, stack.base_url, ana, bypass_csp=True, **DESKTOP), f"/inbox/{conversation.pk}/"
    )
    composer = page.locator("#composer-input")
    menu = page.get_by_role("listbox", name="Canned replies")
    composer.press("/")
    expect(menu.get_by_role("option")).to_have_text([re.compile(r"^/thanks"), re.compile(r"^/tracking")])
    composer.press("Escape")  # closes the menu, and stays in the composer
    expect(menu).to_be_hidden()
    expect(composer).to_be_focused()
    composer.press_sequentially("t")
    expect(menu.get_by_role("option")).to_have_count(2)
    composer.press("h")
    expect(menu.get_by_role("option")).to_have_count(1)
    option = menu.get_by_role("option", name=re.compile("Thank you, Amara Okafor! Ana"))
    expect(option).to_have_attribute("aria-selected", "true")
    expect(composer).to_have_attribute("aria-activedescendant", option.get_attribute("id"))
    assert_meets_wcag(page, axe)
    composer.press("Enter")  # picks, does not send
    expect(menu).to_be_hidden()
    expect(composer).to_have_value("Thank you, Amara Okafor! Ana")
    composer.press("Enter")
    expect(page.locator(".message-out", has_text="Thank you, Amara Okafor! Ana")).to_be_visible()
    wait_for(
        lambda: [s["request"]["text"]["body"] for s in sandbox.sent()] == ["Thank you, Amara Okafor! Ana"],
        what="the canned reply sent",
    )
    composer.press("/")
    menu.get_by_role("option", name=re.compile(r"tracking number")).click()
    expect(composer).to_have_value("Your tracking number follows.")
    page.context.close()


def test_a_canned_reply_written_on_its_page_is_offered_by_the_composer(stack, browser, axe, number):
    conversation = recent_conversation(number, "Amara Okafor", minutes_ago=5, text="When do you open?")
    ana = staff_member("ana", number)
    CannedReplyFactory(number=number, shortcut="hours", text="We open at 9.")
    page = open_page(logged_in_page(browser, stack.base_url, ana, bypass_csp=True, **PHONE), "/inbox/")
    page.get_by_role("link", name="Canned replies").click()
    expect(page.get_by_role("heading", name="Canned replies", level=1)).to_be_visible()
    expect(page.get_by_text("Its supervisors write these.")).to_be_visible()
    assert_meets_wcag(page, axe)
    assert small_controls(page) == []
    new = page.locator("#new-reply")
    new.get_by_label("Shortcut").fill("soon")
    new.get_by_label("Text").fill("Back to you soon, {{contact_name}}.")
    new.get_by_role("button", name="Add").click()
    expect(page.get_by_role("status")).to_have_text("Canned reply /soon added.")
    # A shortcut taken is said beside its form, what was typed kept.
    new.get_by_label("Shortcut").fill("soon")
    new.get_by_label("Text").fill("Again")
    new.get_by_role("button", name="Add").click()
    expect(page.get_by_role("alert")).to_have_text("There is a canned reply /soon of your own already.")
    expect(new.get_by_label("Text")).to_have_value("Again")
    assert_meets_wcag(page, axe)
    saved = page.get_by_role("article", name="/soon")
    saved.get_by_label("Text").fill("Back to you in a minute, {{contact_name}}.")
    saved.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Canned reply /soon saved.")
    open_page(page, f"/inbox/{conversation.pk}/")
    composer = page.locator("#composer-input")
    composer.press("/")
    menu = page.get_by_role("listbox", name="Canned replies")
    expect(menu.get_by_role("option")).to_have_text([re.compile(r"^/hours"), re.compile(r"^/soon")])
    menu.get_by_role("option", name=re.compile("in a minute")).click()
    expect(composer).to_have_value("Back to you in a minute, Amara Okafor.")
    page.goto("/canned-replies/")
    page.get_by_role("article", name="/soon").get_by_role("button", name="Delete /soon").click()
    expect(page.get_by_role("status")).to_have_text("Canned reply /soon deleted.")
    expect(page.get_by_role("article", name="/soon")).to_have_count(0)
    page.context.close()


def test_a_label_set_in_one_browser_shows_live_in_anothers_list_and_filters_it(stack, browser, axe, number):
    labelled = recent_conversation(number, "Amara Okafor", minutes_ago=5, text="Is my order on its way?")
    other = recent_conversation(number, "Bea Lind", minutes_ago=30, text="Hello")
    urgent = LabelFactory(number=number, name="Urgent", colour="red")
    LabelFactory(number=number, name="Billing", colour="teal")
    ana, ben = staff_member("ana", number), staff_member("ben", number)
    bens = open_page(logged_in_page(browser, stack.base_url, ben, **DESKTOP), "/inbox/")
    anas = open_page(logged_in_page(browser, stack.base_url, ana, bypass_csp=True, **DESKTOP), f"/inbox/{labelled.pk}/")
    anas.get_by_role("combobox", name="Add a label").select_option(label="Urgent")
    labels = anas.get_by_role("group", name="Labels")
    expect(labels.locator(".label-chip")).to_have_text(["Urgent✕"])
    expect(row(anas, labelled).locator(".label-chip")).to_have_text(["Urgent"])
    assert_meets_wcag(anas, axe)
    expect(row(bens, labelled).locator(".label-chip")).to_have_text(["Urgent"])  # live, over the socket
    expect(row(bens, other).locator(".label-chip")).to_have_count(0)

    bens.get_by_role("combobox", name="Label", exact=True).select_option(label="Urgent")
    expect(bens).to_have_url(re.compile(rf"[?&]label={urgent.pk}"))
    expect(bens.locator(".conversation-row")).to_have_count(1)
    expect(row(bens, labelled)).to_be_visible()
    open_page(bens, bens.url)  # live on the filtered list too
    labels.get_by_role("button", name="Remove label Urgent").click()
    expect(labels.locator(".label-chip")).to_have_count(0)
    expect(bens.locator(".conversation-row")).to_have_count(0)
    for page in (anas, bens):
        page.context.close()

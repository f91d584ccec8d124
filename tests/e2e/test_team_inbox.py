"""The team's work in the inbox, in headless Chromium against real Daphne, Celery, PostgreSQL, Redis and the Meta
sandbox: agents in their own browsers take, resolve and assign conversations, and every open page follows."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from conversations.models import Conversation, MemberRole, NumberMembership
from tests.e2e.conftest import logged_in_page, sandbox_stack_overrides, staff_member, wait_for
from tests.e2e.test_inbox_browser import deliver, open_inbox, processed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Opening a conversation sends a read receipt: the sandbox answers it.
stack_overrides = sandbox_stack_overrides

CUSTOMER = "447700900461"  # the sender deliver() writes as


@pytest.fixture
def conversation(stack, number) -> Conversation:
    """An open, unassigned conversation a customer started through the webhook."""
    deliver(stack, wa_id=CUSTOMER, name="Amara Okafor", content={"text": {"body": "Is my order on its way?"}})
    wait_for(processed, what="the customer's first message")
    return Conversation.objects.get(number=number)


def count_of(page: Page, view: str):
    return page.locator(f'[data-view-count="{view}"]')


def row(page: Page, conversation: Conversation):
    return page.locator(f'.conversation-row[data-conversation-id="{conversation.pk}"]')


def test_a_taken_conversation_leaves_the_others_unassigned_view_live(stack, browser, number, conversation):
    ana = open_inbox(logged_in_page(browser, stack.base_url, staff_member("ana", number)), f"/inbox/{conversation.pk}/")
    ben = open_inbox(logged_in_page(browser, stack.base_url, staff_member("ben", number)), "/inbox/?view=unassigned")
    expect(row(ben, conversation)).to_be_visible()
    expect(count_of(ben, "unassigned")).to_have_text("1")
    expect(ana.locator("#assignee-name")).to_have_text("Unassigned")

    ana.get_by_role("button", name="Take").click()

    expect(ana.locator("#assignee-name")).to_have_text("Assigned to you")
    expect(ana.locator(".activity")).to_have_text(["Ana took this"])
    expect(ana.get_by_role("button", name="Hand back")).to_be_visible()
    expect(row(ben, conversation)).to_have_count(0)
    expect(count_of(ben, "unassigned")).to_have_text("0")
    expect(count_of(ben, "all")).to_have_text("1")
    expect(ben.locator("#conversation-list-empty")).to_be_visible()
    ana.context.close()
    ben.context.close()


def test_a_customers_message_reopens_a_resolved_conversation_in_every_browser(stack, browser, number, conversation):
    ana = open_inbox(logged_in_page(browser, stack.base_url, staff_member("ana", number)), f"/inbox/{conversation.pk}/")
    ben = open_inbox(logged_in_page(browser, stack.base_url, staff_member("ben", number)), f"/inbox/{conversation.pk}/")

    ana.keyboard.press("e")  # the shortcut for Resolve

    for page in (ana, ben):
        expect(page.locator("#status-badge")).to_have_text("Resolved")
        expect(page.locator(".activity").last).to_have_text("Resolved by Ana")
        expect(row(page, conversation)).to_have_count(0)  # the list shows open conversations
        expect(count_of(page, "all")).to_have_text("0")
    expect(ben.get_by_role("button", name="Reopen")).to_be_visible()

    deliver(stack, wa_id=CUSTOMER, content={"text": {"body": "It has not arrived"}})

    for page in (ana, ben):
        expect(page.locator("#status-badge")).to_have_text("Open")
        expect(page.locator(".activity").last).to_have_text("Reopened by the customer's message")
        expect(page.locator(".message").last).to_contain_text("It has not arrived")
        expect(row(page, conversation)).to_be_visible()
        expect(count_of(page, "all")).to_have_text("1")
    # The lines sit between the messages in time order, and stay after a reload (server-rendered).
    ben.reload()
    expect(ben.locator("#messages > .message, #messages > .activity")).to_have_count(4)
    expect(ben.locator("#messages > .message").first).to_contain_text("Is my order on its way?")
    expect(ben.locator("#messages > .activity")).to_have_text(["Resolved by Ana", "Reopened by the customer's message"])
    expect(ben.locator("#messages > li").last).to_have_text("Reopened by the customer's message")
    ana.context.close()
    ben.context.close()


def test_a_supervisor_assigns_and_the_assignees_mine_view_gains_it_live(stack, browser, number, conversation):
    sue = staff_member("sue", number)
    NumberMembership.objects.filter(number=number, user=sue).update(role=MemberRole.SUPERVISOR)
    ben_user = staff_member("ben", number)
    ben = open_inbox(logged_in_page(browser, stack.base_url, ben_user), "/inbox/?view=mine")
    expect(count_of(ben, "mine")).to_have_text("0")
    expect(row(ben, conversation)).to_have_count(0)
    boss = open_inbox(logged_in_page(browser, stack.base_url, sue), f"/inbox/{conversation.pk}/")

    assign = boss.get_by_label("Assign to")
    expect(assign.locator("option", has_text="Ben")).to_have_count(1)
    assign.select_option(value=str(ben_user.pk))

    expect(boss.locator("#assignee-name")).to_have_text("Assigned to Ben")
    expect(boss.locator(".activity").last).to_have_text("Sue assigned this to Ben")
    expect(row(ben, conversation)).to_be_visible()
    expect(count_of(ben, "mine")).to_have_text("1")
    expect(count_of(ben, "unassigned")).to_have_text("0")
    # An agent is offered no assign menu, only what they may do.
    ben.goto(f"/inbox/{conversation.pk}/")
    expect(ben.locator("#assignee-name")).to_have_text("Assigned to you")
    expect(ben.get_by_label("Assign to")).to_be_hidden()
    expect(ben.get_by_role("button", name="Hand back")).to_be_visible()
    boss.context.close()
    ben.context.close()


def test_the_snooze_menu_snoozes_for_an_hour_until_tomorrow_9_or_a_date_in_the_agents_time_zone(
    stack, browser, number, conversation
):
    tokyo = ZoneInfo("Asia/Tokyo")
    ana = open_inbox(
        logged_in_page(browser, stack.base_url, staff_member("ana", number), timezone_id="Asia/Tokyo"),
        f"/inbox/{conversation.pk}/",
    )
    snooze_menu = ana.locator("#snooze summary")

    def snoozed_until():
        wait_for(
            lambda: Conversation.objects.get(pk=conversation.pk).status == "snoozed", what="the conversation snoozed"
        )
        expect(ana.locator("#status-badge")).to_contain_text("Snoozed until")
        return Conversation.objects.get(pk=conversation.pk).snoozed_until.astimezone(tokyo)

    def reopen():
        ana.get_by_role("button", name="Reopen").click()
        wait_for(lambda: Conversation.objects.get(pk=conversation.pk).status == "open", what="the conversation open")

    snooze_menu.click()
    before = datetime.now(UTC)
    ana.get_by_role("button", name="For an hour").click()
    until = snoozed_until()
    assert before + timedelta(minutes=59) <= until <= datetime.now(UTC) + timedelta(minutes=61)
    reopen()

    snooze_menu.click()
    ana.get_by_role("button", name="Tomorrow 9:00").click()
    tomorrow = datetime.now(tokyo).date() + timedelta(days=1)
    assert snoozed_until() == datetime.combine(tomorrow, time(9), tzinfo=tokyo)
    reopen()

    snooze_menu.click()
    ana.locator("#snooze .snooze-menu").get_by_role("button", name="Snooze").click()  # no date picked yet
    expect(ana.locator("#workflow-error")).to_have_text("Pick a date to snooze until.")
    expect(ana.locator("#snooze-date")).to_be_focused()
    assert Conversation.objects.get(pk=conversation.pk).status == "open"
    in_three_days = datetime.now(tokyo).date() + timedelta(days=3)
    ana.locator("#snooze-date").fill(in_three_days.isoformat())
    ana.locator("#snooze .snooze-menu").get_by_role("button", name="Snooze").click()
    assert snoozed_until() == datetime.combine(in_three_days, time(9), tzinfo=tokyo)
    ana.context.close()

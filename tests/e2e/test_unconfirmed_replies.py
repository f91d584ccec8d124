"""A reply whose send's answer was lost, in the live inbox (headless Chromium against real Daphne, Celery,
PostgreSQL and Redis, the Meta sandbox as a real server): its bubble offers "Send again" and "Discard" while
it is unconfirmed, and follows the status events once someone has decided or Meta has confirmed it."""

import pytest
from playwright.sync_api import Page, expect

from conversations.models import Conversation, Message, MessageStatus
from tests.e2e import test_replying
from tests.e2e.conftest import Api, Sandbox, logged_in_page, staff_member
from tests.e2e.test_replying import wait_status
from tests.factories import BusinessNumberFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The stack with the Meta sandbox and a customer who wrote in, as the replying tests have them.
stack_overrides = test_replying.stack_overrides
conversation = test_replying.conversation

TEXT = "Your refund is on its way"
NOTE = "Meta's answer was lost: it may or may not have been delivered."
# Every value the bubble's tick takes from now on, however quickly one follows another (the records keep the
# values each change replaced; the current one is read at the end).
RECORD_STATUSES = """ticks => {
  window.statusesReplaced = [];
  new MutationObserver((records) => window.statusesReplaced.push(...records.map((r) => r.oldValue)))
    .observe(ticks, { attributes: true, attributeFilter: ["data-status"], attributeOldValue: true });
}"""
STATUSES_SHOWN = "ticks => [...window.statusesReplaced, ticks.dataset.status]"
# What a page's own script does to decide (static/js/api.js): the session cookie and the CSRF token.
DECIDE_FROM_THE_PAGE = """async ([url, decision]) => {
  const token = document.cookie.match(/(?:^|;\\s*)csrftoken=([^;]+)/)[1];
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": token }, body: JSON.stringify({ decision }),
  });
  return response.status;
}"""


def open_thread(browser, stack, user, conversation: Conversation | None) -> Page:
    page = logged_in_page(browser, stack.base_url, user)
    page.goto(f"/inbox/{conversation.pk}/" if conversation else "/inbox/")
    expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
    return page


def send_and_lose_the_answer(sandbox: Sandbox, api: Api, conversation: Conversation, **config) -> int:
    """A reply Meta accepts but whose answer is lost; by default no status webhook ever confirms it."""
    sandbox.configure(answer_lost_next=1, **({"statuses": []} | config))
    message_id = api.send(conversation.pk, type="text", text=TEXT).json()["id"]
    wait_status(api, conversation, message_id, "unconfirmed")
    sandbox.configure(statuses=["sent", "delivered", "read"])  # the start-up plan, for a send again
    return message_id


def bubble(page: Page, message_id: int):
    return page.locator(f'#messages [data-message-id="{message_id}"]')


def expect_offered(item) -> None:
    expect(item.locator(".ticks")).to_have_attribute("data-status", "unconfirmed")
    expect(item.locator(".ticks")).to_have_text("❓")
    expect(item.locator(".decision-note")).to_have_text(NOTE)
    expect(item.get_by_role("button", name="Send again")).to_be_visible()
    expect(item.get_by_role("button", name="Discard")).to_be_visible()


def test_the_offer_appears_live_when_a_send_becomes_unconfirmed_and_send_again_goes_pending_then_sent(
    stack, browser, sandbox, api, conversation, number
):
    page = open_thread(browser, stack, staff_member("ana", number), conversation)
    message_id = send_and_lose_the_answer(sandbox, api, conversation)
    item = bubble(page, message_id)
    expect_offered(item)  # the bubble came by message.created, the offer by message.status_changed
    expect(item.locator(".content")).to_have_text(TEXT)

    item.locator(".ticks").evaluate(RECORD_STATUSES)
    item.get_by_role("button", name="Send again").click()

    expect(item.locator(".ticks")).to_have_attribute("data-status", "read", timeout=15000)
    shown = item.locator(".ticks").evaluate(STATUSES_SHOWN)
    assert [s for n, s in enumerate(shown) if n == 0 or shown[n - 1] != s] == [
        "unconfirmed",
        "pending",
        "sent",
        "delivered",
        "read",
    ]
    expect(item.locator(".decision")).to_have_count(0)
    sends = sandbox.sent()
    assert [s["request"]["text"]["body"] for s in sends] == [TEXT, TEXT], "the person chose a second send"
    assert Message.objects.get(pk=message_id).wamid == sends[1]["wamid"]
    page.context.close()


def test_discard_shows_it_failed_in_every_open_thread_and_sends_nothing(
    stack, browser, sandbox, api, conversation, number
):
    message_id = send_and_lose_the_answer(sandbox, api, conversation)
    ana = open_thread(browser, stack, staff_member("ana", number), conversation)
    bo = open_thread(browser, stack, staff_member("bo", number), conversation)
    for page in (ana, bo):
        expect_offered(bubble(page, message_id))

    bubble(ana, message_id).get_by_role("button", name="Discard").click()

    for page in (ana, bo):  # bo's by the status event alone
        ticks = bubble(page, message_id).locator(".ticks")
        expect(ticks).to_have_attribute("data-status", "failed")
        expect(ticks).to_have_text("⚠")
        expect(ticks).to_have_attribute("title", "Failed: Not confirmed by Meta; discarded by ana")
        expect(bubble(page, message_id).locator(".decision")).to_have_count(0)
    ana.reload()
    expect(bubble(ana, message_id).locator(".ticks")).to_have_attribute("data-status", "failed")
    expect(bubble(ana, message_id).locator(".decision")).to_have_count(0)
    assert Message.objects.get(pk=message_id).status == MessageStatus.FAILED
    assert len(sandbox.sent()) == 1
    ana.context.close()
    bo.context.close()


def test_a_status_webhook_that_confirms_the_send_takes_the_offer_away(
    stack, browser, sandbox, api, conversation, number
):
    page = open_thread(browser, stack, staff_member("ana", number), conversation)
    # Meta had it: its status webhooks come, late.
    message_id = send_and_lose_the_answer(sandbox, api, conversation, statuses=["sent", "delivered"], status_delay=3.0)
    item = bubble(page, message_id)
    expect_offered(item)
    expect(item.locator(".ticks")).to_have_attribute("data-status", "delivered", timeout=15000)
    expect(item.locator(".decision")).to_have_count(0)
    assert len(sandbox.sent()) == 1
    page.context.close()


def test_a_refused_decision_is_said_in_the_bubble(stack, browser, sandbox, api, conversation, number):
    message_id = send_and_lose_the_answer(sandbox, api, conversation)
    page = open_thread(browser, stack, staff_member("ana", number), conversation)
    item = bubble(page, message_id)
    expect_offered(item)
    # Confirmed behind the page's back (no event): the server refuses the decision the page still offers.
    Message.objects.filter(pk=message_id).update(status=MessageStatus.SENT, wamid="wamid.confirmed-elsewhere")

    item.get_by_role("button", name="Send again").click()

    expect(item.locator(".decision-error")).to_have_text(
        "Only a message Meta has not confirmed can be sent again or discarded."
    )
    expect(item.get_by_role("button", name="Send again")).to_be_enabled()
    assert len(sandbox.sent()) == 1
    page.context.close()


def test_a_member_of_another_number_cannot_decide(stack, browser, sandbox, api, conversation, number):
    message_id = send_and_lose_the_answer(sandbox, api, conversation)
    eve = open_thread(browser, stack, staff_member("eve", BusinessNumberFactory()), None)
    url = f"/api/conversations/{conversation.pk}/messages/{message_id}/decision/"

    assert [eve.evaluate(DECIDE_FROM_THE_PAGE, [url, d]) for d in ("send_again", "discard")] == [404, 404]

    assert Message.objects.get(pk=message_id).status == MessageStatus.UNCONFIRMED
    assert len(sandbox.sent()) == 1
    ana = open_thread(browser, stack, staff_member("ana", number), conversation)
    expect_offered(bubble(ana, message_id))
    eve.context.close()
    ana.context.close()

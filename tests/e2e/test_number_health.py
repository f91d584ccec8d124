"""What Meta says about a number, seen live by the people who work with it: the inbox's banner when the account
is restricted, the Numbers page's card when quality drops or a template is paused, and the composer that stops
offering a paused template; a template Meta announces before the app synced it is offered once its content is
known. Headless Chromium against real Daphne, Celery, PostgreSQL, Redis and the Meta sandbox, which sends
Meta's signed account-level webhooks."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from conversations.models import Conversation, MemberRole, NumberMembership
from tests.e2e.axe import wcag_violations
from tests.e2e.conftest import NUMBER, Sandbox, logged_in_page, sandbox_stack_overrides, staff_member, wait_for
from tests.factories import ContactFactory, ConversationFactory, MessageFactory, MessageTemplateFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

stack_overrides = sandbox_stack_overrides

RESTRICTION = "RESTRICTED_BUSINESS_INITIATED_MESSAGING"
# The sandbox's copy of the account's template (Meta's side), and the app's, as a sync would have stored it.
ORDER_READY = {
    "id": "771000001",
    "name": "order_ready",
    "language": "en_GB",
    "status": "APPROVED",
    "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Your order is ready for collection."}],
}


@pytest.fixture(scope="module")
def sandbox_config() -> dict:
    return {"assume_window_open": True, "templates": [ORDER_READY]}


def supervisor(username: str, number):
    user = staff_member(username, number)
    NumberMembership.objects.filter(user=user, number=number).update(role=MemberRole.SUPERVISOR)
    return user


def recent_conversation(number, name: str = "Amara Okafor") -> Conversation:
    at = datetime.now(UTC) - timedelta(minutes=5)
    conversation = ConversationFactory(
        number=number, contact=ContactFactory(profile_name=name), last_message_at=at, last_inbound_at=at
    )
    MessageFactory(conversation=conversation, body="Is my order ready?", preview="Is my order ready?", timestamp=at)
    return conversation


def open_live(page: Page, path: str) -> Page:
    page.goto(path)
    expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
    return page


def restrict(sandbox: Sandbox, *restrictions: str) -> None:
    sandbox.control(
        "POST",
        "account_update",
        {
            "event": "ACCOUNT_RESTRICTION",
            "restriction_info": [{"restriction_type": r, "expiration": 1890000000} for r in restrictions],
        },
    )


def assert_meets_wcag(page: Page, axe: str) -> None:
    violations = wcag_violations(page, axe)
    assert not violations, "\n".join(violations)


def test_a_restriction_shows_in_the_open_inbox_and_its_lifting_takes_the_banner_away(stack, browser, sandbox, number):
    recent_conversation(number)
    agent = open_live(logged_in_page(browser, stack.base_url, staff_member("ana", number)), "/inbox/")
    boss = open_live(logged_in_page(browser, stack.base_url, supervisor("sam", number)), "/inbox/")
    banner = agent.locator("#number-alerts .number-alert")
    expect(banner).to_have_count(0)

    restrict(sandbox, RESTRICTION)
    expect(banner).to_have_count(1, timeout=3000)
    expect(banner).to_contain_text("The account is restricted")
    expect(banner).to_contain_text("Replies to customers who write still go out")
    expect(banner.locator(".alert-detail")).to_have_text(f"Meta: {RESTRICTION}")
    expect(agent.get_by_role("alert")).to_contain_text("The account is restricted")

    expect(boss.locator("#notification-count")).to_have_text("1")
    boss.get_by_role("button", name="Notifications: 1 unread").click()
    expect(boss.locator("#notification-list li")).to_have_count(1)
    expect(boss.locator("#notification-list li")).to_contain_text("The account is restricted")

    restrict(sandbox)  # Meta's account_update with no restriction left
    expect(banner).to_have_count(0, timeout=3000)
    expect(agent.locator("#number-alerts")).to_be_hidden()
    expect(boss.locator("#number-alerts")).to_be_hidden()
    agent.reload()
    expect(agent.locator("#number-alerts .number-alert")).to_have_count(0)
    for page in (agent, boss):
        page.context.close()


def test_the_numbers_page_follows_quality_and_a_paused_template_leaves_the_composer(stack, browser, sandbox, number):
    MessageTemplateFactory(**{k: v for k, v in ORDER_READY.items() if k != "id"}, meta_template_id=ORDER_READY["id"])
    conversation = recent_conversation(number)
    user = supervisor("sam", number)
    numbers = open_live(logged_in_page(browser, stack.base_url, user), "/numbers/")
    thread = open_live(logged_in_page(browser, stack.base_url, user), f"/inbox/{conversation.pk}/")
    card = numbers.locator(f"#number-{number.pk}")
    expect(card.locator(".quality-chart polyline")).to_have_count(0)
    expect(card.locator(".number-templates li")).to_have_text(["order_ready (en_GB): APPROVED"])
    thread.locator("#show-templates").click()
    expect(thread.locator("#template-select option")).to_have_text(["order_ready (en_GB)"])

    sandbox.control("POST", "number_quality", {"phone_number_id": NUMBER["phone_number_id"], "event": "FLAGGED"})
    expect(card.locator('[data-fact="quality"]')).to_contain_text("last event FLAGGED", timeout=3000)
    expect(card.locator(".quality-chart polyline")).to_have_attribute("points", "0,36")  # one point, at red
    expect(card.locator(".quality-chart svg")).to_have_attribute(
        "aria-label", "Quality over the last 30 days: 1 change(s)"
    )
    expect(card.locator(".number-alert")).to_contain_text("Quality is low: Meta flagged this number")
    restrict(sandbox, RESTRICTION)  # what Meta said comes with the alert, as the inbox's banner shows it
    expect(card.locator(".number-alert", has_text="The account is restricted")).to_contain_text(f"Meta: {RESTRICTION}")
    assert numbers.evaluate("() => performance.getEntriesByType('navigation').length") == 1

    sandbox.control(
        "POST", "template_status", {"name": "order_ready", "language": "en_GB", "event": "PAUSED", "reason": "NONE"}
    )
    expect(card.locator(".number-templates li")).to_have_text(["order_ready (en_GB): PAUSED"], timeout=3000)
    expect(card.locator(".number-templates li.stopped")).to_have_count(1)
    expect(card.locator('[data-fact="template-counts"]')).to_have_text("PAUSED: 1")
    expect(card.locator(".number-alert", has_text="A template is paused")).to_contain_text("(order_ready (en_GB))")
    expect(thread.locator("#template-select option")).to_have_text(["No approved templates"])
    for page in (numbers, thread):
        page.context.close()


def test_a_template_meta_announces_before_any_sync_is_offered_with_its_content(stack, browser, sandbox, number, api):
    conversation = recent_conversation(number)
    sandbox.control(
        "POST", "template_status", {"name": "order_ready", "language": "en_GB", "event": "APPROVED", "reason": "NONE"}
    )

    def offered():
        url = f"{api.base_url}/api/conversations/{conversation.pk}/templates/"
        return [t for t in api.session.get(url, timeout=10).json()["results"] if t["name"] == "order_ready"]

    (template,) = wait_for(offered, what="the announced template, synced")
    assert template["body"] == "Your order is ready for collection."
    page = open_live(logged_in_page(browser, stack.base_url, staff_member("ana", number)), f"/inbox/{conversation.pk}/")
    page.locator("#show-templates").click()
    expect(page.locator("#template-select option")).to_have_text(["order_ready (en_GB)"])
    expect(page.locator("#template-body")).to_contain_text("Your order is ready for collection.")
    page.locator("#send-template").click()
    wait_for(lambda: [s["request"].get("template", {}).get("name") for s in sandbox.sent()] == ["order_ready"])
    page.context.close()


def test_the_numbers_page_and_an_inbox_with_a_banner_meet_wcag_21_aa(stack, browser, sandbox, number, axe):
    MessageTemplateFactory(name="order_ready", language="en_GB", status="PAUSED")
    recent_conversation(number)
    user = supervisor("sam", number)
    restrict(sandbox, RESTRICTION)
    sandbox.control("POST", "number_quality", {"phone_number_id": NUMBER["phone_number_id"], "event": "FLAGGED"})
    inbox = open_live(logged_in_page(browser, stack.base_url, user, bypass_csp=True), "/inbox/")
    expect(inbox.locator("#number-alerts .number-alert")).to_have_count(2, timeout=5000)
    assert_meets_wcag(inbox, axe)
    numbers = open_live(logged_in_page(browser, stack.base_url, user, bypass_csp=True), "/numbers/")
    expect(numbers.locator(".number-card .number-alert")).to_have_count(2)
    expect(numbers.locator(".number-alert .alert-detail")).to_have_text([f"Meta: {RESTRICTION}"])
    expect(numbers.locator(".quality-chart polyline")).to_have_count(1)
    assert_meets_wcag(numbers, axe)
    for page in (inbox, numbers):
        page.context.close()


def test_an_agent_has_no_numbers_link_and_is_refused_the_numbers_page(stack, browser, number):
    agent = open_live(logged_in_page(browser, stack.base_url, staff_member("ana", number)), "/inbox/")
    expect(agent.get_by_role("link", name="Numbers")).to_have_count(0)
    response = agent.goto("/numbers/")
    assert response.status == 403
    expect(agent.locator(".number-card")).to_have_count(0)
    boss = open_live(logged_in_page(browser, stack.base_url, supervisor("sam", number)), "/inbox/")
    boss.get_by_role("link", name="Numbers").click()
    expect(boss.locator(f"#number-{number.pk}")).to_be_visible()
    for page in (agent, boss):
        page.context.close()

"""The live inbox in headless Chromium against real Daphne, Celery, PostgreSQL and Redis."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
from playwright.sync_api import Page, expect

from conversations.models import Conversation, MessageStatus
from sandbox.simulation import envelope, message_change, new_wamid, status_change
from tests.e2e.conftest import (
    NUMBER,
    WABA,
    logged_in_page,
    sandbox_stack_overrides,
    staff_member,
    start_daphne,
    stop_process,
    wait_for,
)
from tests.factories import (
    BusinessNumberFactory,
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    OutboundMessageFactory,
)
from webhooks.models import WebhookEvent, WebhookEventState

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The Meta sandbox as the Graph API: opening a conversation sends a read receipt, which then succeeds at once
# instead of retrying against no server until the next test.
stack_overrides = sandbox_stack_overrides


def open_inbox(page: Page, path: str = "/inbox/") -> Page:
    page.goto(path)
    expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
    return page


def deliver(stack, **kwargs) -> str:
    wamid = kwargs.pop("wamid", None) or new_wamid()
    change = message_change(**NUMBER, wamid=wamid, **{"wa_id": "447700900461", **kwargs})
    assert stack.post_webhook(envelope(waba_id=WABA, changes=[change])).status_code == 200
    return wamid


def processed() -> bool:
    return not WebhookEvent.objects.filter(state=WebhookEventState.PENDING).exists()


def test_login_page_signs_in_to_the_inbox(stack, browser, number):
    staff_member("ana", number)
    page = browser.new_page(base_url=stack.base_url)
    page.goto("/inbox/")
    page.fill("#id_username", "ana")
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{stack.base_url}/inbox/")
    expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
    page.context.close()


def test_webhook_appears_live_with_unread_badge_and_title_then_opening_clears_them(stack, browser, number):
    page = open_inbox(logged_in_page(browser, stack.base_url, staff_member("ana", number)))
    deliver(stack, wa_id="447700900999", name="Warm Up")  # the worker's first task imports everything
    expect(page.locator(".conversation-row")).to_have_count(1)

    deliver(stack, name="Amara Okafor", content={"text": {"body": "Is my order on its way?"}})
    row = page.locator(".conversation-row", has_text="Amara Okafor")
    expect(row).to_be_visible(timeout=1000)  # the bar: within a second, without reload
    expect(row.locator(".preview")).to_have_text("Is my order on its way?")
    expect(row.locator(".badge")).to_have_text("1")
    expect(page).to_have_title("(2) Inbox · WhatsApp Inbox")
    deliver(stack, content={"text": {"body": "Hello?"}})
    expect(row.locator(".badge")).to_have_text("2")
    expect(page).to_have_title("(3) Inbox · WhatsApp Inbox")
    expect(page.locator(".conversation-row").first).to_contain_text("Amara Okafor")

    row.click()
    expect(page.locator("#messages .message")).to_have_count(2)
    expect(page.locator(".conversation-row", has_text="Amara Okafor").locator(".badge")).to_have_count(0)
    expect(page).to_have_title("(1) Inbox · WhatsApp Inbox")
    # A message into the open conversation is read at once: no badge, title unchanged.
    deliver(stack, content={"text": {"body": "Thanks!"}})
    expect(page.locator("#messages .message")).to_have_count(3)
    expect(page.locator(".conversation-row", has_text="Amara Okafor").locator(".badge")).to_have_count(0)
    expect(page).to_have_title("(1) Inbox · WhatsApp Inbox")
    page.context.close()


def test_opening_a_conversation_reads_it_from_the_page_under_its_content_security_policy(stack, browser, number):
    from conversations.models import ReadState

    conversation = ConversationFactory(
        number=number, contact=ContactFactory(wa_id="447700900461", profile_name="Amara")
    )
    MessageFactory.create_batch(2, conversation=conversation)
    ana = staff_member("ana", number)
    page = logged_in_page(browser, stack.base_url, ana)
    violations = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    response = page.goto(f"/inbox/{conversation.pk}/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("#connection-state")).to_have_attribute("data-state", "live")
    # The GET changed nothing; the page's POST marks it read, and the row's badge goes.
    expect(page.locator(f'[data-conversation-id="{conversation.pk}"] .badge')).to_have_count(0)
    wait_for(lambda: ReadState.objects.filter(user=ana, conversation=conversation).exists(), what="the page's read")
    expect(page.locator("#messages .message")).to_have_count(2)
    assert violations == []
    page.context.close()


def test_reading_in_one_tab_clears_the_badge_in_the_other(stack, browser, number):
    user = staff_member("ana", number)
    deliver(stack, name="Amara Okafor")
    wait_for(processed, what="message stored")
    first = open_inbox(logged_in_page(browser, stack.base_url, user))
    second = open_inbox(first.context.new_page())
    expect(second.locator(".badge")).to_have_text("1")
    first.locator(".conversation-row").click()
    expect(second.locator(".badge")).to_have_count(0)
    expect(second).to_have_title("Inbox · WhatsApp Inbox")
    first.context.close()


def test_status_ticks_advance_live_and_failure_shows_metas_error(stack, browser, number):
    conversation = ConversationFactory(number=number, contact=ContactFactory(wa_id="447700900461"))
    sent = OutboundMessageFactory(
        conversation=conversation, wamid=new_wamid(), status=MessageStatus.SENT, body="Your order ships today"
    )
    failing = OutboundMessageFactory(
        conversation=conversation, wamid=new_wamid(), status=MessageStatus.SENT, body="Promo"
    )
    page = open_inbox(
        logged_in_page(browser, stack.base_url, staff_member("ana", number)), f"/inbox/{conversation.pk}/"
    )
    ticks = page.locator(f'[data-message-id="{sent.pk}"] .ticks')
    expect(ticks).to_have_attribute("data-status", "sent")
    for status in ("delivered", "read"):
        change = status_change(**NUMBER, wamid=sent.wamid, status=status, recipient_wa_id="447700900461")
        stack.post_webhook(envelope(waba_id=WABA, changes=[change]))
        expect(ticks).to_have_attribute("data-status", status)
    change = status_change(
        **NUMBER,
        wamid=failing.wamid,
        status="failed",
        recipient_wa_id="447700900461",
        error_code=131047,
        error_title="Re-engagement message",
    )
    stack.post_webhook(envelope(waba_id=WABA, changes=[change]))
    failed = page.locator(f'[data-message-id="{failing.pk}"] .ticks')
    expect(failed).to_have_attribute("data-status", "failed")
    expect(failed).to_have_attribute("title", "Failed: 131047 Re-engagement message")
    page.context.close()


def test_two_staff_see_each_others_typing(stack, browser, number):
    # The customer wrote recently: the reply window (and so the composer's text box) is open.
    conversation = ConversationFactory(number=number, last_inbound_at=datetime.now(UTC) - timedelta(minutes=5))
    ana = open_inbox(logged_in_page(browser, stack.base_url, staff_member("ana", number)), f"/inbox/{conversation.pk}/")
    bo = open_inbox(logged_in_page(browser, stack.base_url, staff_member("bo", number)), f"/inbox/{conversation.pk}/")
    ana.locator("#composer-input").type("Hel")
    expect(bo.locator("#typing-indicator")).to_have_text("Ana is typing…")
    expect(ana.locator("#typing-indicator")).to_have_text("")
    expect(bo.locator("#typing-indicator")).to_have_text("", timeout=10000)  # it expires
    ana.context.close()
    bo.context.close()


def test_socket_cut_while_webhooks_arrive_catches_up_without_gaps_or_doubles(stack, browser, number):
    conversation_wamid = deliver(stack, content={"text": {"body": "before the cut"}})
    wait_for(processed, what="first message")
    conversation = Conversation.objects.get()
    # The browser talks to a Daphne of its own, which the test stops and starts again on the same port.
    process, browser_url = start_daphne(env=stack.env, logs=stack.logs, name="daphne-browser")
    port = int(browser_url.rsplit(":", 1)[1])
    try:
        page = open_inbox(
            logged_in_page(browser, browser_url, staff_member("ana", number)), f"/inbox/{conversation.pk}/"
        )
        expect(page.locator("#messages .message")).to_have_count(1)
        stop_process(process)
        expect(page.locator("#connection-state")).to_have_attribute("data-state", "reconnecting")
        sent = [deliver(stack, content={"text": {"body": f"while away {i}"}}) for i in range(3)]
        wait_for(processed, what="messages stored while the browser was away")
        process, _ = start_daphne(env=stack.env, logs=stack.logs, name="daphne-browser", port=port)
        expect(page.locator("#connection-state")).to_have_attribute("data-state", "live", timeout=20000)
        expect(page.locator("#messages .message")).to_have_count(4)
        shown = page.locator("#messages .message").evaluate_all("items => items.map(i => i.dataset.wamid)")
        assert shown == [conversation_wamid, *sent]
        deliver(stack, content={"text": {"body": "after the reconnect"}})
        expect(page.locator("#messages .message")).to_have_count(5)
        page.context.close()
    finally:
        stop_process(process)


def test_script_in_a_message_shows_as_text(stack, browser, number):
    page = open_inbox(logged_in_page(browser, stack.base_url, staff_member("ana", number)))
    body = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> see https://example.com/a?b=1'
    deliver(stack, name="<b>Mallory</b>", content={"text": {"body": body}})
    row = page.locator(".conversation-row")
    expect(row.locator(".preview")).to_have_text(body)
    expect(row.locator(".name")).to_have_text("<b>Mallory</b>")
    row.click()
    bubble = page.locator("#messages .message .content")
    expect(bubble).to_have_text(body)
    assert page.locator("#messages img").count() == 0
    assert page.evaluate("window.pwned") is None
    link = bubble.locator("a")
    expect(link).to_have_attribute("href", "https://example.com/a?b=1")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    page.context.close()


def test_non_member_never_receives_the_numbers_events(stack, browser, number):
    other_number = BusinessNumberFactory()
    member = open_inbox(logged_in_page(browser, stack.base_url, staff_member("ana", number)))
    outsider = logged_in_page(browser, stack.base_url, staff_member("eve", other_number))
    frames: list[str] = []
    outsider.on("websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(frame)))
    open_inbox(outsider)
    deliver(stack, name="Amara Okafor")
    expect(member.locator(".conversation-row")).to_have_count(1)
    wait_for(processed, what="processed")
    outsider.wait_for_timeout(500)
    expect(outsider.locator(".conversation-row")).to_have_count(0)
    assert frames == [], "not even an event frame reaches a non-member's socket"
    # Its page leads back to the outsider's own inbox, with nothing of the conversation on it.
    outsider.goto(f"/inbox/{Conversation.objects.get().pk}/")
    expect(outsider).to_have_url(f"{stack.base_url}/inbox/")
    expect(outsider.locator(".notices")).to_contain_text("not available")
    expect(outsider.locator(".conversation-row")).to_have_count(0)
    expect(outsider.locator("body")).not_to_contain_text("Amara Okafor")
    member.context.close()
    outsider.context.close()


def test_notification_for_another_conversation_opens_it_on_click(stack, browser, number):
    open_conversation = ConversationFactory(number=number)
    page = logged_in_page(browser, stack.base_url, staff_member("ana", number), notifications=True)
    page.add_init_script(
        """
        window.shownNotifications = [];
        const Original = window.Notification;
        window.Notification = class extends Original {
          constructor(title, options) { super(title, options); window.shownNotifications.push(this); }
        };
        Object.defineProperty(window.Notification, "permission", { get: () => Original.permission });
        window.Notification.requestPermission = Original.requestPermission.bind(Original);
        """
    )
    open_inbox(page, f"/inbox/{open_conversation.pk}/")
    deliver(stack, name="Amara Okafor", content={"text": {"body": "Are you there?"}})
    page.wait_for_function("() => window.shownNotifications.length === 1")  # a function: the page's policy forbids eval
    assert page.evaluate("[window.shownNotifications[0].title, window.shownNotifications[0].body]") == [
        "Amara Okafor",
        "Are you there?",
    ]
    page.evaluate("window.shownNotifications[0].dispatchEvent(new Event('click'))")
    amara = Conversation.objects.get(contact__profile_name="Amara Okafor")
    expect(page).to_have_url(f"{stack.base_url}/inbox/{amara.pk}/")
    page.context.close()


def test_history_loads_upward_and_new_messages_pill_when_scrolled_up(stack, browser, number):
    conversation = ConversationFactory(number=number, contact=ContactFactory(wa_id="447700900461"))
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    for i in range(120):
        MessageFactory(conversation=conversation, body=f"message {i}", timestamp=start + timedelta(hours=i))
    page = open_inbox(
        logged_in_page(browser, stack.base_url, staff_member("ana", number)), f"/inbox/{conversation.pk}/"
    )
    messages = page.locator("#messages .message")
    expect(messages).to_have_count(50)
    expect(messages.last).to_contain_text("message 119")
    assert page.locator(".day-separator").count() >= 2
    thread = page.locator("#thread")
    thread.evaluate("t => t.scrollTop = 0")
    expect(messages).to_have_count(100)
    thread.evaluate("t => t.scrollTop = 0")
    expect(messages).to_have_count(120)
    expect(messages.first).to_contain_text("message 0")
    # Scrolled up, a new message does not yank the reader down: a pill offers it instead.
    before = thread.evaluate("t => t.scrollTop")
    deliver(stack, content={"text": {"body": "brand new"}})
    expect(messages).to_have_count(121)
    expect(page.locator("#new-messages-pill")).to_be_visible()
    assert thread.evaluate("t => t.scrollTop") == before
    page.locator("#new-messages-pill").click()
    expect(page.locator("#new-messages-pill")).to_be_hidden()
    page.context.close()


def test_every_stored_type_renders_with_reactions_and_quoted_replies(stack, browser, number):
    import json

    from tests.webhooks.test_payloads import FILES

    deliver(stack, content={"text": {"body": "first"}})
    wait_for(processed, what="conversation")
    conversation = Conversation.objects.get()
    page = open_inbox(
        logged_in_page(browser, stack.base_url, staff_member("ana", number)), f"/inbox/{conversation.pk}/"
    )
    samples = [
        p for p in FILES if p.name.startswith("message_") and "reaction" not in p.name and "system" not in p.name
    ]
    for path in samples:
        stack.post_webhook(json.loads(path.read_text()))  # all from the sample sender, same conversation
    for message_type in ("order",):
        deliver(stack, message_type=message_type)
    expect(page.locator("#messages .message")).to_have_count(1 + len(samples) + 1)
    expect(page.locator(".type-image .media-placeholder")).to_be_visible()
    expect(page.locator(".type-location .map-link").first).to_have_attribute(
        "href", re.compile(r"^https://www\.openstreetmap\.org/\?mlat=-?\d")
    )
    expect(page.locator(".type-contacts .contact-card-name").first).not_to_be_empty()
    expect(page.locator(".type-interactive .reply-text").first).not_to_be_empty()
    expect(page.locator(".type-order .order-items li")).to_have_count(1)
    expect(page.locator(".type-unsupported .placeholder")).to_contain_text("Unsupported message")
    expect(page.locator(".type-request_welcome")).to_contain_text("Opened the chat")
    # A reply quotes the message it answers when that message is on the page.
    quoted_target = deliver(stack, content={"text": {"body": "the original question"}})
    deliver(stack, content={"text": {"body": "the answer"}}, context={"from": "15557730142", "id": quoted_target})
    expect(page.locator(".message", has_text="the answer").locator(".quote")).to_have_text("the original question")
    # Reactions appear under their message live, and go when removed.
    target = page.locator(f'[data-wamid="{quoted_target}"]')
    deliver(stack, message_type="reaction", content={"reaction": {"message_id": quoted_target, "emoji": "👍"}})
    expect(target.locator(".reaction")).to_have_text("👍")
    deliver(stack, message_type="reaction", content={"reaction": {"message_id": quoted_target}})
    expect(target.locator(".reaction")).to_have_count(0)
    # Everything survives a reload: the page renders the same from the database.
    page.reload()
    expect(page.locator("#messages .message")).to_have_count(1 + len(samples) + 3)
    page.context.close()


def test_the_list_loads_older_conversations_on_scroll(stack, browser, number):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(130):
        MessageFactory(conversation=ConversationFactory(number=number, last_message_at=start + timedelta(minutes=i)))
    page = open_inbox(logged_in_page(browser, stack.base_url, staff_member("ana", number)))
    rows = page.locator(".conversation-row")
    expect(rows).to_have_count(100)
    expect(page).to_have_title("(130) Inbox · WhatsApp Inbox")  # the unloaded ones count too
    page.locator(".conversation-scroll").evaluate("list => list.scrollTop = list.scrollHeight")
    expect(rows).to_have_count(130)
    ids = rows.evaluate_all("rows => rows.map(r => Number(r.dataset.conversationId))")
    assert len(set(ids)) == 130, "no conversation twice"
    expect(page).to_have_title("(130) Inbox · WhatsApp Inbox")
    page.context.close()


def test_conversations_this_tab_never_loaded_keep_title_and_badges_right(stack, browser, number):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # The two oldest conversations are beyond the first page of 100: only the title counts their unread messages.
    oldest = ConversationFactory(number=number, contact=ContactFactory(wa_id="447700900461"), last_message_at=start)
    MessageFactory.create_batch(3, conversation=oldest)
    second_oldest = ConversationFactory(number=number, last_message_at=start + timedelta(minutes=1))
    MessageFactory(conversation=second_oldest)
    for i in range(2, 130):
        MessageFactory(conversation=ConversationFactory(number=number, last_message_at=start + timedelta(minutes=i)))
    user = staff_member("ana", number)
    page = open_inbox(logged_in_page(browser, stack.base_url, user))
    expect(page.locator(".conversation-row")).to_have_count(100)
    expect(page).to_have_title("(132) Inbox · WhatsApp Inbox")

    other_tab = page.context.new_page()
    open_inbox(other_tab, f"/inbox/{second_oldest.pk}/")
    expect(page).to_have_title("(131) Inbox · WhatsApp Inbox")

    # A new message brings the oldest conversation into this tab, its three older unread messages with it.
    deliver(stack, content={"text": {"body": "Still waiting"}})
    row = page.locator(f'.conversation-row[data-conversation-id="{oldest.pk}"]')
    expect(row.locator(".badge")).to_have_text("4")
    expect(page).to_have_title("(132) Inbox · WhatsApp Inbox")
    deliver(stack, content={"text": {"body": "Hello?"}})
    expect(row.locator(".badge")).to_have_text("5")
    expect(page).to_have_title("(133) Inbox · WhatsApp Inbox")
    open_inbox(other_tab, f"/inbox/{oldest.pk}/")
    expect(row.locator(".badge")).to_have_count(0)
    expect(page).to_have_title("(128) Inbox · WhatsApp Inbox")
    page.reload()  # what the server says agrees
    expect(page).to_have_title("(128) Inbox · WhatsApp Inbox")
    page.context.close()


def test_a_read_of_one_conversation_keeps_the_count_another_row_was_waiting_for(stack, browser, number):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # The oldest conversation is beyond the first page of 100; the newest has one unread message.
    oldest = ConversationFactory(number=number, contact=ContactFactory(wa_id="447700900461"), last_message_at=start)
    MessageFactory.create_batch(3, conversation=oldest)
    for i in range(1, 101):
        newest = ConversationFactory(number=number, last_message_at=start + timedelta(minutes=i))
        MessageFactory(conversation=newest)
    user = staff_member("ana", number)
    page = open_inbox(logged_in_page(browser, stack.base_url, user))
    expect(page).to_have_title("(103) Inbox · WhatsApp Inbox")
    held = []  # the oldest row's count from the server, held until the read below has reached this tab
    page.route(f"**/api/conversations/{oldest.pk}/", lambda route: held.append(route))

    with page.expect_request(f"**/api/conversations/{oldest.pk}/"):
        deliver(stack, content={"text": {"body": "Still waiting"}})
    row = page.locator(f'.conversation-row[data-conversation-id="{oldest.pk}"]')
    expect(row.locator(".badge")).to_have_text("1")  # what the event brought, until the server's count comes
    open_inbox(page.context.new_page(), f"/inbox/{newest.pk}/")
    expect(page.locator(f'.conversation-row[data-conversation-id="{newest.pk}"] .badge')).to_have_count(0)
    assert len(held) == 1
    held[0].continue_()

    expect(row.locator(".badge")).to_have_text("4")  # a read of another conversation did not void its count
    expect(page).to_have_title("(103) Inbox · WhatsApp Inbox")
    page.context.close()


def test_a_merge_leaves_one_row_counting_both_and_moves_a_tab_that_had_the_other_open(stack, browser, number):
    now = datetime.now(UTC)  # both customers wrote just now: the 24-hour window is open, the text composer shown
    kept = ConversationFactory(
        number=number,
        contact=ContactFactory(wa_id="447700900461", profile_name="Amara Okafor"),
        last_message_at=now,
        last_inbound_at=now,
    )
    MessageFactory(conversation=kept, timestamp=now)
    gone = ConversationFactory(
        number=number,
        contact=ContactFactory(wa_id="4407700900461", profile_name="Amara O."),
        last_message_at=now,
        last_inbound_at=now,
    )
    MessageFactory.create_batch(2, conversation=gone, timestamp=now)
    third = ConversationFactory(number=number)
    MessageFactory(conversation=third)
    page = open_inbox(logged_in_page(browser, stack.base_url, staff_member("ana", number)), f"/inbox/{third.pk}/")
    expect(page.locator(".conversation-row")).to_have_count(3)
    expect(page).to_have_title("(3) Inbox · WhatsApp Inbox")
    colleague_tab = open_inbox(
        logged_in_page(browser, stack.base_url, staff_member("bea", number)), f"/inbox/{gone.pk}/"
    )
    colleague_tab.fill("#composer-input", "Half-typed answer")

    token = requests.post(
        f"{stack.base_url}/api/auth/token/", json={"username": "ana", "password": "pw-for-tests"}, timeout=10
    )
    merged = requests.post(
        f"{stack.base_url}/api/contacts/{kept.contact_id}/merge/",
        json={"duplicate": gone.contact_id},
        headers={"Authorization": f"Bearer {token.json()['access']}"},
        timeout=10,
    )
    assert merged.status_code == 200, merged.text

    expect(page.locator(".conversation-row")).to_have_count(2)
    expect(page.locator(f'.conversation-row[data-conversation-id="{kept.pk}"] .badge')).to_have_text("3")
    expect(page).to_have_title("(3) Inbox · WhatsApp Inbox")
    expect(colleague_tab).to_have_url(re.compile(rf"/inbox/{kept.pk}/$"))
    expect(colleague_tab.locator("#messages .message")).to_have_count(3)
    expect(colleague_tab.locator("#composer-input")).to_have_value("Half-typed answer")  # the draft came along
    page.context.close()
    colleague_tab.context.close()

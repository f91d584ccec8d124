"""A Coexistence number in the browser, with the Meta sandbox playing the phone app: what the business sends from
the WhatsApp Business app shows in the open thread, and a customer's edit changes the bubble live."""

import pytest
from playwright.sync_api import expect

from conversations.models import AddressBookEntry, Conversation, MemberRole, NumberMembership
from tests.e2e.conftest import NUMBER, logged_in_page, sandbox_stack_overrides, staff_member, wait_for
from tests.e2e.test_inbox_browser import open_inbox

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

stack_overrides = sandbox_stack_overrides

CUSTOMER = "447700900461"


def test_the_phone_apps_reply_and_the_customers_edit_show_live_in_the_open_thread(sandbox, browser, stack, number):
    original = sandbox.customer_writes(wa_id=CUSTOMER, text="Is my order on its way?")
    conversation = wait_for(lambda: Conversation.objects.first(), what="the customer's conversation")
    page = open_inbox(
        logged_in_page(browser, stack.base_url, staff_member("ana", number)), f"/inbox/{conversation.pk}/"
    )
    bubble = page.locator(f'.message[data-wamid="{original}"]')
    expect(bubble).to_contain_text("Is my order on its way?")

    sandbox.control("POST", "echo", {**NUMBER, "wa_id": CUSTOMER, "text": "Yes, it left this morning."})

    reply = page.locator(".message-out").last
    expect(reply).to_contain_text("Yes, it left this morning.")
    expect(reply.locator(".phone-app")).to_have_text("Sent from the phone app")
    expect(reply.locator(".ticks")).to_have_attribute("data-status", "sent")

    sandbox.control(
        "POST", "edit", {**NUMBER, "wa_id": CUSTOMER, "original_wamid": original, "text": "Is order 1042 on its way?"}
    )

    expect(bubble).to_contain_text("Is order 1042 on its way?")
    expect(bubble.locator(".edited")).to_have_text("edited")
    expect(bubble.locator(".edited")).to_have_attribute("title", "Earlier: Is my order on its way?")
    expect(page.locator(".message")).to_have_count(2)  # the edit is no message of its own

    sandbox.control("POST", "revoke", {**NUMBER, "wa_id": CUSTOMER, "original_wamid": original})

    expect(bubble).to_contain_text("This message was deleted")
    expect(bubble).not_to_contain_text("1042")
    page.context.close()


def test_the_phone_apps_past_chats_import_live_on_the_numbers_page_and_its_contacts_name_the_customer(
    sandbox, browser, stack, number
):
    sam = staff_member("sam", number)
    NumberMembership.objects.filter(user=sam, number=number).update(role=MemberRole.SUPERVISOR)
    numbers_page = logged_in_page(browser, stack.base_url, sam)
    numbers_page.goto("/numbers/")
    expect(numbers_page.locator("#connection-state")).to_have_attribute("data-state", "live")
    card = numbers_page.locator(f"#number-{number.pk}")
    expect(card.locator('[data-fact="phone-app"]')).to_have_text("No: the API only")

    threads = [
        {
            "wa_id": CUSTOMER,
            "messages": [{"text": "Do you ship to Leeds?"}, {"text": "Next day.", "from_business": True}],
        },
        {"wa_id": "447700900462", "messages": [{"text": "Open on Sunday?"}]},
    ]
    sandbox.control("POST", "history", {**NUMBER, "threads": threads})

    expect(card.locator('[data-fact="history"]')).to_have_text("Imported: 100 % (3 messages)")
    expect(card.locator('[data-fact="phone-app"]')).to_contain_text("Yes: the WhatsApp Business app answers too")

    sandbox.control(
        "POST", "contact_sync", {**NUMBER, "contacts": [{"phone_number": CUSTOMER, "full_name": "Pablo Morales"}]}
    )
    conversation = Conversation.objects.get(contact__wa_id=CUSTOMER)
    assert conversation.status == "resolved"  # past work, not new work
    wait_for(lambda: AddressBookEntry.objects.filter(contact=conversation.contact).exists(), what="the contact sync")
    inbox = open_inbox(numbers_page, f"/inbox/{conversation.pk}/?status=resolved")
    expect(inbox.locator(".message-out").last).to_contain_text("Next day.")
    inbox.get_by_role("button", name="Contact").click()
    expect(inbox.locator("#contact-facts")).to_contain_text("Saved in the phone app asPablo Morales")
    inbox.context.close()

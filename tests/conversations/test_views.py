"""The inbox pages: login required, membership, filters, marking read, constant query counts."""

import json
import re

import pytest

from conversations.models import ReadState
from tests.factories import (
    BusinessNumberFactory,
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    OutboundMessageFactory,
)

pytestmark = pytest.mark.django_db


def page_data(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="inbox-data" type="application/json">') + len(
        '<script id="inbox-data" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_anonymous_is_sent_to_login(client):
    response = client.get("/inbox/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get("/login/").status_code == 200


def test_login_and_logout(client, staff):
    response = client.post("/login/", {"username": "ana", "password": "pw-for-tests"})
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    assert client.get("/inbox/").status_code == 200
    client.post("/logout/")
    assert client.get("/inbox/").status_code == 302


def test_inbox_lists_only_my_numbers_newest_first(staff_client, number):
    old = ConversationFactory(number=number, last_message_at="2026-01-01T10:00Z")
    new = ConversationFactory(number=number, last_message_at="2026-01-02T10:00Z")
    ConversationFactory()  # someone else's number
    data = page_data(staff_client.get("/inbox/"))
    assert [c["id"] for c in data["conversations"]] == [new.pk, old.pk]
    assert data["lastEventId"] >= 0


@pytest.mark.parametrize("which", ["another number's", "gone"])
def test_a_conversation_one_may_not_open_leads_back_to_the_inbox_saying_so(staff_client, number, which):
    conversation = ConversationFactory(contact__profile_name="Secret Customer")  # someone else's number
    conversation_id = conversation.pk
    if which == "gone":
        conversation.delete()
    response = staff_client.get(f"/inbox/{conversation_id}/?filter=unread&number={number.phone_number_id}")
    assert response.status_code == 302
    assert response["Location"] == f"/inbox/?filter=unread&number={number.phone_number_id}"
    page = staff_client.get(response["Location"])
    notice = re.search(r'<ul class="notices" role="status"><li>(.*?)</li></ul>', page.content.decode())
    assert notice and "not available" in notice.group(1)
    assert "Secret Customer" not in page.content.decode()
    assert "not available" not in staff_client.get("/inbox/").content.decode()  # said once


def test_opening_a_conversation_changes_nothing_until_the_page_posts_that_it_was_read(staff_client, staff, number):
    conversation = ConversationFactory(number=number)
    messages = MessageFactory.create_batch(2, conversation=conversation)
    data = page_data(staff_client.get(f"/inbox/{conversation.pk}/"))
    assert [m["id"] for m in data["messages"]] == [m.pk for m in messages]
    # A link from another site opens the page too: the GET shows the conversation as it is.
    assert data["conversation"]["unread_count"] == 2
    assert data["conversation"]["last_message_id"] == messages[-1].pk
    assert not ReadState.objects.filter(user=staff).exists()
    read = staff_client.post(f"/api/conversations/{conversation.pk}/read/")
    assert read.json() == {"conversation_id": conversation.pk, "last_read_message_id": messages[-1].pk}
    assert ReadState.objects.get(user=staff).last_read_message_id == messages[-1].pk
    assert page_data(staff_client.get("/inbox/"))["conversations"][0]["unread_count"] == 0


def test_the_read_post_needs_the_csrf_token_of_the_page(staff, number):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    conversation = ConversationFactory(number=number)
    MessageFactory(conversation=conversation)
    assert browser.post(f"/api/conversations/{conversation.pk}/read/").status_code == 403
    assert not ReadState.objects.filter(user=staff).exists()


def test_opening_a_conversation_whose_newest_message_is_our_reply_reads_up_to_the_reply(staff_client, staff, number):
    conversation = ConversationFactory(number=number)
    MessageFactory(conversation=conversation)
    reply = OutboundMessageFactory(conversation=conversation)
    data = page_data(staff_client.get(f"/inbox/{conversation.pk}/"))
    assert data["conversation"]["last_message_id"] == reply.pk
    staff_client.post(f"/api/conversations/{conversation.pk}/read/")
    assert ReadState.objects.get(user=staff).last_read_message_id == reply.pk


def test_filters_unread_number_and_search(staff_client, staff, number):
    other = BusinessNumberFactory()
    other.members.add(staff)
    amara = ConversationFactory(
        number=number, contact=ContactFactory(profile_name="Amara Okafor", wa_id="447700900461", phone="+447700900461")
    )
    MessageFactory(conversation=amara)
    bruno = ConversationFactory(
        number=other, contact=ContactFactory(profile_name="Bruno Lima", wa_id="5511987650042", phone="+5511987650042")
    )
    ids = lambda query: [c["id"] for c in page_data(staff_client.get(f"/inbox/?{query}"))["conversations"]]  # noqa: E731
    assert ids("filter=unread") == [amara.pk]
    assert ids(f"number={other.phone_number_id}") == [bruno.pk]
    assert ids("q=amara") == [amara.pk]
    assert ids("q=%2B55 11 98765-0042") == [bruno.pk]
    assert ids("q=07700 900461") == [amara.pk]
    assert ids("q=ama%00ra") == [amara.pk]  # a NUL byte (schemathesis sent one) is dropped, not a 500


def test_customer_text_is_escaped_in_the_page(staff_client, number):
    conversation = ConversationFactory(
        number=number, contact=ContactFactory(profile_name="</script><script>alert(1)</script>")
    )
    MessageFactory(conversation=conversation, body="<script>alert(2)</script>")
    html = staff_client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "<script>alert" not in html


def test_pages_run_a_constant_number_of_queries(staff_client, number, django_assert_max_num_queries):
    for _ in range(3):
        MessageFactory(conversation=ConversationFactory(number=number))
    conversation = ConversationFactory(number=number)
    MessageFactory.create_batch(3, conversation=conversation)
    with django_assert_max_num_queries(20) as small_list:
        staff_client.get("/inbox/")
    with django_assert_max_num_queries(30) as small_thread:
        staff_client.get(f"/inbox/{conversation.pk}/")
    for _ in range(40):
        MessageFactory(conversation=ConversationFactory(number=number))
    MessageFactory.create_batch(60, conversation=conversation)
    with django_assert_max_num_queries(len(small_list.captured_queries)):
        staff_client.get("/inbox/")
    with django_assert_max_num_queries(len(small_thread.captured_queries)):
        staff_client.get(f"/inbox/{conversation.pk}/")


def test_history_page_before_a_message(api, number):
    conversation = ConversationFactory(number=number)
    messages = MessageFactory.create_batch(60, conversation=conversation)
    page = api.get(f"/api/conversations/{conversation.pk}/messages/?before={messages[55].pk}").json()
    assert [m["id"] for m in page["results"]] == [m.pk for m in messages[5:55]]
    assert page["has_more"] is True
    rest = api.get(f"/api/conversations/{conversation.pk}/messages/?before={messages[5].pk}").json()
    assert [m["id"] for m in rest["results"]] == [m.pk for m in messages[:5]] and rest["has_more"] is False

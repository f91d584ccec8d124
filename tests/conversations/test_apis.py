"""The read API: JWT auth, membership, per-user unread counts, shapes and pagination."""

import pytest
from rest_framework.test import APIClient

from tests.factories import (
    BusinessNumberFactory,
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    OutboundMessageFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_jwt_login_then_list(staff, number):
    ConversationFactory(number=number)
    client = APIClient()
    tokens = client.post("/api/auth/token/", {"username": "ana", "password": "pw-for-tests"}, format="json").json()
    assert client.get("/api/conversations/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert len(client.get("/api/conversations/").json()["results"]) == 1
    refreshed = client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200 and refreshed.json()["access"]


def test_anonymous_is_refused():
    assert APIClient().get("/api/conversations/").status_code == 401


def test_staff_see_only_their_numbers_and_superusers_see_all(staff, number):
    mine = ConversationFactory(number=number)
    theirs = ConversationFactory()  # another number
    MessageFactory(conversation=theirs)
    listed = [c["id"] for c in client_for(staff).get("/api/conversations/").json()["results"]]
    assert listed == [mine.pk]
    assert client_for(staff).get(f"/api/conversations/{theirs.pk}/messages/").status_code == 404
    assert client_for(staff).post(f"/api/conversations/{theirs.pk}/read/").status_code == 404
    boss = UserFactory(username="boss", is_superuser=True)
    assert {c["id"] for c in client_for(boss).get("/api/conversations/").json()["results"]} == {mine.pk, theirs.pk}


def test_conversation_item_shape(api, number):
    conversation = ConversationFactory(
        number=number, contact=ContactFactory(wa_id="447700900461", phone="+447700900461")
    )
    MessageFactory(conversation=conversation)
    [item] = api.get("/api/conversations/").json()["results"]
    assert item["contact"]["wa_id"] == "447700900461"
    assert item["contact"]["phone"] == "+447700900461"
    assert item["number"] == {
        "id": number.pk,
        "phone_number_id": number.phone_number_id,
        "display_phone_number": number.display_phone_number,
    }
    assert item["unread_count"] == 1
    assert set(item) >= {"id", "contact", "number", "unread_count", "last_message_at", "last_message"}


def test_unread_counts_are_per_staff_member(staff, number):
    colleague = UserFactory(username="bo")
    number.members.add(colleague)
    conversation = ConversationFactory(number=number)
    MessageFactory.create_batch(3, conversation=conversation)
    OutboundMessageFactory(conversation=conversation)  # our own replies are never unread
    assert client_for(staff).get("/api/conversations/").json()["results"][0]["unread_count"] == 3
    assert client_for(staff).post(f"/api/conversations/{conversation.pk}/read/").status_code == 200
    assert client_for(staff).get("/api/conversations/").json()["results"][0]["unread_count"] == 0
    assert client_for(colleague).get("/api/conversations/").json()["results"][0]["unread_count"] == 3
    MessageFactory(conversation=conversation)
    assert client_for(staff).get("/api/conversations/").json()["results"][0]["unread_count"] == 1
    assert client_for(staff).get("/api/conversations/?unread=1").json()["results"][0]["id"] == conversation.pk


def test_filter_by_number(staff, number):
    other = BusinessNumberFactory()
    other.members.add(staff)
    a = ConversationFactory(number=number)
    ConversationFactory(number=other)
    listed = client_for(staff).get(f"/api/conversations/?number={number.phone_number_id}").json()["results"]
    assert [c["id"] for c in listed] == [a.pk]


def test_each_item_names_its_newest_message_whichever_way_it_went(api, number):
    quiet = ConversationFactory(number=number)
    chatty = ConversationFactory(number=number)
    MessageFactory(conversation=chatty)
    reply = OutboundMessageFactory(conversation=chatty)
    MessageFactory(conversation=ConversationFactory(number=number))  # newer ids elsewhere do not count
    by_id = {c["id"]: c for c in api.get("/api/conversations/").json()["results"]}
    assert by_id[quiet.pk]["last_message_id"] == 0
    assert by_id[chatty.pk]["last_message_id"] == reply.pk
    answer = MessageFactory(conversation=chatty)
    assert {c["id"]: c for c in api.get("/api/conversations/").json()["results"]}[chatty.pk][
        "last_message_id"
    ] == answer.pk


def test_a_number_filter_naming_a_number_one_may_not_see_lists_nothing(staff, number):
    ConversationFactory(number=number)
    hidden = ConversationFactory()  # another number, not the staff member's
    listed = client_for(staff).get(f"/api/conversations/?number={hidden.number.phone_number_id}").json()["results"]
    assert listed == []


def test_newest_activity_first_with_cursor_pages(api, number):
    from datetime import UTC, datetime, timedelta

    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = [ConversationFactory(number=number, last_message_at=base + timedelta(minutes=i)) for i in range(5)]
    first = api.get("/api/conversations/?page_size=3").json()
    second = api.get(first["next"]).json()
    ids = [c["id"] for c in first["results"] + second["results"]]
    assert ids == [c.pk for c in reversed(made)]


def test_message_item_shape_and_pagination(api, number):
    conversation = ConversationFactory(number=number)
    failed = OutboundMessageFactory(
        conversation=conversation,
        wamid="wamid.OUT",
        status="failed",
        error_code=131026,
        error_title="Message undeliverable",
    )
    reply = MessageFactory(
        conversation=conversation, reply_to_wamid="wamid.OUT", timestamp=failed.timestamp.replace(hour=1)
    )
    page = api.get(f"/api/conversations/{conversation.pk}/messages/?page_size=1").json()
    [first] = page["results"]
    assert first["id"] == failed.pk
    assert first["direction"] == "out" and first["status"] == "failed"
    assert first["error"] == {"code": 131026, "title": "Message undeliverable"}
    [second] = api.get(page["next"]).json()["results"]
    assert second["id"] == reply.pk and second["reply_to"] == "wamid.OUT" and second["error"] is None
    assert set(second) >= {
        "id",
        "wamid",
        "direction",
        "type",
        "text",
        "timestamp",
        "status",
        "error",
        "reply_to",
        "reactions",
    }


def test_list_runs_a_constant_number_of_queries(api, number, django_assert_max_num_queries):
    for _ in range(30):
        MessageFactory(conversation=ConversationFactory(number=number))
    with django_assert_max_num_queries(6):
        assert len(api.get("/api/conversations/").json()["results"]) == 30


def test_messages_run_a_constant_number_of_queries(api, number, django_assert_max_num_queries):
    conversation = ConversationFactory(number=number)
    MessageFactory.create_batch(40, conversation=conversation)
    with django_assert_max_num_queries(7):
        assert len(api.get(f"/api/conversations/{conversation.pk}/messages/").json()["results"]) == 40


def test_unread_total_counts_every_conversation_one_may_see_for_this_user_only(staff, number):
    conversations = [ConversationFactory(number=number) for _ in range(3)]
    for count, conversation in enumerate(conversations, start=1):
        MessageFactory.create_batch(count, conversation=conversation)
    MessageFactory.create_batch(4, conversation=ConversationFactory())  # another number's
    OutboundMessageFactory(conversation=ConversationFactory(number=number))  # ours: never unread
    colleague = UserFactory(username="colleague")
    number.members.add(colleague)
    client = client_for(staff)
    assert client.get("/api/conversations/unread-total/").json() == {"unread_total": 6}
    assert client.post(f"/api/conversations/{conversations[2].pk}/read/").status_code == 200
    assert client.get("/api/conversations/unread-total/").json() == {"unread_total": 3}
    assert client_for(colleague).get("/api/conversations/unread-total/").json() == {"unread_total": 6}
    assert APIClient().get("/api/conversations/unread-total/").status_code == 401


def test_one_conversation_as_the_list_gives_it_with_this_users_unread_count(staff, number):
    conversation = ConversationFactory(number=number)
    MessageFactory.create_batch(2, conversation=conversation)
    others = MessageFactory(conversation=ConversationFactory())  # another number's
    client = client_for(staff)
    [listed] = client.get("/api/conversations/").json()["results"]
    detail = client.get(f"/api/conversations/{conversation.pk}/")
    assert detail.status_code == 200 and detail.json() == listed and listed["unread_count"] == 2
    client.post(f"/api/conversations/{conversation.pk}/read/")
    assert client.get(f"/api/conversations/{conversation.pk}/").json()["unread_count"] == 0
    assert client.get(f"/api/conversations/{others.conversation.pk}/").status_code == 404
    assert APIClient().get(f"/api/conversations/{conversation.pk}/").status_code == 401

"""Message search: the inbox's search finds messages by their words (PostgreSQL full-text search on the index
message_body_search), in the numbers the reader is a member of only, and a hit opens its conversation at it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from conversations.models import ConversationStatus
from conversations.search import snippet
from conversations.selectors import message_search
from tests.conversations.team import as_user, make_team
from tests.conversations.test_views import page_data
from tests.factories import BusinessNumberFactory, ContactFactory, ConversationFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def people(number):
    return make_team(number)


@pytest.fixture
def amara(number):
    """A conversation on the team's number, its messages a minute apart."""
    conversation = ConversationFactory(number=number, contact=ContactFactory(profile_name="Amara Okafor"))
    bodies = ["Hello there", "Where is my parcel?", "The courier left a note", "Thanks, the parcel arrived"]
    for n, body in enumerate(bodies):
        MessageFactory(conversation=conversation, body=body, timestamp=START + timedelta(minutes=n))
    return conversation


def found(user, search: str) -> list[str]:
    return [m.body for m in message_search(user=user, search=search)]


def test_words_find_messages_newest_first_the_last_word_as_typed(people, amara):
    ana = people["ana"]
    assert found(ana, "parcel") == ["Thanks, the parcel arrived", "Where is my parcel?"]
    assert found(ana, "PARCEL arrived") == ["Thanks, the parcel arrived"]  # every word, in any case
    assert found(ana, "the parc") == ["Thanks, the parcel arrived"]  # the last word is a prefix while typing
    assert found(ana, "cour") == ["The courier left a note"]
    assert found(ana, '"left a note"') == ["The courier left a note"]
    assert found(ana, "parcel -arrived") == ["Where is my parcel?"]
    assert found(ana, "parcel or courier") == [
        "Thanks, the parcel arrived",
        "The courier left a note",
        "Where is my parcel?",
    ]
    assert found(ana, "arc") == []  # words, not parts of them
    assert found(ana, "?!") == [] and found(ana, "") == []


def test_only_the_numbers_the_reader_is_a_member_of_are_searched(people, amara, number):
    other_number = BusinessNumberFactory()
    olgas = ConversationFactory(number=other_number)
    other_number.members.add(people["olga"])
    MessageFactory(conversation=olgas, body="My parcel is late", timestamp=START)
    assert found(people["ana"], "parcel") == ["Thanks, the parcel arrived", "Where is my parcel?"]
    assert found(people["olga"], "parcel") == ["My parcel is late"]
    root = UserFactory(username="root", is_superuser=True)
    assert len(found(root, "parcel")) == 3
    assert [m.body for m in message_search(user=root, search="parcel", phone_number_id=number.phone_number_id)] == [
        "Thanks, the parcel arrived",
        "Where is my parcel?",
    ]


def test_the_api_lists_hits_with_their_contact_and_a_marked_snippet_a_page_at_a_time(people, amara):
    body = as_user(people["ana"]).get("/api/messages/search/?q=parcel&page_size=1").json()
    [hit] = body["results"]
    newest = amara.messages.get(body="Thanks, the parcel arrived")
    assert hit["id"] == newest.pk and hit["conversation_id"] == amara.pk
    assert hit["contact"]["name"] == "Amara Okafor" and hit["status"] == ConversationStatus.OPEN
    assert hit["snippet"] == [
        {"text": "Thanks, the ", "match": False},
        {"text": "parcel", "match": True},
        {"text": " arrived", "match": False},
    ]
    following = as_user(people["ana"]).get(body["next"]).json()
    assert [h["snippet"][1]["text"] for h in following["results"]] == ["parcel"]
    assert following["results"][0]["id"] == amara.messages.get(body="Where is my parcel?").pk
    assert following["next"] is None


def test_the_api_refuses_a_search_without_words_and_a_stranger_finds_nothing(people, amara):
    response = as_user(people["ana"]).get("/api/messages/search/?q=%20!%20")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid" and "q" in response.json()["error"]["fields"]
    assert as_user(people["olga"]).get("/api/messages/search/?q=parcel").json()["results"] == []
    assert as_user(people["ana"]).get("/api/messages/search/?q=parcel&number=nope").json()["results"] == []


def test_a_snippet_centres_on_the_first_matched_word_and_says_what_it_cut():
    text = "word " * 30 + "the refund came through " + "more " * 40
    parts = snippet(text, ["refund"])
    assert parts[0] == {"text": "…", "match": False} and parts[-1] == {"text": "…", "match": False}
    assert [p["text"] for p in parts if p["match"]] == ["refund"]
    assert len("".join(p["text"] for p in parts)) <= 162
    assert snippet("<b>refund</b>", ["refund"]) == [
        {"text": "<b>", "match": False},
        {"text": "refund", "match": True},
        {"text": "</b>", "match": False},
    ]


def test_the_search_is_answered_from_the_full_text_index_on_a_filled_table(number, people):
    conversation = ConversationFactory(number=number)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO conversations_message (conversation_id, wamid, direction, type, body, preview, content, context,
                reply_to_wamid, timestamp, status, error_title, send_attempts, created_at)
            SELECT %s, 'wamid.FILL' || i, 'in', 'text', 'message ' || i || CASE WHEN i %% 500 = 0 THEN ' refund' ELSE '' END, '', '{}',
                   '{}', '', now() - (i || ' seconds')::interval, 'received', '', 0, now()
            FROM generate_series(1, 20000) AS i
            """,
            [conversation.pk],
        )
        cursor.execute("ANALYZE conversations_message")
    for search in ("refund", "message refu"):
        query = message_search(user=people["ana"], search=search)[:20]
        plan = query.explain()
        assert "message_body_search" in plan, plan
        assert len(list(query)) == 20


def test_a_hit_opens_the_thread_at_it_with_older_and_newer_messages_to_load(client, people, number):
    conversation = ConversationFactory(number=number)
    for n in range(120):
        MessageFactory(conversation=conversation, body=f"note {n}", timestamp=START + timedelta(minutes=n))
    hit = conversation.messages.get(body="note 30")
    client.force_login(people["ana"])
    data = page_data(client.get(f"/inbox/{conversation.pk}/?q=note+30&message={hit.pk}"))
    bodies = [m["body"] for m in data["messages"]]
    assert bodies == [f"note {n}" for n in range(5, 55)]
    assert (data["focusMessageId"], data["hasMore"], data["hasNewer"]) == (hit.pk, True, True)
    assert [h["id"] for h in data["messageHits"]] == [hit.pk]
    api = as_user(people["ana"])
    newer = api.get(f"/api/conversations/{conversation.pk}/messages/?after={data['messages'][-1]['id']}").json()
    assert [m["body"] for m in newer["results"]] == [f"note {n}" for n in range(55, 105)] and newer["has_more"]
    older = api.get(f"/api/conversations/{conversation.pk}/messages/?before={data['messages'][0]['id']}").json()
    assert [m["body"] for m in older["results"]] == [f"note {n}" for n in range(5)] and not older["has_more"]
    # A message of another conversation is no place to open at: the newest page, as without one.
    elsewhere = MessageFactory(conversation=ConversationFactory(number=number))
    data = page_data(client.get(f"/inbox/{conversation.pk}/?message={elsewhere.pk}"))
    assert data["focusMessageId"] is None and data["messages"][-1]["body"] == "note 119" and not data["hasNewer"]
    stranger = as_user(people["olga"])
    assert stranger.get(f"/api/conversations/{conversation.pk}/messages/?after={hit.pk}").status_code == 404


def test_the_inbox_lists_message_hits_beside_contact_hits_within_15_queries(
    client, people, amara, django_assert_max_num_queries
):
    for n in range(30):
        MessageFactory(conversation=ConversationFactory(number=amara.number), body=f"parcel {n}", timestamp=START)
    client.force_login(people["ana"])
    with django_assert_max_num_queries(15):
        data = page_data(client.get("/inbox/?q=parcel"))
    assert len(data["messageHits"]) == 20 and data["messageHitsNext"]
    hit = amara.messages.get(body="Where is my parcel?")
    # Opened at a hit, the thread's page around it is one read, as the newest page is; the conversation is not on
    # the list's page (its contact's name does not match), which costs its own two reads, as without a hit.
    with django_assert_max_num_queries(16):
        data = page_data(client.get(f"/inbox/{amara.pk}/?q=parcel&message={hit.pk}"))
    assert data["focusMessageId"] == hit.pk
    with django_assert_max_num_queries(16):
        page_data(client.get(f"/inbox/{amara.pk}/?q=parcel"))
    client.force_login(people["olga"])
    assert page_data(client.get("/inbox/?q=parcel"))["messageHits"] == []

"""Message search: the inbox's search finds messages by their words (PostgreSQL full-text search on the index
message_body_search), in the numbers the reader is a member of only, and a hit opens its conversation at it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import selectors
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


@pytest.fixture
def busy_inbox(number, monkeypatch):
    """Eight conversations, the n-th last active n hours after START, each with its messages of that hour;
    a first page is looked for among the three most recently active."""
    monkeypatch.setattr(selectors, "RECENT_SEARCH_CONVERSATIONS", 3)
    conversations = []
    for n in range(8):
        at = START + timedelta(hours=n)
        conversation = ConversationFactory(number=number, last_message_at=at)
        for minute in range(3):
            body = f"refund {n}.{minute}" + (" voucher" if n == 0 else "")
            MessageFactory(conversation=conversation, body=body, timestamp=at - timedelta(minutes=3 - minute))
        conversations.append(conversation)
    return conversations


def hit_text(hit: dict) -> str:
    return "".join(part["text"] for part in hit["snippet"])


def api_hits(user, url: str) -> list[str]:
    """Every hit the API lists, following its next links."""
    bodies = []
    while url:
        page = as_user(user).get(url).json()
        bodies += [hit_text(hit) for hit in page["results"]]
        url = page["next"]
    return bodies


def test_a_frequent_words_first_page_is_read_from_the_recent_messages_alone(
    people, busy_inbox, django_assert_num_queries
):
    everything = found(people["ana"], "refund")
    assert len(everything) == 24
    with CaptureQueriesContext(connection) as queries:
        page = as_user(people["ana"]).get("/api/messages/search/?q=refund&page_size=4").json()
    assert [hit_text(hit) for hit in page["results"]] == ["refund 7.2", "refund 7.1", "refund 7.0", "refund 6.2"]
    searches = [q["sql"] for q in queries if "to_tsvector" in q["sql"]]
    assert len(searches) == 1 and '"timestamp" >=' in searches[0]
    # The pages after it come from the whole search: nothing older is left out, nothing repeated.
    assert api_hits(people["ana"], "/api/messages/search/?q=refund&page_size=4") == everything


def test_a_word_the_recent_messages_lack_is_found_in_the_older_ones(people, busy_inbox):
    assert found(people["ana"], "voucher") == ["refund 0.2 voucher", "refund 0.1 voucher", "refund 0.0 voucher"]
    page = as_user(people["ana"]).get("/api/messages/search/?q=voucher&page_size=2").json()
    assert [hit["id"] for hit in page["results"]] == [
        m.pk for m in message_search(user=people["ana"], search="voucher")[:2]
    ]
    # Recent messages that do not fill the page are not the whole answer either.
    page = as_user(people["ana"]).get("/api/messages/search/?q=refund&page_size=12").json()
    assert len(page["results"]) == 12 and hit_text(page["results"][-1]) == "refund 4.0"


def test_a_word_frequent_once_but_not_lately_is_looked_for_further_back_before_everywhere(people, number, monkeypatch):
    monkeypatch.setattr(selectors, "RECENT_SEARCH_CONVERSATIONS", 3)
    now = timezone.now()
    for minutes in (1, 2, 3):  # the three most recently active: the last 3 minutes, without the word
        at = now - timedelta(minutes=minutes)
        MessageFactory(conversation=ConversationFactory(number=number, last_message_at=at), body="hi", timestamp=at)
    older = ConversationFactory(number=number, last_message_at=now - timedelta(minutes=30))
    for n in range(5):  # within twenty times as far back (an hour), and long before it
        MessageFactory(conversation=older, body=f"parcel {n}", timestamp=now - timedelta(minutes=30 + n))
        MessageFactory(conversation=older, body=f"parcel old {n}", timestamp=now - timedelta(days=2, minutes=n))

    def searched(query: str) -> tuple[list[str], list[str]]:
        with CaptureQueriesContext(connection) as queries:
            page = as_user(people["ana"]).get(f"/api/messages/search/?q={query}&page_size=4").json()
        return [hit_text(hit) for hit in page["results"]], [q["sql"] for q in queries if "to_tsvector" in q["sql"]]

    hits, searches = searched("parcel")
    assert hits == ["parcel 0", "parcel 1", "parcel 2", "parcel 3"]
    assert len(searches) == 2 and all('"timestamp" >=' in sql for sql in searches)
    hits, searches = searched("old")
    assert hits == ["parcel old 0", "parcel old 1", "parcel old 2", "parcel old 3"]
    assert len(searches) == 3 and '"timestamp" >=' not in searches[-1]  # then everywhere


def test_a_recent_message_of_a_long_quiet_conversation_is_listed_where_its_time_puts_it(people, busy_inbox, number):
    # Its conversation's last activity says otherwise (an import, a clock): the hit's own time decides.
    quiet = ConversationFactory(number=number, last_message_at=START - timedelta(days=30))
    late = MessageFactory(conversation=quiet, body="refund late", timestamp=START + timedelta(hours=9))
    page = as_user(people["ana"]).get("/api/messages/search/?q=refund&page_size=2").json()
    assert [hit["id"] for hit in page["results"]] == [late.pk, busy_inbox[7].messages.order_by("-timestamp")[0].pk]


def test_the_inbox_page_lists_the_same_first_page(client, people, busy_inbox):
    client.force_login(people["ana"])
    data = page_data(client.get("/inbox/?q=refund"))
    assert [h["id"] for h in data["messageHits"]] == [
        m.pk for m in message_search(user=people["ana"], search="refund")[:20]
    ]
    assert data["messageHitsNext"]


def test_a_first_page_reads_only_the_recent_messages_on_a_filled_table(number, people):
    conversations = [ConversationFactory(number=number) for _ in range(4)]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO conversations_message (conversation_id, wamid, direction, type, body, preview, content, context,
                reply_to_wamid, timestamp, status, error_title, send_attempts, created_at)
            SELECT (%s::bigint[])[1 + i %% 4], 'wamid.FILL' || i, 'in', 'text', 'message ' || i || ' refund', '',
                   '{}', '{}', '', now() - ((20000 - i) || ' seconds')::interval, 'received', '', 0, now()
            FROM generate_series(1, 20000) AS i
            """,
            [[c.pk for c in conversations]],
        )
        cursor.execute("ANALYZE conversations_message")
        cursor.execute("SELECT brin_summarize_new_values('message_time_ranges')")
    recent = message_search(user=people["ana"], search="refund", since=timezone.now() - timedelta(minutes=5))[:21]
    plan = recent.explain()
    # The time bound picks the rows an index gives (the time ranges, or each thread's), not a filter on them all.
    conditions = [line for line in plan.splitlines() if "Cond:" in line]
    assert any('"timestamp" >=' in line for line in conditions), plan
    assert len(list(recent)) == 21


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
    # the list's page (its contact's name does not match), which costs its own two reads, as without a hit; and
    # the search's first page up to three (when the recent conversations were active, their hits, all hits).
    with django_assert_max_num_queries(18):
        data = page_data(client.get(f"/inbox/{amara.pk}/?q=parcel&message={hit.pk}"))
    assert data["focusMessageId"] == hit.pk
    with django_assert_max_num_queries(18):
        page_data(client.get(f"/inbox/{amara.pk}/?q=parcel"))
    client.force_login(people["olga"])
    assert page_data(client.get("/inbox/?q=parcel"))["messageHits"] == []

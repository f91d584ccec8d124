"""The database's fast path: the ``any`` lookup (IN as one array) and the drains' many-row statements
(``insert_rows``, ``update_rows``), which must store exactly what the ORM would."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Value
from django.db.models.expressions import DatabaseDefault
from django.test.utils import CaptureQueriesContext
from django.utils.translation import gettext_lazy

from contacts.models import Contact
from conversations.models import Conversation, Direction, Message, MessageStatusEvent
from database.bulk import insert_rows, update_rows
from realtime.models import Event
from tests.factories import BusinessNumberFactory, ContactFactory, ConversationFactory

TRICKY = [
    "plain",
    'with "quotes"',
    "back\\slash",
    '\\"both\\"',
    "",
    "comma, {braces}",
    "NULL",
    None,
    "emoji \U0001f642",
    '{"json": "doc \\"quoted\\" \\\\ here"}',
]


@pytest.mark.django_db
def test_text_arrays_round_trip_through_postgresql():
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[], %s::text[]", [TRICKY, [TRICKY[:3], TRICKY[3:6]]])
        flat, nested = cursor.fetchone()
    assert flat == TRICKY
    assert nested == [TRICKY[:3], TRICKY[3:6]]


@pytest.mark.django_db
def test_bulk_created_json_documents_are_stored_exactly():
    number = BusinessNumberFactory()
    payloads = [{"body": value, "nested": {"quote": '"', "backslash": "\\"}} for value in TRICKY if value is not None]
    Event.objects.bulk_create([Event(number=number, type="message.created", payload=p) for p in payloads])
    assert [e.payload for e in Event.objects.order_by("pk")] == payloads


# --- the ``any`` lookup ------------------------------------------------------------------------------------


@pytest.fixture
def conversations():
    return [ConversationFactory() for _ in range(4)]


@pytest.mark.django_db
def test_any_finds_what_in_finds(conversations):
    wanted = [conversations[2].contact.wa_id, conversations[0].contact.wa_id, "nobody", None]
    assert (
        set(Contact.objects.filter(wa_id__any=wanted))
        == set(Contact.objects.filter(wa_id__in=wanted))
        == {conversations[2].contact, conversations[0].contact}
    )
    # On a foreign key, with ids or objects, and on the primary key.
    ids = {conversations[1].contact_id, conversations[3].contact_id}
    assert set(Conversation.objects.filter(contact_id__any=ids)) == {conversations[1], conversations[3]}
    assert set(Conversation.objects.filter(contact__any=[conversations[1].contact])) == {conversations[1]}
    assert Conversation.objects.filter(pk__any=[conversations[0].pk]).get() == conversations[0]


@pytest.mark.django_db
def test_any_of_nothing_matches_nothing_and_leaves_the_other_branch_of_an_or(conversations):
    assert not Contact.objects.filter(wa_id__any=[]).exists()
    either = Contact.objects.filter(Q(wa_id__any=[conversations[0].contact.wa_id]) | Q(user_id__any=[]))
    assert list(either) == [conversations[0].contact]


@pytest.mark.django_db
def test_any_of_a_subquery_is_in(conversations):
    inner = Contact.objects.filter(pk=conversations[1].contact_id).values("pk")
    assert Conversation.objects.filter(contact_id__any=inner).get() == conversations[1]


@pytest.mark.django_db
def test_any_is_one_statement_text_whatever_the_number_of_values():
    # The point of it: psycopg splits each new statement text (and keeps only short ones), so the text of a
    # drain's lookups must not grow with the round's size.
    with CaptureQueriesContext(connection) as few:
        list(Message.objects.filter(wamid__any=["wamid.1", "wamid.2"]))
    with CaptureQueriesContext(connection) as many:
        list(Message.objects.filter(wamid__any=[f"wamid.{n}" for n in range(500)]))
    sql = [captured.captured_queries[0]["sql"] for captured in (few, many)]
    assert len(sql[1]) < len(sql[0]) + 500 * 12  # the values come as one array, not 500 placeholders
    assert "= ANY(" in sql[1] and " IN (" not in sql[1]


# --- insert_rows and update_rows -----------------------------------------------------------------------------

# Every field as the database gives it back (what bulk_create would have stored).
STORED = [
    "conversation_id",
    "wamid",
    "direction",
    "type",
    "body",
    "preview",
    "content",
    "context",
    "reply_to_wamid",
    "timestamp",
    "status",
    "status_at",
    "error_code",
    "error_title",
    "sent_by_id",
    "idempotency_key",
    "send_attempts",
    "send_claimed_at",
]


def _messages(conversation, tag: str) -> list[Message]:
    at = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    return [
        Message(
            conversation=conversation,
            wamid=f"wamid.{tag}{n}",
            direction="in",
            type="text",
            body=text or "",
            preview=(text or "")[:10],
            content={"text": {"body": text}, "n": n},
            context={} if n % 2 else {"id": "x"},
            timestamp=at + timedelta(seconds=n),
            status="received",
            error_code=None if n % 2 else 131051,
            error_title="",
            send_attempts=n,
            idempotency_key=uuid.uuid4() if n == 3 else None,
        )
        for n, text in enumerate(value for value in TRICKY if value is not None)
    ]


def _stored(messages: list[Message], tag: str) -> list[dict]:
    """The rows as read back, comparable between two tags (the wamid's and the idempotency key's tag dropped)."""
    rows = [{name: getattr(message, name) for name in STORED} for message in messages]
    for row in rows:
        row["wamid"] = row["wamid"].removeprefix(f"wamid.{tag}")
        row["idempotency_key"] = row["idempotency_key"] is not None
    return rows


@pytest.mark.django_db
def test_insert_rows_stores_what_bulk_create_stores_in_one_statement_and_sets_the_ids():
    conversation = ConversationFactory()
    created = Message.objects.bulk_create(_messages(conversation, "django"))
    rows = _messages(conversation, "ours")
    with CaptureQueriesContext(connection) as captured:
        inserted = insert_rows(objects=rows)
    assert inserted is rows and len(captured) == 1  # one statement, visible to Django's query logging
    assert "UNNEST" in captured.captured_queries[0]["sql"]
    assert all(row.pk and not row._state.adding and row.created_at for row in rows)
    reread = list(Message.objects.filter(pk__in=[row.pk for row in rows]).order_by("pk"))
    assert [(m.pk, m.wamid, m.idempotency_key) for m in reread] == [(r.pk, r.wamid, r.idempotency_key) for r in rows]
    by_django = Message.objects.filter(pk__in=[m.pk for m in created]).order_by("pk")
    assert _stored(reread, "ours") == _stored(by_django, "django")


@pytest.mark.django_db
def test_a_row_that_leaves_a_field_to_its_database_default_is_inserted_by_bulk_create():
    conversation = ConversationFactory()
    rows = _messages(conversation, "dbdefault")[:2]
    rows[1].business_initiated = DatabaseDefault(Value(False))  # for the database to fill, as bulk_create does
    with CaptureQueriesContext(connection) as captured:
        insert_rows(objects=rows)
    assert "UNNEST" not in captured.captured_queries[0]["sql"]
    assert Message.objects.get(pk=rows[1].pk).business_initiated is False


@pytest.mark.django_db
def test_insert_rows_prepares_a_value_of_another_type_as_django_would():
    conversation = ConversationFactory()
    # A lazy translation psycopg cannot send, a choices member, a number in a text column, text in a number's.
    row = Message(
        conversation=conversation,
        wamid="wamid.typed",
        direction=Direction.INBOUND,
        type=gettext_lazy("text"),
        preview=12.5,
        timestamp=datetime(2026, 11, 27, tzinfo=UTC),
        status="received",
        error_code="131051",
    )
    insert_rows(objects=[row])
    stored = Message.objects.get(pk=row.pk)
    assert (stored.direction, stored.type, stored.preview, stored.error_code) == ("in", "text", "12.5", 131051)


@pytest.mark.django_db
def test_insert_rows_takes_a_related_row_saved_after_it_was_assigned_and_refuses_an_unsaved_one():
    existing = ConversationFactory()
    later = Conversation(number=existing.number, contact=ContactFactory(), last_message_at=existing.last_message_at)
    at = datetime(2026, 11, 27, tzinfo=UTC)
    row = Message(conversation=later, wamid="wamid.later", direction="in", type="text", timestamp=at, status="received")
    later.save()  # after the assignment: the row's conversation_id is still None, as in bulk_create's case
    insert_rows(objects=[row])
    assert Message.objects.get(pk=row.pk).conversation_id == later.pk
    unsaved = Conversation(number=existing.number, contact=ContactFactory(), last_message_at=at)
    with pytest.raises(ValueError, match="unsaved related object"):
        insert_rows(
            objects=[
                Message(
                    conversation=unsaved,
                    wamid="wamid.lost",
                    direction="in",
                    type="text",
                    timestamp=at,
                    status="received",
                )
            ]
        )


@pytest.mark.django_db(transaction=True)
def test_insert_rows_raises_djangos_integrity_error_and_skips_conflicts_when_asked():
    conversation = ConversationFactory()
    insert_rows(objects=_messages(conversation, "first")[:1])
    # A drain's savepoint catches django.db's IntegrityError (another worker stored the wamid first).
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(objects=_messages(conversation, "first")[:2])
    assert Message.objects.filter(wamid__startswith="wamid.first").count() == 1
    at = datetime(2026, 11, 27, tzinfo=UTC)
    statuses = [
        MessageStatusEvent(wamid=f"wamid.s{n % 2}", status="delivered", timestamp=at, number=conversation.number)
        for n in range(3)
    ]
    insert_rows(objects=statuses, ignore_conflicts=True)
    assert sorted(MessageStatusEvent.objects.values_list("wamid", flat=True)) == ["wamid.s0", "wamid.s1"]
    assert all(status.received_at for status in statuses)


@pytest.mark.django_db
def test_update_rows_writes_each_rows_own_values():
    conversations = [ConversationFactory() for _ in range(3)]
    at = datetime(2026, 11, 27, 8, tzinfo=UTC)
    for n, conversation in enumerate(conversations):
        conversation.last_message_at = at + timedelta(minutes=n)
        conversation.last_message_preview = TRICKY[n + 1]
        conversation.last_inbound_at = None if n == 1 else at
    with CaptureQueriesContext(connection) as captured:
        update_rows(objects=conversations, fields=["last_message_at", "last_message_preview", "last_inbound_at"])
    assert len(captured) == 1
    for n, conversation in enumerate(conversations):
        conversation.refresh_from_db()
        assert (conversation.last_message_at, conversation.last_message_preview, conversation.last_inbound_at) == (
            at + timedelta(minutes=n),
            TRICKY[n + 1],
            None if n == 1 else at,
        )

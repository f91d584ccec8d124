"""What config.database installs at start-up: the psycopg list dumper (the same arrays, escaped faster) and the
``any`` lookup (IN as one array)."""
import re

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from psycopg.adapt import PyFormat
from psycopg.types import array

from config.database import ListDumper
from contacts.models import Contact
from conversations.models import Conversation, Message
from realtime.models import Event
from tests.factories import BusinessNumberFactory, ConversationFactory

TRICKY = ["plain", 'with "quotes"', "back\\slash", '\\"both\\"', "", "comma, {braces}", "NULL", None, "emoji \U0001f642",
          '{"json": "doc \\"quoted\\" \\\\ here"}']


def test_the_attribute_it_overrides_still_exists_upstream():
    # The override names psycopg's own attribute: an upgrade that renamed it would quietly undo the speed-up.
    assert isinstance(vars(array.ListDumper).get("_re_esc"), re.Pattern)


@pytest.mark.django_db
def test_django_connections_dump_lists_with_it():
    connection.ensure_connection()
    assert connection.connection.adapters.get_dumper(list, PyFormat.TEXT) is ListDumper


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
    assert set(Contact.objects.filter(wa_id__any=wanted)) == set(Contact.objects.filter(wa_id__in=wanted)) == {
        conversations[2].contact, conversations[0].contact}
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

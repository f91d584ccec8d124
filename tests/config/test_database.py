"""The psycopg list dumper installed at start-up (config.database): the same arrays, escaped faster."""
import re

import pytest
from django.db import connection
from psycopg.adapt import PyFormat
from psycopg.types import array

from config.database import ListDumper
from realtime.models import Event
from tests.factories import BusinessNumberFactory

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

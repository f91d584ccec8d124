"""Unread counts come from counters the database keeps (migration 0003): they must match what a COUNT
over the messages would say, whoever writes the messages."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from conversations.models import Conversation, Direction, Message
from conversations.selectors import conversation_list, unread_total
from conversations.services import mark_conversation_read
from conversations.services.contacts import merge_contacts
from tests.factories import ContactFactory, ConversationFactory, MessageFactory, OutboundMessageFactory, UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def counted(conversation: Conversation) -> int:
    conversation.refresh_from_db()
    return conversation.inbound_count


def unread(user, conversation: Conversation) -> int:
    return conversation_list(user=user).get(pk=conversation.pk).unread_count


@pytest.fixture
def reader(number):
    user = UserFactory(username="reader")
    number.members.add(user)
    return user


def test_customer_messages_are_counted_by_the_database_whoever_inserts_them(number):
    conversation = ConversationFactory(number=number)
    MessageFactory(conversation=conversation)
    Message.objects.bulk_create(
        [MessageFactory.build(conversation=conversation, wamid=f"wamid.BULK{n}") for n in range(5)]
    )
    OutboundMessageFactory(conversation=conversation)  # ours: never unread
    with connection.cursor() as cursor:  # even SQL the ORM never saw
        cursor.execute(
            "INSERT INTO conversations_message (conversation_id, wamid, direction, type, body, preview, content, context,"
            " reply_to_wamid, timestamp, status, error_title, send_attempts, created_at)"
            " VALUES (%s, 'wamid.RAW', 'in', 'text', '', '', '{}', '{}', '', now(), 'received', '', 0, now())",
            [conversation.pk],
        )
    assert counted(conversation) == 7
    Message.objects.filter(wamid__in=["wamid.BULK0", "wamid.BULK1"]).delete()
    assert counted(conversation) == 5


def test_unread_is_what_arrived_since_the_reader_last_read(number, reader):
    conversation = ConversationFactory(number=number)
    MessageFactory.create_batch(3, conversation=conversation)
    assert unread(reader, conversation) == 3 and unread_total(user=reader) == 3
    mark_conversation_read(user=reader, conversation=conversation)
    assert unread(reader, conversation) == 0 and unread_total(user=reader) == 0
    MessageFactory.create_batch(2, conversation=conversation)
    OutboundMessageFactory(conversation=conversation)
    assert unread(reader, conversation) == 2 and unread_total(user=reader) == 2
    assert conversation_list(user=reader, unread_only=True).count() == 1


def test_counts_are_per_reader(number, reader):
    colleague = UserFactory(username="colleague")
    number.members.add(colleague)
    conversation = ConversationFactory(number=number)
    MessageFactory.create_batch(4, conversation=conversation)
    mark_conversation_read(user=reader, conversation=conversation)
    assert (unread(reader, conversation), unread(colleague, conversation)) == (0, 4)
    assert (unread_total(user=reader), unread_total(user=colleague)) == (0, 4)


def test_the_total_spans_every_visible_conversation_and_no_other(number, reader):
    from tests.factories import BusinessNumberFactory

    for count in (1, 2, 3):
        MessageFactory.create_batch(count, conversation=ConversationFactory(number=number))
    MessageFactory.create_batch(9, conversation=ConversationFactory(number=BusinessNumberFactory()))  # not the reader's
    assert unread_total(user=reader) == 6


def test_a_merge_moves_the_counts_and_keeps_what_each_reader_had_read(number, reader):
    kept = ConversationFactory(number=number, contact=ContactFactory(wa_id="447700900461"))
    duplicate = ConversationFactory(number=number, contact=ContactFactory(wa_id=None, user_id="GB.1"))
    MessageFactory.create_batch(2, conversation=kept)
    mark_conversation_read(user=reader, conversation=kept)
    MessageFactory.create_batch(3, conversation=duplicate)  # newer ids than the reader's last read
    MessageFactory(conversation=kept)
    merge_contacts(keep=kept.contact, duplicate=duplicate.contact)
    assert counted(kept) == 6
    assert not Conversation.objects.filter(pk=duplicate.pk).exists()
    assert unread(reader, kept) == 4  # the duplicate's three and the new one: all newer than the read
    assert Message.objects.filter(conversation=kept, direction=Direction.INBOUND).count() == 6


def test_the_counters_work_in_the_embedded_mode_too(tmp_path):
    """`make run` without PostgreSQL: SQLite's triggers keep the same counter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.base", DJANGO_READ_DOT_ENV_FILE="0", PYTHONPATH=str(ROOT))
    db = tmp_path / "embedded.sqlite3"
    code = f"""
import django
from django.conf import settings
settings.DATABASES["default"]["NAME"] = {str(db)!r}
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from tests.factories import ConversationFactory, MessageFactory, OutboundMessageFactory
conversation = ConversationFactory()
MessageFactory.create_batch(3, conversation=conversation)
OutboundMessageFactory(conversation=conversation)
conversation.messages.filter(direction="in").first().delete()
conversation.refresh_from_db()
print("inbound_count", conversation.inbound_count)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "inbound_count 2" in result.stdout

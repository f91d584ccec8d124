"""Per-conversation count of customer messages, kept by the database, and per-reader snapshots of it.

Unread counts used to be a COUNT over the messages table per conversation; the inbox's tab-title total
summed that over every conversation a user may see (95% of the inbox page's time with a million
messages). Triggers keep ``inbound_count`` exact whoever writes messages (the services, bulk loads,
merges, the admin); PostgreSQL's INSERT and DELETE triggers are per statement (one grouped UPDATE for a
bulk INSERT), the rest per row. Messages never change direction, so only their conversation is watched.
The embedded mode's SQLite gets its triggers from conversations/sqlite_triggers.py, after every migrate.
"""

from django.db import migrations, models

POSTGRES_FORWARD = """
CREATE FUNCTION conversations_inbound_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations_conversation AS c SET inbound_count = c.inbound_count + added.n
    FROM (SELECT conversation_id, count(*) AS n FROM new_messages WHERE direction = 'in' GROUP BY conversation_id) AS added
    WHERE c.id = added.conversation_id;
    RETURN NULL;
END $$;
CREATE FUNCTION conversations_inbound_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations_conversation AS c SET inbound_count = c.inbound_count - removed.n
    FROM (SELECT conversation_id, count(*) AS n FROM old_messages WHERE direction = 'in' GROUP BY conversation_id) AS removed
    WHERE c.id = removed.conversation_id;
    RETURN NULL;
END $$;
CREATE FUNCTION conversations_inbound_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations_conversation SET inbound_count = inbound_count - 1 WHERE id = OLD.conversation_id;
    UPDATE conversations_conversation SET inbound_count = inbound_count + 1 WHERE id = NEW.conversation_id;
    RETURN NULL;
END $$;
CREATE TRIGGER message_inbound_added AFTER INSERT ON conversations_message
    REFERENCING NEW TABLE AS new_messages FOR EACH STATEMENT EXECUTE FUNCTION conversations_inbound_added();
CREATE TRIGGER message_inbound_removed AFTER DELETE ON conversations_message
    REFERENCING OLD TABLE AS old_messages FOR EACH STATEMENT EXECUTE FUNCTION conversations_inbound_removed();
-- Per row, and only when the conversation changes (merges): PostgreSQL allows no transition tables on a
-- column-restricted trigger, and status updates, the commonest UPDATE, must not pay for this one.
CREATE TRIGGER message_inbound_moved AFTER UPDATE OF conversation_id ON conversations_message FOR EACH ROW
    WHEN (OLD.direction = 'in' AND OLD.conversation_id IS DISTINCT FROM NEW.conversation_id)
    EXECUTE FUNCTION conversations_inbound_moved();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS message_inbound_added ON conversations_message;
DROP TRIGGER IF EXISTS message_inbound_removed ON conversations_message;
DROP TRIGGER IF EXISTS message_inbound_moved ON conversations_message;
DROP FUNCTION IF EXISTS conversations_inbound_added();
DROP FUNCTION IF EXISTS conversations_inbound_removed();
DROP FUNCTION IF EXISTS conversations_inbound_moved();
"""

# Existing data: each conversation's customer messages, and what each reader had read of them.
BACKFILL = [
    """UPDATE conversations_conversation SET inbound_count = (
        SELECT count(*) FROM conversations_message m WHERE m.conversation_id = conversations_conversation.id AND m.direction = 'in')""",
    """UPDATE conversations_readstate SET read_inbound_count = (
        SELECT count(*) FROM conversations_message m WHERE m.conversation_id = conversations_readstate.conversation_id
        AND m.direction = 'in' AND m.id <= conversations_readstate.last_read_message_id)""",
]


def install_triggers(apps, schema_editor):
    for statement in BACKFILL:
        schema_editor.execute(statement)
    # SQLite's triggers are created after every migrate instead (conversations/sqlite_triggers.py).
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD)


def remove_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0001_initial"),
        ("conversations", "0002_outbound_templates_media"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="inbound_count",
            field=models.BigIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddField(
            model_name="readstate",
            name="read_inbound_count",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.RunPython(install_triggers, remove_triggers),
        migrations.AddConstraint(
            model_name="conversation",
            constraint=models.CheckConstraint(
                condition=models.Q(("inbound_count__gte", 0)), name="conversation_inbound_count_not_negative"
            ),
        ),
    ]

"""The embedded mode's (SQLite's) version of the inbound counters that migration 0003 installs in
PostgreSQL: ``Conversation.inbound_count`` kept by triggers on the messages table.

SQLite cannot alter a table in place; Django rebuilds it (copy, drop, rename), and a trigger that names
a dropped table breaks that rename. So these triggers are dropped before every ``migrate`` and created
again after it, counts re-synced, by the signal handlers that ``ConversationsConfig.ready`` connects.
"""

TRIGGERS = {
    "message_inbound_added": """CREATE TRIGGER IF NOT EXISTS message_inbound_added AFTER INSERT ON conversations_message
        WHEN NEW.direction = 'in'
        BEGIN UPDATE conversations_conversation SET inbound_count = inbound_count + 1 WHERE id = NEW.conversation_id; END""",
    "message_inbound_removed": """CREATE TRIGGER IF NOT EXISTS message_inbound_removed AFTER DELETE ON conversations_message
        WHEN OLD.direction = 'in'
        BEGIN UPDATE conversations_conversation SET inbound_count = inbound_count - 1 WHERE id = OLD.conversation_id; END""",
    "message_inbound_moved": """CREATE TRIGGER IF NOT EXISTS message_inbound_moved AFTER UPDATE OF conversation_id ON conversations_message
        WHEN OLD.direction = 'in' AND OLD.conversation_id <> NEW.conversation_id
        BEGIN
            UPDATE conversations_conversation SET inbound_count = inbound_count - 1 WHERE id = OLD.conversation_id;
            UPDATE conversations_conversation SET inbound_count = inbound_count + 1 WHERE id = NEW.conversation_id;
        END""",
}

RESYNC = """UPDATE conversations_conversation SET inbound_count = (
    SELECT count(*) FROM conversations_message m WHERE m.conversation_id = conversations_conversation.id AND m.direction = 'in')"""


def _is_sqlite_with_counters(connection) -> bool:
    """SQLite, migrated at least up to the counters (a migrate to an earlier state has no column)."""
    if connection.vendor != "sqlite" or "conversations_conversation" not in connection.introspection.table_names():
        return False
    with connection.cursor() as cursor:
        columns = connection.introspection.get_table_description(cursor, "conversations_conversation")
    return any(column.name == "inbound_count" for column in columns)


def drop_triggers(*, using: str = "default", **kwargs) -> None:
    from django.db import connections

    connection = connections[using]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for name in TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


def create_triggers(*, using: str = "default", **kwargs) -> None:
    from django.db import connections

    connection = connections[using]
    if not _is_sqlite_with_counters(connection):
        return
    with connection.cursor() as cursor:
        for statement in TRIGGERS.values():
            cursor.execute(statement)
        cursor.execute(RESYNC)

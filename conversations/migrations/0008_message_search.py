"""The index behind the inbox's message search: PostgreSQL full-text search over a message's words.

``to_tsvector('simple', body)``: the ``simple`` configuration lowercases and splits words without stemming
or stop words, because customers write in every language and a number's team may read several; a query
must use the very same expression for the planner to take the index. Built ``CONCURRENTLY`` (outside a
transaction) so the drains go on inserting messages while the table is scanned. The embedded SQLite mode has
no such index and searches more simply. The model does not declare it: Django's ``GinIndex`` would be
created on SQLite too.
"""

from django.db import migrations

from database.operations import RunSQLOnPostgreSQL

CREATE = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS message_body_search "
    "ON conversations_message USING gin (to_tsvector('simple', body))"
)
DROP = "DROP INDEX CONCURRENTLY IF EXISTS message_body_search"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0007_labels_canned_replies"),
    ]

    operations = [RunSQLOnPostgreSQL(CREATE, DROP, elidable=False)]

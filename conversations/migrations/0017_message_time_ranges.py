"""A BRIN index on a message's time, for a search's first page (``conversations.search``).

BRIN keeps each range of table pages' earliest and latest time: a few kilobytes for millions of messages, next to
nothing per insert, and since messages are appended about in time order, the recent ones sit in the last ranges.
It lets a search read only the recent messages holding its words, yet it cannot hand the planner rows in time
order, so the whole search keeps its plan (the full-text index, then a sort). PostgreSQL only, built
``CONCURRENTLY``, as ``message_body_search`` is; the model does not declare it for the same reason.
"""

from django.db import migrations

from database.operations import RunSQLOnPostgreSQL

CREATE = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS message_time_ranges "
    'ON conversations_message USING brin ("timestamp") WITH (autosummarize = on)'
)
DROP = "DROP INDEX CONCURRENTLY IF EXISTS message_time_ranges"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0016_account_review"),
    ]

    operations = [RunSQLOnPostgreSQL(CREATE, DROP, elidable=False)]

"""Drop the single-column indexes Django made for two foreign keys: composite indexes lead with the same
column (conversation_one_per_number_contact and conversation_activity; message_thread_order and
message_unread_scan), and every index costs each inserted message and each conversation update.

Only the indexes go. A plain AlterField would also drop and re-add the foreign keys, and re-adding one
checks every row of the messages table while holding off writes; the constraints are unchanged here.
"""

import django.db.models.deletion
from django.db import migrations, models

REDUNDANT = [
    # (index, table, column), as Django named them in 0001 on PostgreSQL and SQLite alike.
    ("conversations_conversation_number_id_cecfdedf", "conversations_conversation", "number_id"),
    ("conversations_message_conversation_id_f1a2d5e9", "conversations_message", "conversation_id"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0003_inbound_counters"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="conversation",
                    name="number",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="conversations",
                        to="conversations.businessnumber",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="conversation",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="conversations.conversation",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" ("{column}")',
                )
                for index, table, column in REDUNDANT
            ],
        ),
    ]

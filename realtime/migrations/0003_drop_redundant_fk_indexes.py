"""Drop the index Django made for ``Event.number``: realtime_event_resume (number, id) leads with the same
column, and the event log takes two rows per customer message. Only the index goes (see
conversations 0004: a plain AlterField would drop and re-validate the foreign key)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("realtime", "0002_event_user"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="number",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="conversations.businessnumber",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='DROP INDEX IF EXISTS "realtime_event_number_id_503bcb38"',
                    reverse_sql='CREATE INDEX IF NOT EXISTS "realtime_event_number_id_503bcb38" ON "realtime_event" ("number_id")',
                ),
            ],
        ),
    ]

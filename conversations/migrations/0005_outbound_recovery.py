"""What the outbound sweep needs to find work whose task was lost (Redis down when it was enqueued, a retry
that never came back): when a send was last attempted, the read receipt a conversation still owes, the
``unconfirmed`` status of a send whose answer was lost, and three partial indexes over the few such rows.

The new columns are nullable (no table rewrite), and ``status`` only grows from varchar(10) to varchar(12)
(PostgreSQL changes no row for that). The indexes are built ``CONCURRENTLY`` on PostgreSQL, outside a
transaction, so inserts of messages and status updates go on while the messages table is scanned.
"""

from django.db import migrations, models

from database.operations import AddIndexWithoutBlockingWrites


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0004_drop_redundant_fk_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="read_receipt_message_id",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="conversation",
            name="read_receipt_requested_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="send_attempted_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="message",
            name="status",
            field=models.CharField(
                choices=[
                    ("received", "Received"),
                    ("pending", "Pending"),
                    ("unconfirmed", "Not confirmed by Meta"),
                    ("sent", "Sent"),
                    ("failed", "Failed"),
                    ("delivered", "Delivered"),
                    ("read", "Read"),
                    ("played", "Played"),
                ],
                max_length=12,
            ),
        ),
        AddIndexWithoutBlockingWrites(
            model_name="conversation",
            index=models.Index(
                condition=models.Q(("read_receipt_message_id__isnull", False)),
                fields=["read_receipt_requested_at"],
                name="conversation_receipt_owed",
            ),
        ),
        AddIndexWithoutBlockingWrites(
            model_name="mediafile",
            index=models.Index(condition=models.Q(("state", "pending")), fields=["updated_at"], name="media_pending"),
        ),
        AddIndexWithoutBlockingWrites(
            model_name="message",
            index=models.Index(
                condition=models.Q(("wamid__isnull", True)), fields=["created_at"], name="message_awaiting_wamid"
            ),
        ),
    ]

"""When a send's retry is due (``Message.send_retry_due_at``). Sends already waiting for one get the longest wait a
retry had, as the outbound sweep counted before."""

from datetime import timedelta

from django.db import migrations, models
from django.db.models import F

LONGEST_RETRY_WAIT = timedelta(seconds=300)


def due_for_waiting_sends(apps, schema_editor):
    Message = apps.get_model("conversations", "Message")
    Message.objects.filter(
        direction="out",
        status="pending",
        wamid__isnull=True,
        send_claimed_at__isnull=True,
        send_attempted_at__isnull=False,
    ).update(send_retry_due_at=F("send_attempted_at") + LONGEST_RETRY_WAIT)


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0019_conversation_recent"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="send_retry_due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(due_for_waiting_sends, migrations.RunPython.noop, elidable=True),
    ]

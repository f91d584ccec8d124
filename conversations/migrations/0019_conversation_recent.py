"""Conversations by their last activity across numbers (``Conversation.Meta.indexes``), built without blocking
the webhooks' writes to the table."""

from django.db import migrations, models

from database.operations import AddIndexWithoutBlockingWrites


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0018_security_notices"),
    ]

    operations = [
        AddIndexWithoutBlockingWrites(
            model_name="conversation",
            index=models.Index(fields=["-last_message_at", "-id"], name="conversation_recent"),
        ),
    ]

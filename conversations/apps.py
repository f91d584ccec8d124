from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "Conversations"

    def ready(self):
        from conversations import signals, sqlite_triggers  # noqa: F401 (signals connects its receivers)

        # SQLite only (the embedded mode): see conversations/sqlite_triggers.py.
        pre_migrate.connect(
            sqlite_triggers.drop_triggers, sender=self, dispatch_uid="conversations-sqlite-triggers-drop"
        )
        post_migrate.connect(
            sqlite_triggers.create_triggers, sender=self, dispatch_uid="conversations-sqlite-triggers-create"
        )

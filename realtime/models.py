"""The realtime event log: every event pushed to the inbox is first written here, in the same
transaction as the change it describes, so a client that reconnects can ask for what it missed."""

from django.conf import settings
from django.db import models


class Event(models.Model):
    # The id is the event's sequence number; clients resume from the last id they applied.
    # No index of its own: realtime_event_resume (number, id) leads with it.
    number = models.ForeignKey(
        "conversations.BusinessNumber", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # Set for events meant for one staff member only (their read state across tabs).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["number", "id"], name="realtime_event_resume")]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"


class SocketPresence(models.Model):
    """One open inbox socket, refreshed by the socket while it stays open: a user is online while one of their
    sockets was seen within ``PRESENCE_TTL_SECONDS``. A socket that closes deletes its row; one whose Daphne died
    stops refreshing it and counts no more once it is that old (the snooze sweep deletes such rows)."""

    channel_name = models.CharField(max_length=200, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    seen_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["user", "seen_at"], name="presence_user_seen")]

    def __str__(self) -> str:
        return f"user {self.user_id} on {self.channel_name}"

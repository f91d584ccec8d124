"""Notifications: what one staff member should look at (someone mentioned them in a note), listed in their inbox
until they read it. Each new one is a ``notification.created`` event to its recipient alone, logged under the
conversation's number, so a socket replays it only while its user may see that number; reading some is a
``notification.read`` event, for the recipient's other tabs."""

from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from conversations.models import Conversation, ConversationNote, Notification, NotificationKind
from conversations.selectors import notifications_for, unread_notification_count
from conversations.services.errors import WorkflowRefused
from conversations.snapshots import notification_snapshot
from realtime import events
from realtime.publish import publish_events


def notify_mentioned(*, note: ConversationNote, conversation: Conversation, recipients: list) -> list[Notification]:
    """A ``mention`` notification of the note for each recipient (members of the conversation's number), and its
    event to them. ``conversation`` has ``contact`` loaded."""
    made = Notification.objects.bulk_create(
        [
            Notification(
                recipient=recipient,
                kind=NotificationKind.MENTION,
                conversation=conversation,
                note=note,
                actor=note.author,
                created_at=note.created_at,
            )
            for recipient in recipients
        ]
    )
    for notification in made:
        # What the snapshot reads, already in hand: no query per recipient for it.
        notification.conversation, notification.note = conversation, note
        payload = {
            "notification": notification_snapshot(notification),
            "unread_count": unread_notification_count(user=notification.recipient),
        }
        publish_events(
            number_id=conversation.number_id,
            events=[(events.NOTIFICATION_CREATED, payload)],
            user_id=notification.recipient_id,
        )
    return made


def _publish_read(*, user, read: list[tuple[int, int]]) -> None:
    """Tell the user's tabs which notifications (``(id, number id)`` pairs) are read now."""
    unread = unread_notification_count(user=user)
    by_number: dict[int, list[int]] = {}
    for notification_id, number_id in read:
        by_number.setdefault(number_id, []).append(notification_id)
    for number_id, ids in by_number.items():
        payload = {"ids": sorted(ids), "unread_count": unread}
        publish_events(number_id=number_id, events=[(events.NOTIFICATIONS_READ, payload)], user_id=user.pk)


@transaction.atomic
def mark_notification_read(*, user, notification_id: int) -> Notification:
    """Mark one of the user's notifications read (again: no change); one that is not theirs, or of a number they no
    longer see, is a 404 ``unknown_notification``."""
    notification = notifications_for(user=user).select_for_update(of=("self",)).filter(pk=notification_id).first()
    if notification is None:
        raise WorkflowRefused("unknown_notification", "No such notification.", status=404)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
        number_id = notification.alert.number_id if notification.alert_id else notification.conversation.number_id
        _publish_read(user=user, read=[(notification.pk, number_id)])
    return notification


@transaction.atomic
def mark_all_notifications_read(*, user) -> int:
    """Mark every unread notification the user sees read; how many were unread."""
    unread = list(
        notifications_for(user=user)
        .filter(read_at__isnull=True)
        .values_list("pk", Coalesce("conversation__number_id", "alert__number_id"))
    )
    if not unread:
        return 0
    Notification.objects.filter(pk__in=[pk for pk, _ in unread], read_at__isnull=True).update(read_at=timezone.now())
    _publish_read(user=user, read=unread)
    return len(unread)

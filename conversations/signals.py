"""The domain's own receivers: whoever stops being a member of a number, however (the admin's member rows,
``members.remove``, the shell), has none of its conversations any more."""

from django.db.models import QuerySet
from django.db.models.signals import post_delete
from django.dispatch import receiver

from conversations.models import NumberMembership
from conversations.services.workflow import release_member_conversations


@receiver(post_delete, sender=NumberMembership, dispatch_uid="conversations.membership_ended")
def _membership_ended(sender, instance, origin=None, **kwargs) -> None:
    # Only a membership deleted for itself: a deleted user's conversations lose their assignee by the foreign
    # key (SET_NULL), and a deleted number's conversations go with it (no activity may be added to them then).
    ended_itself = isinstance(origin, NumberMembership) or (
        isinstance(origin, QuerySet) and origin.model is NumberMembership
    )
    if ended_itself:
        release_member_conversations(number_id=instance.number_id, user_id=instance.user_id)

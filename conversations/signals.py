"""The domain's own receivers: whoever stops being a member of a number, however (the admin's member rows,
``members.remove``, the shell), or whose account is deactivated, has none of its conversations any more."""

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from conversations.models import NumberMembership
from conversations.services.workflow import release_deactivated_user_conversations, release_member_conversations

User = get_user_model()


@receiver(post_delete, sender=NumberMembership, dispatch_uid="conversations.membership_ended")
def _membership_ended(sender, instance, origin=None, **kwargs) -> None:
    # Only a membership deleted for itself: a deleted user's conversations lose their assignee by the foreign
    # key (SET_NULL), and a deleted number's conversations go with it (no activity may be added to them then).
    ended_itself = isinstance(origin, NumberMembership) or (
        isinstance(origin, QuerySet) and origin.model is NumberMembership
    )
    if ended_itself:
        release_member_conversations(number_id=instance.number_id, user_id=instance.user_id)


@receiver(pre_save, sender=User, dispatch_uid="conversations.user_deactivating")
def _remember_active(sender, instance, **kwargs) -> None:
    # Read only when saving an inactive account: most saves (logins, profile edits) cost no query.
    instance._deactivated_now = bool(
        instance.pk and not instance.is_active and User.objects.filter(pk=instance.pk, is_active=True).exists()
    )


@receiver(post_save, sender=User, dispatch_uid="conversations.user_deactivated")
def _user_deactivated(sender, instance, created, **kwargs) -> None:
    if getattr(instance, "_deactivated_now", False):
        release_deactivated_user_conversations(user_id=instance.pk)

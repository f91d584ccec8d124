"""Receivers that tell open inbox sockets when what their user may see changes, wherever the change is made
(Django admin, ``register_number --member``, the shell): a number's members, a user's superuser status, a user
deactivated or deleted, a new password. Without them a socket kept the access it had when it opened, so a member removed from a number kept
receiving its customers' messages until the page was reloaded."""

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from conversations.models import BusinessNumber, NumberMembership
from realtime.publish import notify_access_changed

User = get_user_model()


@receiver(m2m_changed, sender=BusinessNumber.members.through, dispatch_uid="realtime.members_changed")
def _members_added(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    # ``members.add`` inserts its rows in bulk, with no post_save; removals and clears delete the rows one by
    # one, and post_delete below hears each.
    if action != "post_add":
        return
    notify_access_changed(user_ids=[instance.pk] if reverse else pk_set or ())


@receiver(post_save, sender=NumberMembership, dispatch_uid="realtime.membership_saved")
def _membership_created(sender, instance, created, **kwargs) -> None:
    if created:  # the admin's member rows, a membership made directly; a new role or limit changes no access
        notify_access_changed(user_ids=[instance.user_id])


@receiver(post_delete, sender=NumberMembership, dispatch_uid="realtime.membership_deleted")
def _membership_deleted(sender, instance, **kwargs) -> None:
    notify_access_changed(user_ids=[instance.user_id])


# A new password ends what was signed in with the old one: the consumer closes those sockets (4401).
_ACCESS_FIELDS = ("is_active", "is_superuser", "password")


@receiver(pre_save, sender=User, dispatch_uid="realtime.user_access_before")
def _remember_access(sender, instance, update_fields=None, **kwargs) -> None:
    # Logins save last_login only; every other save of an existing user reads its stored flags once.
    if instance.pk is None or (update_fields is not None and not set(update_fields) & set(_ACCESS_FIELDS)):
        instance._access_before = None
        return
    instance._access_before = User.objects.filter(pk=instance.pk).values_list(*_ACCESS_FIELDS).first()


@receiver(post_save, sender=User, dispatch_uid="realtime.user_access_changed")
def _user_access_changed(sender, instance, created, **kwargs) -> None:
    before = getattr(instance, "_access_before", None)
    if not created and before is not None and before != tuple(getattr(instance, name) for name in _ACCESS_FIELDS):
        notify_access_changed(user_ids=[instance.pk])


@receiver(post_delete, sender=User, dispatch_uid="realtime.user_deleted")
def _user_deleted(sender, instance, **kwargs) -> None:
    # The memberships go with the user by cascade (each heard by post_delete too, which is harmless).
    notify_access_changed(user_ids=[instance.pk])

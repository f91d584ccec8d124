"""Writes to contacts: resolving WhatsApp senders to one contact row each, and Meta's identity changes.
Staff's changes to contacts (renames, merges) are bound by the numbers they may see and move conversations:
``conversations.services.contacts``."""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q

from contacts.models import Contact
from contacts.phones import e164_from_wa_id


class ContactIdentityConflict(Exception):
    """Meta's identity change names an id that another contact already holds."""


@dataclass(frozen=True)
class Sender:
    """Who sent a message, as a webhook names them: the ids and the profile to keep current."""

    wa_id: str | None
    user_id: str | None
    profile_name: str = ""
    username: str = ""


def resolve_contacts(*, senders: list[Sender]) -> list[Contact]:
    """The one contact of each WhatsApp user, in order, created if new, its ids and profile kept current: one
    SELECT for every id; only new senders and changed profiles cost more. The same person twice gets the same
    object.

    Race-safe without locks: two workers creating the same contact meet the unique constraints on
    wa_id/user_id; the loser's insert is rolled back to its savepoint and it reads the winner's row.
    """
    for sender in senders:
        if not sender.wa_id and not sender.user_id:
            raise ValueError("a contact needs a wa_id or a user_id")
    wa_ids = {s.wa_id for s in senders if s.wa_id}
    user_ids = {s.user_id for s in senders if s.user_id}
    by_wa_id: dict[str, Contact] = {}
    by_user_id: dict[str, Contact] = {}

    def remember(contact: Contact) -> None:
        if contact.wa_id:
            by_wa_id.setdefault(contact.wa_id, contact)
        if contact.user_id:
            by_user_id.setdefault(contact.user_id, contact)

    for contact in Contact.objects.filter(Q(wa_id__any=wa_ids) | Q(user_id__any=user_ids)).order_by("pk"):
        remember(contact)
    resolved = []
    for sender in senders:
        # The BSUID is the stronger key, as in _find_contact.
        contact = (by_user_id.get(sender.user_id) if sender.user_id else None) or (
            by_wa_id.get(sender.wa_id) if sender.wa_id else None
        )
        if contact is None:
            contact = _create_contact(sender)
        else:
            _refresh_contact(contact=contact, sender=sender)
        remember(contact)
        resolved.append(contact)
    return resolved


def _create_contact(sender: Sender) -> Contact:
    """A new contact for a sender no contact had; the one another worker created meanwhile if it won."""
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return Contact.objects.create(
                    wa_id=sender.wa_id,
                    user_id=sender.user_id,
                    phone=e164_from_wa_id(sender.wa_id),
                    profile_name=sender.profile_name,
                    username=sender.username,
                )
        except IntegrityError:
            winner = _find_contact(wa_id=sender.wa_id, user_id=sender.user_id)
            if winner is not None:
                _refresh_contact(contact=winner, sender=sender)
                return winner
    raise IntegrityError(f"could not resolve contact wa_id={sender.wa_id} user_id={sender.user_id}")


def _find_contact(*, wa_id: str | None, user_id: str | None) -> Contact | None:
    matches = list(
        Contact.objects.filter(
            (Q(user_id=user_id) if user_id else Q(pk__in=[])) | (Q(wa_id=wa_id) if wa_id else Q(pk__in=[]))
        )
    )
    # The BSUID is the stronger key: it follows the user across username-only conversations.
    for contact in matches:
        if user_id and contact.user_id == user_id:
            return contact
    return matches[0] if matches else None


def _refresh_contact(*, contact: Contact, sender: Sender) -> None:
    changes: dict[str, object] = {}
    if sender.wa_id and contact.wa_id != sender.wa_id and contact.wa_id is None:
        changes.update(wa_id=sender.wa_id, phone=e164_from_wa_id(sender.wa_id))
    if sender.user_id and contact.user_id != sender.user_id and contact.wa_id == sender.wa_id:
        # Same phone, new BSUID: Meta regenerated it (docs/meta.md §9).
        changes["user_id"] = sender.user_id
    if sender.profile_name and contact.profile_name != sender.profile_name:
        changes["profile_name"] = sender.profile_name
    if sender.username and contact.username != sender.username:
        changes["username"] = sender.username
    if not changes:
        return
    try:
        with transaction.atomic():
            Contact.objects.filter(pk=contact.pk).update(**changes)
    except IntegrityError:
        # Another row already holds that id (a concurrent create); keep this contact as it was.
        return
    for name, value in changes.items():
        setattr(contact, name, value)


def change_contact_identity(*, contact: Contact, new_wa_id: str | None, new_user_id: str | None) -> Contact:
    """Apply Meta's ``user_changed_number`` / ``user_changed_user_id``: same person, new ids."""
    changes: dict[str, object] = {}
    if new_wa_id and new_wa_id != contact.wa_id:
        changes.update(wa_id=new_wa_id, phone=e164_from_wa_id(new_wa_id))
    if new_user_id and new_user_id != contact.user_id:
        changes["user_id"] = new_user_id
    if not changes:
        return contact
    try:
        with transaction.atomic():
            Contact.objects.filter(pk=contact.pk).update(**changes)
    except IntegrityError as exc:
        raise ContactIdentityConflict(f"another contact already has {changes}") from exc
    for name, value in changes.items():
        setattr(contact, name, value)
    return contact

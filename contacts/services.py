"""Writes to contacts: resolving a WhatsApp sender to one contact row, renames, identity changes."""
from django.db import IntegrityError, transaction
from django.db.models import Q

from contacts.models import Contact
from contacts.phones import e164_from_wa_id


class ContactIdentityConflict(Exception):
    """Meta's identity change names an id that another contact already holds."""


def resolve_contact(*, wa_id: str | None, user_id: str | None, profile_name: str = "", username: str = "") -> Contact:
    """The one contact for this WhatsApp user, created if new, its ids and profile kept current.

    Race-safe without locks: two workers creating the same contact meet the unique constraints on
    wa_id/user_id; the loser's insert is rolled back to its savepoint and it reads the winner's row.
    """
    if not wa_id and not user_id:
        raise ValueError("a contact needs a wa_id or a user_id")
    for _attempt in range(3):
        contact = _find_contact(wa_id=wa_id, user_id=user_id)
        if contact is None:
            try:
                with transaction.atomic():
                    return Contact.objects.create(
                        wa_id=wa_id,
                        user_id=user_id,
                        phone=e164_from_wa_id(wa_id),
                        profile_name=profile_name,
                        username=username,
                    )
            except IntegrityError:
                continue
        _refresh_contact(contact=contact, wa_id=wa_id, user_id=user_id, profile_name=profile_name, username=username)
        return contact
    raise IntegrityError(f"could not resolve contact wa_id={wa_id} user_id={user_id}")


def _find_contact(*, wa_id: str | None, user_id: str | None) -> Contact | None:
    matches = list(
        Contact.objects.filter((Q(user_id=user_id) if user_id else Q(pk__in=[])) | (Q(wa_id=wa_id) if wa_id else Q(pk__in=[])))
    )
    # The BSUID is the stronger key: it follows the user across username-only conversations.
    for contact in matches:
        if user_id and contact.user_id == user_id:
            return contact
    return matches[0] if matches else None


def _refresh_contact(*, contact: Contact, wa_id: str | None, user_id: str | None, profile_name: str, username: str) -> None:
    changes: dict[str, object] = {}
    if wa_id and contact.wa_id != wa_id and contact.wa_id is None:
        changes.update(wa_id=wa_id, phone=e164_from_wa_id(wa_id))
    if user_id and contact.user_id != user_id and contact.wa_id == wa_id:
        # Same phone, new BSUID: Meta regenerated it (REFERENCE.md §9).
        changes["user_id"] = user_id
    if profile_name and contact.profile_name != profile_name:
        changes["profile_name"] = profile_name
    if username and contact.username != username:
        changes["username"] = username
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


def rename_contact(*, contact: Contact, name: str) -> Contact:
    """Staff's name for the contact; an empty name goes back to the WhatsApp profile name."""
    contact.custom_name = name.strip()
    contact.save(update_fields=["custom_name", "updated_at"])
    return contact

"""Reads of contacts shared by the API and the admin; who may see a contact is decided here."""
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from contacts.models import Contact


def contact_matches(text: str, *, prefix: str = "") -> Q:
    """Name, username or phone; a phone may be typed in any format ("+44 7700 900461", "07700900461")."""
    # PostgreSQL text cannot hold NUL, so no contact field contains one; PostgreSQL refuses it in a pattern.
    text = text.replace("\x00", "")
    condition = (
        Q(**{f"{prefix}custom_name__icontains": text})
        | Q(**{f"{prefix}profile_name__icontains": text})
        | Q(**{f"{prefix}username__icontains": text})
    )
    # A national number's trunk prefix (0) is not part of the E.164 form we store.
    digits = "".join(ch for ch in text if ch.isdigit()).lstrip("0")
    if len(digits) >= 4:
        condition |= Q(**{f"{prefix}phone__contains": digits}) | Q(**{f"{prefix}wa_id__contains": digits})
    return condition


def visible_contacts(*, user, contacts: QuerySet[Contact] | None = None) -> QuerySet[Contact]:
    """Those of ``contacts`` (default: all) who wrote to, or were written from, a number the user may see;
    superusers see all. The API and the admin list the same people."""
    from conversations.models import Conversation
    from conversations.selectors import visible_numbers

    contacts = Contact.objects.all() if contacts is None else contacts
    if user.is_superuser:
        return contacts
    talks = Conversation.objects.filter(contact=OuterRef("pk"), number__in=visible_numbers(user=user))
    return contacts.filter(Exists(talks))


def contact_list(*, user, search: str = "") -> QuerySet[Contact]:
    """Contacts who wrote to (or were written from) a number the user may see; superusers see all."""
    contacts = visible_contacts(user=user, contacts=Contact.objects.order_by("-updated_at", "-id"))
    if search.strip():
        contacts = contacts.filter(contact_matches(search.strip()))
    return contacts


def contact_for_user(*, user, contact_id: int) -> Contact | None:
    return contact_list(user=user).filter(pk=contact_id).first()


def can_change_contact(*, user, contact: Contact) -> bool:
    """May this user rename the contact or merge it with another? One contact is one person to every number
    it talks to: a new name, or a conversation moved by a merge, changes it for each of those numbers' teams.
    So only someone who may see every number the contact has a conversation on (or a superuser) may."""
    from conversations.models import Conversation
    from conversations.selectors import visible_numbers

    if user.is_superuser:
        return True
    talks = Conversation.objects.filter(contact=contact).aggregate(
        total=Count("pk"), hidden=Count("pk", filter=~Q(number__in=visible_numbers(user=user)))
    )
    return talks["total"] > 0 and talks["hidden"] == 0

"""Reads of contacts shared by the API and the admin; who may see a contact is decided here."""
from django.db.models import Exists, OuterRef, Q, QuerySet

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


def contact_list(*, user, search: str = "") -> QuerySet[Contact]:
    """Contacts who wrote to (or were written from) a number the user may see; superusers see all."""
    from conversations.models import Conversation
    from conversations.selectors import visible_numbers

    contacts = Contact.objects.order_by("-updated_at", "-id")
    if not user.is_superuser:
        talks = Conversation.objects.filter(contact=OuterRef("pk"), number__in=visible_numbers(user=user))
        contacts = contacts.filter(Exists(talks))
    if search.strip():
        contacts = contacts.filter(contact_matches(search.strip()))
    return contacts


def contact_for_user(*, user, contact_id: int) -> Contact | None:
    return contact_list(user=user).filter(pk=contact_id).first()

"""Reads of contacts: finding one by name, username or phone. Who may see a contact depends on the numbers
it talks to, an inbox rule: ``conversations.selectors.visible_contacts``."""

from django.db.models import Q

from contacts.phones import digits_of


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
    digits = digits_of(text).lstrip("0")
    if len(digits) >= 4:
        condition |= Q(**{f"{prefix}phone__contains": digits}) | Q(**{f"{prefix}wa_id__contains": digits})
    return condition

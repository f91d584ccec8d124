"""Phone numbers: their digits, Meta's wa_id to E.164 for display and search (never a gate on accepting a
contact), and which wa_ids WhatsApp keeps side by side for one person."""

import phonenumbers

# str.isdigit() also takes '²' and '①', which no phone number holds and no wa_id carries.
ASCII_DIGITS = frozenset("0123456789")


def digits_of(value: str | None) -> str:
    """The digits of a phone number however it is written: "+44 7700-900461" -> "447700900461"."""
    return "".join(ch for ch in value or "" if ch in ASCII_DIGITS)


def e164_from_wa_id(wa_id: str | None) -> str | None:
    """'+' and the digits, normalised by `phonenumbers` when it can parse them.

    A number `phonenumbers` calls invalid (Mexico's 521…, Brazil's legacy 12-digit mobiles, UK drama
    ranges) is still a real WhatsApp user: Meta's wa_id is the truth, so the digits are kept as they are.
    """
    digits = digits_of(wa_id)
    if not digits:
        return None
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return "+" + digits
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# --- one person, two wa_ids ----------------------------------------------------------------------------
# The variants WhatsApp is known to keep side by side (docs/meta.md §9; community rules, not Meta-documented):
#
# - Brazil (55): mobiles gained a leading 9 (2012-2016). An account registered earlier may have the 12-digit
#   wa_id ``55 DD 8 digits`` while the number is dialled ``55 DD 9 8 digits``. Only mobile subscriber numbers
#   (first digit 6-9) collapse: ``55 DD 3xxx xxxx`` is a landline, a different subscriber than
#   ``55 DD 9 3xxx xxxx``.
# - Mexico (52): WhatsApp ids use ``521`` + 10 digits, the national plan ``52`` + 10 digits since 2019.
# - Argentina's ``549``/``54`` is deliberately NOT merged: a ``54`` number without the 9 may be another
#   subscriber's landline.

BRAZIL_MOBILE_FIRST_DIGITS = "6789"


def same_person_key(digits: str) -> str:
    """The key two wa_ids (or E.164 numbers, digits only) share when they are the same WhatsApp user."""
    if digits.startswith("55") and len(digits) == 13 and digits[4] == "9" and digits[5] in BRAZIL_MOBILE_FIRST_DIGITS:
        return digits[:4] + digits[5:]
    if digits.startswith("521") and len(digits) == 13:
        return "52" + digits[3:]
    return digits

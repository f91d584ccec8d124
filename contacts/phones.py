"""Phone numbers: Meta's wa_id to E.164 for display and search, never a gate on accepting a contact."""
import phonenumbers


def e164_from_wa_id(wa_id: str | None) -> str | None:
    """'+' and the digits, normalised by `phonenumbers` when it can parse them.

    A number `phonenumbers` calls invalid (Mexico's 521…, Brazil's legacy 12-digit mobiles, UK drama
    ranges) is still a real WhatsApp user: Meta's wa_id is the truth, so the digits are kept as they are.
    """
    if not wa_id:
        return None
    digits = "".join(ch for ch in wa_id if ch.isdigit())
    if not digits:
        return None
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return "+" + digits
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

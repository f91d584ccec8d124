"""Phone numbers: their digits however they are typed, the E.164 form of Meta's wa_id, and the one key of the
wa_ids WhatsApp keeps side by side for one person."""

import pytest

from contacts.phones import digits_of, e164_from_wa_id, same_person_key


@pytest.mark.parametrize(
    ("written", "digits"),
    [
        ("+44 7700-900461", "447700900461"),
        ("(0)7700.900 461", "07700900461"),
        ("447700900461", "447700900461"),
        # Characters str.isdigit() takes that are no phone number's digits.
        ("²①٣", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_digits_of_a_number_however_it_is_written(written, digits):
    assert digits_of(written) == digits


def test_a_wa_id_becomes_e164_and_one_phonenumbers_calls_invalid_keeps_its_digits():
    assert e164_from_wa_id("447700900461") == "+447700900461"
    assert e164_from_wa_id("+44 7700 900461") == "+447700900461"
    # Mexico's 521 form is what WhatsApp uses: Meta's wa_id is the truth.
    assert e164_from_wa_id("5215512345678") == "+5215512345678"
    assert e164_from_wa_id("12") == "+12"
    assert e164_from_wa_id("no digits") is None
    assert e164_from_wa_id("") is None
    assert e164_from_wa_id(None) is None


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("5511987654321", "551187654321"),  # Brazil: a mobile with and without its added 9
        ("5215512345678", "525512345678"),  # Mexico: 521 and 52
    ],
)
def test_whatsapps_variants_of_one_number_share_a_key(one, other):
    assert same_person_key(one) == same_person_key(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("5511932345678", "551132345678"),  # Brazil: 9 before a landline's 3 is another subscriber
        ("5491123456789", "541123456789"),  # Argentina: a 54 number without the 9 may be a landline
        ("447700900461", "447700900462"),
    ],
)
def test_other_numbers_keep_their_own_key(one, other):
    assert same_person_key(one) != same_person_key(other)

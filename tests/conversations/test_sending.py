"""The phone number an operator types for ``send_message``: digits or +E.164, formatting tolerated, nothing else."""

import pytest

from conversations.services.sending import wa_id_from_input


@pytest.mark.parametrize("typed", ["+44 7700-900461", "447700900461", "(44) 7700.900.461"])
def test_a_typed_number_becomes_its_wa_id(typed):
    assert wa_id_from_input(typed) == "447700900461"


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("call me", "digits, or"),
        ("+44 7700 9004⁶¹", "digits, or"),  # superscripts pass str.isdigit(); they are no phone number's digits
        ("+", "digits, or"),
        ("+44 770", "7 to 15 digits"),
        ("+44 7700 900461 123456", "7 to 15 digits"),
    ],
)
def test_anything_else_is_refused_with_the_reason(typed, why):
    with pytest.raises(ValueError, match=why):
        wa_id_from_input(typed)

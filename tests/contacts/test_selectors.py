"""Finding contacts by name, username or a phone typed in any format."""

import pytest

from contacts.models import Contact
from contacts.selectors import contact_matches
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def amara():
    return ContactFactory(wa_id="447700900461", phone="+447700900461", profile_name="Amara Okafor", username="amara.o")


@pytest.fixture
def others():
    return [
        ContactFactory(wa_id="5511987650042", phone="+5511987650042", profile_name="Bruno", custom_name="Bruno (VIP)"),
        ContactFactory(wa_id=None, phone=None, user_id="US.13491208655302741918", profile_name="", username="nomad"),
    ]


def found(text: str) -> list[str]:
    return sorted(Contact.objects.filter(contact_matches(text)).values_list("profile_name", flat=True))


@pytest.mark.parametrize(
    "text",
    ["amara", "OKAFOR", "amara.o", "+44 7700 900461", "07700 900461", "(0)7700-900461", "447700900461", "900461"],
)
def test_a_contact_is_found_by_name_username_or_phone_in_any_format(amara, others, text):
    assert found(text) == ["Amara Okafor"]


def test_staffs_name_and_a_username_only_user_are_found(amara, others):
    assert found("vip") == ["Bruno"]
    assert found("nomad") == [""]


def test_fewer_than_four_digits_match_no_phone(amara, others):
    # "+44" would be in every British number.
    assert found("+44") == []
    assert found("77") == []


def test_a_nul_in_the_search_is_ignored(amara, others):
    assert found("Ama\x00ra") == ["Amara Okafor"]

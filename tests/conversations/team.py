"""A number's team for the tests of labels and canned replies, and API clients signed in as one of them."""

from rest_framework.test import APIClient

from conversations.models import MemberRole, NumberMembership
from tests.factories import BusinessNumberFactory, UserFactory


def make_team(number) -> dict:
    """Ana is an agent of the number, Sue its supervisor, Olga a member of another number."""
    made = {name: UserFactory(username=name, first_name=name.capitalize()) for name in ("ana", "sue", "olga")}
    number.members.add(made["ana"])
    NumberMembership.objects.create(number=number, user=made["sue"], role=MemberRole.SUPERVISOR)
    BusinessNumberFactory().members.add(made["olga"])
    return made


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client

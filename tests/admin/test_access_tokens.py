"""A number's Graph API access token is written, never read back: the admin shows only whether one is set and
its last four characters, to whoever looks (a superuser, or staff who may only view numbers), on every page
that could carry it; the API's number list and the change history do not carry it either."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

from conversations.models import BusinessNumber
from tests.factories import BusinessNumberFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "EAAGm0PX4ZCpsBAsecret-token-value-a1b2"


@pytest.fixture
def line():
    return BusinessNumberFactory(name="Sales line", access_token=TOKEN)


@pytest.fixture
def viewer(line):
    """Staff who may view numbers, not change them; a member of the line."""
    user = UserFactory(username="vera")
    user.user_permissions.add(Permission.objects.get(codename="view_businessnumber"))
    line.members.add(user)
    return user


def change_url(number) -> str:
    return reverse("admin:conversations_businessnumber_change", args=[number.pk])


def form_for(number, **changes) -> dict:
    return {
        "phone_number_id": number.phone_number_id,
        "display_phone_number": number.display_phone_number,
        "waba_id": number.waba_id,
        "name": number.name,
        "send_read_receipts": "on",
        "auto_assignment": "off",
        "assign_on_reply": "on",
        # The members' inline, left as it is.
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        **changes,
    }


def test_view_permission_shows_whether_a_token_is_set_not_the_token(client, line, viewer):
    client.force_login(viewer)
    page = client.get(change_url(line)).content.decode()
    assert TOKEN not in page
    assert "set, ends in …a1b2" in page
    assert TOKEN not in client.get(reverse("admin:conversations_businessnumber_changelist")).content.decode()


def test_the_number_list_cannot_be_searched_by_token(client, line, viewer):
    # Otherwise ?access_token__startswith= tells, one character at a time, what the token is.
    client.force_login(viewer)
    listing = reverse("admin:conversations_businessnumber_changelist")
    for prefix in (TOKEN[:4], "nope"):
        assert client.get(listing, {"access_token__startswith": prefix}).status_code == 400, prefix


def test_an_admin_sets_a_token_and_it_is_never_shown_again(client, line):
    client.force_login(UserFactory(username="root", is_superuser=True))
    new_token = "EAAGnewly-rotated-token-value-z9y8"
    assert client.post(change_url(line), form_for(line, new_access_token=new_token)).status_code == 302
    line.refresh_from_db()
    assert line.access_token == new_token

    page = client.get(change_url(line)).content.decode()
    assert new_token not in page and "set, ends in …z9y8" in page
    history = client.get(reverse("admin:conversations_businessnumber_history", args=[line.pk])).content.decode()
    assert new_token not in history and TOKEN not in history
    assert all(new_token not in entry.change_message for entry in LogEntry.objects.all())
    numbers = APIClient()
    numbers.force_authenticate(UserFactory(username="api-root", is_superuser=True))
    assert new_token not in numbers.get("/api/numbers/").content.decode()


def test_saving_without_a_new_token_keeps_the_token_and_the_reauthorisation_flag(client, line):
    BusinessNumber.objects.filter(pk=line.pk).update(needs_reauthorization=True)
    client.force_login(UserFactory(username="root", is_superuser=True))
    form = form_for(line, name="Sales", new_access_token="", needs_reauthorization="on")
    assert client.post(change_url(line), form).status_code == 302
    line.refresh_from_db()
    assert (line.name, line.access_token, line.needs_reauthorization) == ("Sales", TOKEN, True)

    # A new token is what the flag asks for: sending resumes.
    assert client.post(change_url(line), {**form, "new_access_token": "EAAGreplacement-token"}).status_code == 302
    line.refresh_from_db()
    assert (line.access_token, line.needs_reauthorization) == ("EAAGreplacement-token", False)

"""The admin of what Meta says about numbers and accounts: read-only on the number's page, in the change list
and the accounts list, and only for the numbers (and their accounts) one is a member of."""

import pytest
from django.contrib.auth.models import Permission

from conversations.models import AccountChange, BusinessAccount
from tests.factories import BusinessNumberFactory, UserFactory
from tests.webhooks.test_account_fields import sample

pytestmark = pytest.mark.django_db

VIEW = ["view_businessnumber", "view_accountchange", "view_businessaccount", "change_businessnumber"]


@pytest.fixture
def applied(post_webhook, number):
    """A name approval for the sample number and a restriction of its account, both delivered by Meta."""
    for name in ("phone_number_name_update_approved", "account_update_restriction"):
        assert post_webhook(sample(name)).status_code == 200
    assert AccountChange.objects.count() == 2


def member(number, username: str):
    user = UserFactory(username=username, is_staff=True)
    number.members.add(user)
    user.user_permissions.add(*Permission.objects.filter(codename__in=VIEW))
    return user


def test_a_member_sees_the_numbers_meta_state_read_only_and_its_history(client, number, applied):
    client.force_login(member(number, "ana"))
    page = client.get(f"/admin/conversations/businessnumber/{number.pk}/change/").content.decode()
    assert "Kirkgate Kitchenware" in page and "phone_number_name_update" in page
    assert 'name="verified_name"' not in page and 'name="quality_rating"' not in page  # shown, not editable
    changes = client.get("/admin/conversations/accountchange/").content.decode()
    assert "phone_number_name_update" in changes and "account_update" in changes  # the account's too
    accounts = client.get("/admin/conversations/businessaccount/").content.decode()
    assert "ACCOUNT_RESTRICTION" in accounts
    assert client.get("/admin/conversations/accountchange/add/").status_code == 403


def test_a_member_of_another_accounts_number_sees_none_of_it(client, number, applied):
    client.force_login(member(BusinessNumberFactory(waba_id="900000000000001"), "olga"))
    changes = client.get("/admin/conversations/accountchange/").content.decode()
    assert "phone_number_name_update" not in changes and "account_update" not in changes
    account = BusinessAccount.objects.get()
    assert client.get(f"/admin/conversations/businessaccount/{account.pk}/change/").status_code == 302
    change = AccountChange.objects.first()
    assert client.get(f"/admin/conversations/accountchange/{change.pk}/change/").status_code == 302


def test_templates_show_their_status_reason_and_quality(client, number, post_webhook):
    assert post_webhook(sample("message_template_status_update_rejected_invalid_format")).status_code == 200
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    page = client.get("/admin/conversations/messagetemplate/").content.decode()
    assert "winter_sale_2026" in page and "INVALID_FORMAT" in page

"""The admin of labels and canned replies: staff see and pick only their numbers' (and their own canned replies)."""

import pytest
from django.contrib.auth.models import Permission

from tests.factories import BusinessNumberFactory, CannedReplyFactory, LabelFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_staff(staff):
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="conversations", codename__in=["view_label", "add_label", "view_cannedreply"]
        )
    )
    return staff


def test_staff_see_their_numbers_labels_and_canned_replies_and_their_own(client, number, admin_staff):
    other = BusinessNumberFactory(name="Elsewhere")
    LabelFactory(number=number, name="Ours")
    LabelFactory(number=other, name="Theirs")
    CannedReplyFactory(number=number, shortcut="team")
    CannedReplyFactory(number=None, owner=admin_staff, shortcut="mine")
    CannedReplyFactory(number=None, owner=UserFactory(), shortcut="someone-elses")
    CannedReplyFactory(number=other, shortcut="elsewhere")
    client.force_login(admin_staff)
    labels = client.get("/admin/conversations/label/").content.decode()
    assert "Ours" in labels and "Theirs" not in labels
    replies = client.get("/admin/conversations/cannedreply/").content.decode()
    assert ">team</a>" in replies and ">mine</a>" in replies
    assert "someone-elses" not in replies and ">elsewhere</a>" not in replies
    add = client.get("/admin/conversations/label/add/").content.decode()
    assert str(number) in add and "Elsewhere" not in add

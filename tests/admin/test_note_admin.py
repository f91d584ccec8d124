"""The admin of private notes and notifications: read, never written there; a member of another number sees
none of them."""

import re

import pytest
from django.contrib.auth.models import Permission

from conversations.models import MemberRole, NumberAlertKind, NumberMembership
from conversations.services.notes import create_note
from conversations.services.number_alerts import settle_number_alerts
from tests.conversations.team import make_team
from tests.factories import BusinessNumberFactory, ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def note(number):
    team = make_team(number)
    conversation = ConversationFactory(number=number)
    return create_note(user=team["ana"], conversation=conversation, body="@sue the refund is approved")


def test_a_superuser_reads_notes_on_their_conversation_and_in_their_list(client, note):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    page = client.get(f"/admin/conversations/conversation/{note.conversation_id}/change/").content.decode()
    assert "the refund is approved" in page
    assert "the refund is approved" in client.get("/admin/conversations/conversationnote/").content.decode()
    assert "sue" in client.get("/admin/conversations/notification/").content.decode()
    assert client.get("/admin/conversations/conversationnote/add/").status_code == 403
    change = client.get(f"/admin/conversations/conversationnote/{note.pk}/change/").content.decode()
    assert 'name="body"' not in change  # shown, not editable


def test_staff_of_another_number_see_no_notes_nor_notifications(client, note):
    other = UserFactory(username="olga2", is_staff=True)
    ConversationFactory().number.members.add(other)
    other.user_permissions.add(*Permission.objects.filter(codename__in=["view_conversationnote", "view_notification"]))
    client.force_login(other)
    assert "the refund is approved" not in client.get("/admin/conversations/conversationnote/").content.decode()
    assert client.get(f"/admin/conversations/conversationnote/{note.pk}/change/").status_code == 302
    assert "sue" not in client.get("/admin/conversations/notification/").content.decode()


def test_a_supervisor_with_view_permission_sees_their_numbers_alert_notifications_not_another_numbers(client, number):
    supervisor = UserFactory(username="sam", is_staff=True)
    NumberMembership.objects.create(number=number, user=supervisor, role=MemberRole.SUPERVISOR)
    other_number = BusinessNumberFactory(name="Other line")
    NumberMembership.objects.create(number=other_number, user=UserFactory(username="otto"), role=MemberRole.SUPERVISOR)
    for each in (number, other_number):
        settle_number_alerts(
            number_ids=[each.pk], kind=NumberAlertKind.QUALITY, condition="RED", detail=f"quality of {each.name}"
        )
    supervisor.user_permissions.add(*Permission.objects.filter(codename="view_notification"))
    client.force_login(supervisor)

    page = client.get("/admin/conversations/notification/").content.decode()

    assert re.findall(r'<td class="field-recipient[^"]*">([^<]*)</td>', page) == ["sam"]

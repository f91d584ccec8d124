"""The admin of a number's team: members with their role, limit and away flag, and the number's assignment
settings; a conversation's status, assignee and activity shown, not edited."""

import pytest

from conversations.models import MemberRole, NumberMembership
from conversations.services import workflow
from tests.factories import ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_superuser_sets_roles_limits_and_auto_assignment_on_the_numbers_page(client, number, staff):
    client.force_login(UserFactory(username="root", is_superuser=True))
    membership = NumberMembership.objects.get(number=number, user=staff)
    page = client.get(f"/admin/conversations/businessnumber/{number.pk}/change/").content.decode()
    assert "memberships-0-role" in page and "auto_assignment" in page
    ben = UserFactory(username="ben")
    form = {
        "phone_number_id": number.phone_number_id,
        "display_phone_number": number.display_phone_number,
        "waba_id": number.waba_id,
        "name": number.name,
        "send_read_receipts": "on",
        "auto_assignment": "round_robin",
        "unassign_on_resolve": "on",
        "memberships-TOTAL_FORMS": "2",
        "memberships-INITIAL_FORMS": "1",
        "memberships-0-id": membership.pk,
        "memberships-0-number": number.pk,
        "memberships-0-user": staff.pk,
        "memberships-0-role": "supervisor",
        "memberships-0-max_open": "4",
        "memberships-1-number": number.pk,
        "memberships-1-user": ben.pk,
        "memberships-1-role": "agent",
        "memberships-1-max_open": "10",
        "memberships-1-away": "on",
    }
    response = client.post(f"/admin/conversations/businessnumber/{number.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    number.refresh_from_db()
    assert (number.auto_assignment, number.assign_on_reply, number.unassign_on_resolve) == ("round_robin", False, True)
    rows = {m.user.username: (m.role, m.max_open, m.away) for m in number.memberships.select_related("user")}
    assert rows == {"ana": ("supervisor", 4, False), "ben": ("agent", 10, True)}
    assert set(number.members.values_list("username", flat=True)) == {"ana", "ben"}


def test_the_conversation_page_shows_its_state_and_audit_trail(client, number, staff):
    conversation = ConversationFactory(number=number)
    NumberMembership.objects.filter(user=staff).update(role=MemberRole.SUPERVISOR)
    workflow.take_conversation(user=staff, conversation=conversation)
    workflow.change_conversation_status(user=staff, conversation=conversation, status="resolved")
    client.force_login(UserFactory(username="root", is_superuser=True))
    page = client.get(f"/admin/conversations/conversation/{conversation.pk}/change/").content.decode()
    assert "Resolved" in page and "assignment" in page
    assert 'name="status"' not in page  # changed from the inbox, where each change is recorded

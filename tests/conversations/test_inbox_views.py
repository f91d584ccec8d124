"""The inbox list's views (Mine, Unassigned, All), its status and assignee filters with their counts, and the thread's
status, assignee and activity lines: the page and the API list answer alike."""

import pytest

from conversations.models import ConversationStatus, MemberRole, NumberMembership
from conversations.services.workflow import change_conversation_status, take_conversation
from tests.conversations.test_views import page_data
from tests.factories import ConversationFactory, MessageFactory, OutboundMessageFactory, UserFactory

pytestmark = pytest.mark.django_db


def listed(client, query: str = "") -> list[int]:
    return [c["id"] for c in page_data(client.get(f"/inbox/{query}"))["conversations"]]


def test_the_list_shows_open_conversations_by_view_status_and_assignee(client, staff, ben, team_conversations):
    client.force_login(staff)
    ids = {name: c.pk for name, c in team_conversations.items()}
    assert listed(client) == [ids["mine"], ids["bens"], ids["unassigned"]]  # open, the default
    assert listed(client, "?view=mine") == [ids["mine"]]
    assert listed(client, "?view=unassigned") == [ids["unassigned"]]
    assert listed(client, "?status=resolved") == [ids["resolved"]]
    assert listed(client, "?view=unassigned&status=any") == [ids["unassigned"], ids["resolved"]]
    assert listed(client, f"?assignee={ben.pk}") == [ids["bens"]]
    assert listed(client, "?view=nonsense&status=nonsense") == listed(client, "?status=any")


def test_each_view_is_counted_under_the_lists_status_and_tabs_keep_the_other_filters(client, staff, team_conversations):
    client.force_login(staff)
    response = client.get("/inbox/?view=mine&q=ama")
    assert page_data(response)["viewCounts"] == {"mine": 1, "unassigned": 1, "all": 3}
    html = response.content.decode()
    assert 'href="/inbox/?q=ama&amp;view=unassigned" data-view="unassigned"' in html
    assert 'href="/inbox/?q=ama&amp;view=mine" data-view="mine" aria-current="page"' in html
    assert 'href="/inbox/?q=ama" data-view="all"' in html
    assert page_data(client.get("/inbox/?status=any"))["viewCounts"] == {"mine": 1, "unassigned": 2, "all": 4}


def test_a_member_of_another_number_counts_none_of_these(client, team_conversations):
    stranger = UserFactory(username="eve")
    ConversationFactory().number.members.add(stranger)
    client.force_login(stranger)
    assert page_data(client.get("/inbox/?status=any"))["viewCounts"] == {"mine": 0, "unassigned": 1, "all": 1}
    assert client.get(f"/inbox/{team_conversations['unassigned'].pk}/").status_code == 302


def test_the_thread_carries_its_activity_lines_the_readers_role_and_who_sent_each_reply(client, staff, number):
    staff.first_name = "Ana"
    staff.save(update_fields=["first_name"])
    conversation = ConversationFactory(number=number)
    MessageFactory(conversation=conversation)
    take_conversation(user=staff, conversation=conversation)
    change_conversation_status(user=staff, conversation=conversation, status=ConversationStatus.RESOLVED)
    OutboundMessageFactory(conversation=conversation, sent_by=staff)
    client.force_login(staff)
    data = page_data(client.get(f"/inbox/{conversation.pk}/?status=any"))
    assert [a["text"] for a in data["activities"]] == ["Ana took this", "Resolved by Ana"]
    assert data["conversation"]["status"] == "resolved" and data["conversation"]["assignee"]["id"] == staff.pk
    assert data["role"] == MemberRole.AGENT
    assert data["messages"][-1]["sent_by"] == {"id": staff.pk, "name": "Ana"}
    NumberMembership.objects.filter(number=number, user=staff).update(role=MemberRole.SUPERVISOR)
    assert page_data(client.get(f"/inbox/{conversation.pk}/"))["role"] == MemberRole.SUPERVISOR


@pytest.mark.parametrize("path", ["/inbox/", "/inbox/?view=mine", "/inbox/?view=unassigned", "thread"])
def test_inbox_pages_stay_within_15_queries(client, staff, ben, number, path, django_assert_max_num_queries):
    for n in range(30):
        MessageFactory(conversation=ConversationFactory(number=number, assignee=(staff, ben, None)[n % 3]))
    conversation = ConversationFactory(number=number)
    MessageFactory.create_batch(60, conversation=conversation)
    take_conversation(user=staff, conversation=conversation)
    change_conversation_status(user=staff, conversation=conversation, status=ConversationStatus.PENDING)
    client.force_login(staff)
    with django_assert_max_num_queries(15):
        assert client.get(f"/inbox/{conversation.pk}/" if path == "thread" else path).status_code == 200

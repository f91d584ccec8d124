"""The workflow API: status and snoozes, assignee, take and hand back, the activity log, a number's members and
settings; bad input named by its field, permissions checked against membership."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.models import Conversation, MemberRole, NumberMembership
from tests.factories import BusinessNumberFactory, ConversationFactory, OutboundMessageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(number):
    """Ana and Ben are agents of the number, Sue its supervisor, Olga a member of another number."""
    made = {name: UserFactory(username=name, first_name=name.capitalize()) for name in ("ana", "ben", "sue", "olga")}
    number.members.add(made["ana"], made["ben"])
    NumberMembership.objects.create(number=number, user=made["sue"], role=MemberRole.SUPERVISOR)
    BusinessNumberFactory().members.add(made["olga"])
    return made


@pytest.fixture
def conversation(number):
    return ConversationFactory(number=number)


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def url(conversation, action: str) -> str:
    return f"/api/conversations/{conversation.pk}/{action}/"


def test_status_changes_answer_with_the_conversation_as_listed(people, conversation):
    response = as_user(people["ana"]).post(url(conversation, "status"), {"status": "pending"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["snoozed_until"], body["assignee"]) == ("pending", None, None)
    assert body["unread_count"] == 0 and body["contact"]["id"] == conversation.contact_id


def test_a_snooze_takes_a_time_or_a_date_and_refuses_the_past_naming_the_field(people, conversation):
    client = as_user(people["ana"])
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    response = client.post(url(conversation, "status"), {"status": "snoozed", "snooze_until": past}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "snooze_in_past"
    assert list(response.json()["error"]["fields"]) == ["snooze_until"]
    response = client.post(url(conversation, "status"), {"status": "snoozed", "snooze_until": "soon"}, format="json")
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["snooze_until"]

    in_an_hour = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    body = client.post(
        url(conversation, "status"), {"status": "snoozed", "snooze_until": in_an_hour.isoformat()}, format="json"
    ).json()
    assert body["status"] == "snoozed"
    assert Conversation.objects.get(pk=conversation.pk).snoozed_until == in_an_hour

    tomorrow = (timezone.now() + timedelta(days=2)).date()
    body = client.post(
        url(conversation, "status"),
        {"status": "snoozed", "snooze_until": tomorrow.isoformat(), "time_zone": "America/Sao_Paulo"},
        format="json",
    ).json()
    until = Conversation.objects.get(pk=conversation.pk).snoozed_until
    assert until.astimezone(timezone.get_fixed_timezone(-180)).strftime("%Y-%m-%d %H:%M") == f"{tomorrow} 09:00"
    assert body["snoozed_until"] == until.isoformat()


def test_take_and_hand_back(people, conversation):
    ana, ben = as_user(people["ana"]), as_user(people["ben"])
    body = ana.post(url(conversation, "take")).json()
    assert body["assignee"] == {"id": people["ana"].pk, "name": "Ana"}
    taken = ben.post(url(conversation, "take"))
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "already_assigned"
    assert ben.post(url(conversation, "hand-back")).status_code == 409
    assert ana.post(url(conversation, "hand-back")).json()["assignee"] is None


def test_an_agent_cannot_reassign_others_conversations_and_a_supervisor_can(people, conversation):
    ana, sue = as_user(people["ana"]), as_user(people["sue"])
    refused = ana.post(url(conversation, "assignee"), {"assignee": people["ben"].pk}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_allowed"
    assigned = sue.post(url(conversation, "assignee"), {"assignee": people["ben"].pk}, format="json")
    assert assigned.status_code == 200 and assigned.json()["assignee"]["name"] == "Ben"
    assert ana.post(url(conversation, "assignee"), {"assignee": None}, format="json").status_code == 403
    # An agent's own take through the same endpoint, once it is free.
    assert sue.post(url(conversation, "assignee"), {"assignee": None}, format="json").json()["assignee"] is None
    mine = ana.post(url(conversation, "assignee"), {"assignee": people["ana"].pk}, format="json")
    assert mine.status_code == 200 and mine.json()["assignee"]["name"] == "Ana"


@pytest.mark.parametrize("who", ["olga", "nobody"])
def test_an_assignee_who_is_not_a_member_is_a_400_naming_the_field(people, conversation, who):
    assignee = people["olga"].pk if who == "olga" else 999_999
    response = as_user(people["sue"]).post(url(conversation, "assignee"), {"assignee": assignee}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_a_member"
    assert list(response.json()["error"]["fields"]) == ["assignee"]


@pytest.mark.parametrize(
    ("method", "action", "body"),
    [
        ("post", "status", {"status": "resolved"}),
        ("post", "assignee", {"assignee": None}),
        ("post", "take", None),
        ("post", "hand-back", None),
        ("get", "activity", None),
    ],
)
def test_a_member_of_another_number_gets_404(people, conversation, method, action, body):
    response = getattr(as_user(people["olga"]), method)(url(conversation, action), body, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_activity_log_lists_every_change_oldest_first(people, conversation):
    ana, sue = as_user(people["ana"]), as_user(people["sue"])
    ana.post(url(conversation, "take"))
    ana.post(url(conversation, "status"), {"status": "resolved"}, format="json")
    sue.post(url(conversation, "assignee"), {"assignee": people["ben"].pk}, format="json")
    results = ana.get(url(conversation, "activity")).json()["results"]
    assert [r["text"] for r in results] == ["Ana took this", "Resolved by Ana", "Sue assigned this to Ben"]
    assert results[2]["actor"] == {"id": people["sue"].pk, "name": "Sue"}
    assert results[2]["details"]["previous"]["name"] == "Ana"


def test_number_settings_are_read_by_members_and_changed_by_supervisors(people, number):
    path = f"/api/numbers/{number.pk}/settings/"
    assert as_user(people["ana"]).get(path).json() == {
        "auto_assignment": "off",
        "assign_on_reply": True,
        "unassign_on_resolve": False,
    }
    refused = as_user(people["ana"]).patch(path, {"auto_assignment": "round_robin"}, format="json")
    assert refused.status_code == 403
    changed = as_user(people["sue"]).patch(path, {"auto_assignment": "fewest_open"}, format="json")
    assert changed.status_code == 200 and changed.json()["auto_assignment"] == "fewest_open"
    bad = as_user(people["sue"]).patch(path, {"auto_assignment": "lottery"}, format="json")
    assert bad.status_code == 400 and list(bad.json()["error"]["fields"]) == ["auto_assignment"]
    assert as_user(people["olga"]).get(path).status_code == 404
    assert as_user(people["olga"]).patch(path, {"assign_on_reply": False}, format="json").status_code == 404
    root = UserFactory(username="root", is_superuser=True)
    assert as_user(root).patch(path, {"unassign_on_resolve": True}, format="json").json()["unassign_on_resolve"]


def test_members_list_with_role_and_load_and_a_member_sets_themselves_away(people, number, conversation):
    as_user(people["ana"]).post(url(conversation, "take"))
    members = {m["name"]: m for m in as_user(people["ben"]).get(f"/api/numbers/{number.pk}/members/").json()["results"]}
    assert set(members) == {"Ana", "Ben", "Sue"}
    assert (members["Sue"]["role"], members["Ana"]["open_count"], members["Ana"]["online"]) == ("supervisor", 1, False)
    away = as_user(people["ben"]).put(f"/api/numbers/{number.pk}/away/", {"away": True}, format="json")
    assert away.status_code == 200
    assert NumberMembership.objects.get(number=number, user=people["ben"]).away
    assert as_user(people["olga"]).get(f"/api/numbers/{number.pk}/members/").status_code == 404


def test_outbound_messages_carry_the_name_of_the_agent_who_sent_them(people, conversation):
    people["ana"].last_name = "Silva"
    people["ana"].save()
    OutboundMessageFactory(conversation=conversation, sent_by=people["ana"], body="Hello!")
    (message,) = as_user(people["ben"]).get(url(conversation, "messages")).json()["results"]
    assert message["sent_by"] == {"id": people["ana"].pk, "name": "Ana Silva"}

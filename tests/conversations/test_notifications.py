"""Notifications: a mention in a note notifies its member, in their own list (unread count, read one, read all),
live to them alone; someone who left the number no longer sees what was said there."""

import pytest

from conversations.models import Notification
from conversations.services.errors import WorkflowRefused
from conversations.services.notes import create_note
from conversations.services.notifications import mark_all_notifications_read, mark_notification_read
from realtime.models import Event
from realtime.selectors import events_since
from tests.conversations.team import as_user
from tests.factories import ContactFactory, ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(number):
    return ConversationFactory(number=number, contact=ContactFactory(profile_name="Maria Lopez"))


def unread_count(user) -> int:
    return as_user(user).get("/api/notifications/unread-count/").json()["unread_count"]


def test_a_mention_is_in_the_recipients_list_pointing_at_the_note(team, conversation):
    note = create_note(user=team["ana"], conversation=conversation, body="@sue please call Maria back")
    response = as_user(team["sue"]).get("/api/notifications/")
    assert response.status_code == 200
    [item] = response.json()["results"]
    assert item["title"] == "Ana mentioned you"
    assert (item["kind"], item["text"], item["contact_name"]) == (
        "mention",
        "@sue please call Maria back",
        "Maria Lopez",
    )
    assert item["url"] == f"/inbox/{conversation.pk}/#note-{note.pk}"
    assert (item["conversation_id"], item["note_id"], item["read_at"]) == (conversation.pk, note.pk, None)
    assert unread_count(team["sue"]) == 1
    assert as_user(team["ana"]).get("/api/notifications/").json()["results"] == []  # the author's list


def test_a_notification_is_a_live_event_to_its_recipient_only(team, conversation):
    create_note(user=team["ana"], conversation=conversation, body="@sue look")
    [event] = Event.objects.filter(type="notification.created")
    assert (event.user_id, event.number_id) == (team["sue"].pk, conversation.number_id)
    assert event.payload["unread_count"] == 1 and event.payload["notification"]["title"] == "Ana mentioned you"

    def replayed(user) -> list[str]:
        return [e.type for e in events_since(user_id=user.pk, number_ids=[conversation.number_id], after_id=0)]

    assert "notification.created" in replayed(team["sue"])
    assert "notification.created" not in replayed(team["ana"])


def test_opening_one_marks_it_read_and_tells_the_other_tabs(team, conversation):
    create_note(user=team["ana"], conversation=conversation, body="@sue one")
    create_note(user=team["ana"], conversation=conversation, body="@sue two")
    first = Notification.objects.order_by("pk").first()
    response = as_user(team["sue"]).post(f"/api/notifications/{first.pk}/read/")
    assert response.status_code == 200 and response.json()["read_at"] is not None
    assert unread_count(team["sue"]) == 1
    [event] = Event.objects.filter(type="notification.read")
    assert (event.user_id, event.payload) == (team["sue"].pk, {"ids": [first.pk], "unread_count": 1})
    as_user(team["sue"]).post(f"/api/notifications/{first.pk}/read/")  # again: nothing new
    assert Event.objects.filter(type="notification.read").count() == 1


def test_mark_all_read(team, conversation):
    for body in ("@sue one", "@sue two", "@ana three"):
        create_note(user=team["ana"] if "sue" in body else team["sue"], conversation=conversation, body=body)
    response = as_user(team["sue"]).post("/api/notifications/read-all/")
    assert response.json() == {"marked": 2, "unread_count": 0}
    assert unread_count(team["sue"]) == 0 and unread_count(team["ana"]) == 1
    assert as_user(team["sue"]).post("/api/notifications/read-all/").json() == {"marked": 0, "unread_count": 0}


def test_nobody_reads_anothers_notification(team, conversation):
    create_note(user=team["ana"], conversation=conversation, body="@sue look")
    notification = Notification.objects.get()
    for user in (team["ana"], team["olga"]):
        response = as_user(user).post(f"/api/notifications/{notification.pk}/read/")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "unknown_notification"
    notification.refresh_from_db()
    assert notification.read_at is None


def test_who_left_the_number_no_longer_sees_its_notifications(team, number, conversation):
    create_note(user=team["ana"], conversation=conversation, body="@sue the refund is approved")
    notification = Notification.objects.get()
    number.members.remove(team["sue"])
    sue = as_user(team["sue"])
    assert sue.get("/api/notifications/").json()["results"] == []
    assert unread_count(team["sue"]) == 0
    assert sue.post(f"/api/notifications/{notification.pk}/read/").status_code == 404
    assert sue.post("/api/notifications/read-all/").json()["marked"] == 0
    with pytest.raises(WorkflowRefused):
        mark_notification_read(user=team["sue"], notification_id=notification.pk)
    # Her socket follows the numbers she sees: the event is not replayed to her.
    assert events_since(user_id=team["sue"].pk, number_ids=[], after_id=0) == []


def test_a_superuser_mentioned_as_a_member_sees_it(number, conversation, team):
    boss = UserFactory(username="boss", first_name="Boss", is_superuser=True, is_staff=True)
    number.members.add(boss)
    create_note(user=team["ana"], conversation=conversation, body="@boss fyi")
    assert unread_count(boss) == 1
    assert mark_all_notifications_read(user=boss) == 1


def test_the_api_needs_a_signed_in_user(client):
    assert client.get("/api/notifications/").status_code == 401

"""Labels: a number's own, set on and taken off its conversations by those who see them, each change an activity
line and a live event; the inbox list and the API filter by them."""

import pytest
from django.db import IntegrityError

from conversations.models import ConversationLabel, Label
from conversations.selectors import conversation_list, labelled
from conversations.services.errors import WorkflowRefused
from conversations.services.labels import add_conversation_label, create_label, remove_conversation_label
from conversations.services.workflow import change_conversation_status
from conversations.snapshots import activity_snapshot
from realtime.models import Event
from sandbox.simulation import message_change
from tests.conversations.team import as_user, make_team
from tests.factories import BusinessNumberFactory, ConversationFactory, LabelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(number):
    return make_team(number)


@pytest.fixture
def conversation(number):
    return ConversationFactory(number=number)


def test_a_label_name_is_unique_on_its_number_whatever_its_case(people, number):
    label = create_label(user=people["sue"], number=number, name=" Urgent ", colour="red")
    assert (label.name, label.colour) == ("Urgent", "red")
    with pytest.raises(WorkflowRefused) as refused:
        create_label(user=people["sue"], number=number, name="urgent", colour="blue")
    assert (refused.value.code, refused.value.field) == ("label_exists", "name")
    LabelFactory(number=BusinessNumberFactory(), name="Urgent")  # another number may have one
    with pytest.raises(IntegrityError):
        Label.objects.create(number=number, name="URGENT", colour="grey")


def test_only_a_supervisor_creates_the_numbers_labels(people, number):
    with pytest.raises(WorkflowRefused) as refused:
        create_label(user=people["ana"], number=number, name="Billing", colour="green")
    assert refused.value.status == 403


def test_setting_and_removing_a_label_is_an_activity_line_and_a_live_event(people, conversation, number):
    label = LabelFactory(number=number, name="Billing", colour="green")
    assert add_conversation_label(user=people["ana"], conversation=conversation, label=label)
    assert not add_conversation_label(user=people["ana"], conversation=conversation, label=label)  # once
    assert remove_conversation_label(user=people["ana"], conversation=conversation, label=label)
    assert not remove_conversation_label(user=people["ana"], conversation=conversation, label=label)
    snapshot = {"id": label.pk, "name": "Billing", "colour": "green"}
    assert [a.details for a in conversation.activities.order_by("pk")] == [{"added": snapshot}, {"removed": snapshot}]
    lines = [activity_snapshot(a)["text"] for a in conversation.activities.order_by("pk")]
    assert lines == ["Ana added the label Billing", "Ana removed the label Billing"]
    changes = [e.payload for e in Event.objects.filter(type="conversation.labels_changed").order_by("pk")]
    assert changes == [
        {"conversation_id": conversation.pk, "labels": [{"id": label.pk, "name": "Billing", "colour": "green"}]},
        {"conversation_id": conversation.pk, "labels": []},
    ]
    assert Event.objects.filter(type="conversation.activity").count() == 2


def test_a_label_of_another_number_is_refused_naming_the_field(people, conversation):
    foreign = LabelFactory(number=BusinessNumberFactory())
    with pytest.raises(WorkflowRefused) as refused:
        add_conversation_label(user=people["ana"], conversation=conversation, label=foreign)
    assert (refused.value.code, refused.value.field) == ("label_of_another_number", "label")
    assert not ConversationLabel.objects.exists()


def test_the_list_filters_by_label_and_carries_the_labels(people, number, conversation, django_assert_num_queries):
    other = ConversationFactory(number=number)
    urgent, billing = LabelFactory(number=number, name="Urgent"), LabelFactory(number=number, name="billing")
    for label in (urgent, billing):
        add_conversation_label(user=people["ana"], conversation=conversation, label=label)
    listed = labelled(conversation_list(user=people["ana"]), label_id=urgent.pk)
    assert [c.pk for c in listed] == [conversation.pk]
    assert {c.pk for c in labelled(conversation_list(user=people["ana"]))} == {conversation.pk, other.pk}
    body = as_user(people["ana"]).get(f"/api/conversations/?label={urgent.pk}").json()
    assert [c["id"] for c in body["results"]] == [conversation.pk]
    assert [label["name"] for label in body["results"][0]["labels"]] == ["billing", "Urgent"]
    # The labels of a whole page are one query, however many rows it has.
    ConversationFactory.create_batch(5, number=number)
    page = list(labelled(conversation_list(user=people["ana"])))
    with django_assert_num_queries(0):
        assert sum(len(c.label_links.all()) for c in page) == 2


def test_a_conversation_seen_live_carries_its_labels(people, number, conversation, deliver):
    """A row the page never loaded (a resolved conversation the customer reopens, a list filtered by a label)
    is drawn from the event's snapshot: its labels come with it."""
    label = LabelFactory(number=number, name="VIP", colour="purple")
    add_conversation_label(user=people["ana"], conversation=conversation, label=label)
    change_conversation_status(user=people["ana"], conversation=conversation, status="resolved")
    deliver(
        message_change(
            phone_number_id=number.phone_number_id,
            display_phone_number=number.display_phone_number,
            wa_id=conversation.contact.wa_id,
        )
    )
    labels = [{"id": label.pk, "name": "VIP", "colour": "purple"}]
    received = Event.objects.get(type="message.created").payload["conversation"]
    assert (received["id"], received["labels"]) == (conversation.pk, labels)
    reopened = Event.objects.filter(type="conversation.activity").latest("pk").payload["conversation"]
    assert (reopened["status"], reopened["labels"]) == ("open", labels)


def test_the_api_sets_and_removes_labels_for_members_only(people, number, conversation):
    label = LabelFactory(number=number, name="Urgent", colour="red")
    url = f"/api/conversations/{conversation.pk}/labels/"
    response = as_user(people["ana"]).post(url, {"label": label.pk}, format="json")
    assert response.status_code == 200
    assert response.json()["labels"] == [{"id": label.pk, "name": "Urgent", "colour": "red"}]
    # A member of another number does not see the conversation at all.
    assert as_user(people["olga"]).post(url, {"label": label.pk}, format="json").status_code == 404
    assert as_user(people["olga"]).delete(f"{url}{label.pk}/").status_code == 404
    response = as_user(people["ana"]).delete(f"{url}{label.pk}/")
    assert response.status_code == 200 and response.json()["labels"] == []


def test_the_api_refuses_a_label_of_another_number_naming_the_field(people, number, conversation):
    ana = people["ana"]
    seen_elsewhere = BusinessNumberFactory()
    seen_elsewhere.members.add(ana)
    url = f"/api/conversations/{conversation.pk}/labels/"
    for label in (LabelFactory(number=seen_elsewhere), LabelFactory(number=BusinessNumberFactory())):
        response = as_user(ana).post(url, {"label": label.pk}, format="json")
        assert response.status_code == 400
        assert list(response.json()["error"]["fields"]) == ["label"]
    codes = [
        as_user(ana).post(url, {"label": label.pk}, format="json").json()["error"]["code"]
        for label in Label.objects.exclude(number=number).order_by("pk")
    ]
    assert codes == ["label_of_another_number", "unknown_label"]


def test_the_api_lists_and_creates_a_numbers_labels(people, number):
    url = f"/api/numbers/{number.pk}/labels/"
    response = as_user(people["sue"]).post(url, {"name": "VIP", "colour": "purple"}, format="json")
    assert response.status_code == 201
    assert as_user(people["ana"]).post(url, {"name": "Other"}, format="json").status_code == 403
    duplicate = as_user(people["sue"]).post(url, {"name": "vip"}, format="json")
    assert duplicate.status_code == 400 and duplicate.json()["error"]["code"] == "label_exists"
    bad_colour = as_user(people["sue"]).post(url, {"name": "Neon", "colour": "neon"}, format="json")
    assert bad_colour.status_code == 400 and list(bad_colour.json()["error"]["fields"]) == ["colour"]
    assert [label["name"] for label in as_user(people["ana"]).get(url).json()["results"]] == ["VIP"]
    assert as_user(people["olga"]).get(url).status_code == 404

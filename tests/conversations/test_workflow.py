"""The team's work on a conversation: its status and snoozes, who has it, and the activity line each change
leaves in the thread and the event log."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import (
    AutoAssignment,
    Conversation,
    ConversationActivity,
    MemberRole,
    NumberMembership,
)
from conversations.services import outbound, workflow
from conversations.services.errors import WorkflowRefused
from realtime.models import Event
from sandbox.simulation import envelope, message_change, new_wamid
from tests.factories import BusinessNumberFactory, ContactFactory, ConversationFactory, UserFactory
from tests.threads import in_threads
from webhooks import drain
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

NUMBER = {"phone_number_id": "427715309981234", "display_phone_number": "15557730142"}


@pytest.fixture
def team(number):
    """Ana and Ben are agents of the number, Sue its supervisor; Olga is a member of another number."""
    people = {name: UserFactory(username=name, first_name=name.capitalize()) for name in ("ana", "ben", "sue", "olga")}
    for name in ("ana", "ben"):
        number.members.add(people[name])
    NumberMembership.objects.create(number=number, user=people["sue"], role=MemberRole.SUPERVISOR)
    BusinessNumberFactory().members.add(people["olga"])
    return people


@pytest.fixture
def conversation(number):
    return ConversationFactory(number=number, last_inbound_at=timezone.now() - timedelta(minutes=1))


def activity_texts(conversation) -> list[str]:
    from conversations.snapshots import activity_text

    return [activity_text(a) for a in conversation.activities.select_related("actor").order_by("created_at", "id")]


def published(type_: str) -> list[dict]:
    return [e.payload for e in Event.objects.filter(type=type_).order_by("pk")]


# --- status -------------------------------------------------------------------------------------------------


def test_resolving_records_who_did_it_and_tells_open_inboxes(team, conversation):
    workflow.change_conversation_status(user=team["ana"], conversation=conversation, status="resolved")
    conversation.refresh_from_db()
    assert conversation.status == "resolved"
    assert activity_texts(conversation) == ["Resolved by Ana"]
    (event,) = published("conversation.activity")
    assert event["activity"]["text"] == "Resolved by Ana"
    assert event["activity"]["actor"] == {"id": team["ana"].pk, "name": "Ana"}
    assert event["conversation"]["status"] == "resolved"
    # The same status again is no change and no line.
    workflow.change_conversation_status(user=team["ana"], conversation=conversation, status="resolved")
    assert conversation.activities.count() == 1


def test_a_snooze_needs_a_time_in_the_future_and_the_field_is_named(team, conversation):
    for until in (None, timezone.now() - timedelta(minutes=1)):
        with pytest.raises(WorkflowRefused) as refused:
            workflow.change_conversation_status(
                user=team["ana"], conversation=conversation, status="snoozed", snooze_until=until
            )
        assert refused.value.field == "snooze_until" and refused.value.status == 400
    until = timezone.now() + timedelta(hours=1)
    workflow.change_conversation_status(
        user=team["ana"], conversation=conversation, status="snoozed", snooze_until=until
    )
    conversation.refresh_from_db()
    assert (conversation.status, conversation.snoozed_until) == ("snoozed", until)
    assert activity_texts(conversation)[0].startswith("Snoozed until ")
    # Any other status drops the time.
    workflow.change_conversation_status(user=team["ana"], conversation=conversation, status="pending")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.snoozed_until) == ("pending", None)


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "snoozed", "snoozed_until": None},
        {"status": "open", "snoozed_until": timezone.now()},
        {"status": "closed"},
    ],
)
def test_the_database_refuses_a_snooze_without_its_time_a_time_without_a_snooze_and_unknown_statuses(
    conversation, fields
):
    with pytest.raises(IntegrityError), transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(**fields)


def test_resolving_unassigns_when_the_number_says_so(team, conversation, number):
    number.unassign_on_resolve = True
    number.save()
    workflow.take_conversation(user=team["ana"], conversation=conversation)
    workflow.change_conversation_status(user=team["ana"], conversation=conversation, status="resolved")
    conversation.refresh_from_db()
    assert conversation.assignee is None
    assert activity_texts(conversation) == ["Ana took this", "Resolved by Ana", "Unassigned from Ana on resolving"]


# --- the customer's message reopens ----------------------------------------------------------------------------


def pending_text(wa_id: str, body: str) -> WebhookEvent:
    change = message_change(
        **NUMBER, wa_id=wa_id, wamid=new_wamid(), timestamp=1767262000, name="Amara", content={"text": {"body": body}}
    )
    payload = envelope(waba_id="318273645502211", changes=[change])
    return WebhookEvent.objects.create(raw_body=json.dumps(payload), phone_number_id=NUMBER["phone_number_id"])


def test_a_customer_message_reopens_resolved_snoozed_and_pending_conversations_in_the_drains_round(number, team):
    later = timezone.now() + timedelta(days=1)
    states = [("resolved", None), ("snoozed", later), ("pending", None), ("open", None)]
    conversations = [
        ConversationFactory(
            number=number, contact=ContactFactory(wa_id=f"44770090{index:04d}"), status=s, snoozed_until=u
        )
        for index, (s, u) in enumerate(states)
    ]
    for c in conversations:
        pending_text(c.contact.wa_id, "hello again")
    assert drain.process_pending_webhook_events(limit=100) == 4
    assert [Conversation.objects.get(pk=c.pk).status for c in conversations] == ["open"] * 4
    assert [activity_texts(c) for c in conversations] == [["Reopened by the customer's message"]] * 3 + [[]]
    assert [e["activity"]["details"]["from"] for e in published("conversation.activity")] == [
        "resolved",
        "snoozed",
        "pending",
    ]
    assert {e["conversation"]["status"] for e in published("message.created")} == {"open"}


def test_reopening_in_the_drain_costs_one_query_per_round_whatever_its_size(number):
    def round_of(status: str, size: int) -> int:
        for index in range(size):
            contact = ContactFactory(wa_id=f"4477{len(status)}{size:02d}{index:03d}")
            ConversationFactory(number=number, contact=contact, status=status)
            pending_text(contact.wa_id, "hi")
        with CaptureQueriesContext(connection) as queries:
            assert drain.process_pending_webhook_events(limit=100) == size
        return len(queries)

    assert round_of("resolved", 2) == round_of("open", 2) + 1  # the activity rows' one INSERT
    assert round_of("resolved", 20) == round_of("open", 20) + 1


# --- snoozes end by themselves ---------------------------------------------------------------------------------


def test_the_sweep_reopens_ended_snoozes_once_even_when_two_sweeps_run_at_once(transactional_db, number):
    now = timezone.now()
    ended = [
        ConversationFactory(number=number, status="snoozed", snoozed_until=now - timedelta(minutes=m))
        for m in range(1, 6)
    ]
    still = ConversationFactory(number=number, status="snoozed", snoozed_until=now + timedelta(hours=1))
    barrier = threading.Barrier(2)

    def sweep() -> int:
        barrier.wait()
        return workflow.reopen_due_snoozes(now=now)

    counts = in_threads(sweep, sweep)
    assert sum(counts) == 5
    assert {Conversation.objects.get(pk=c.pk).status for c in ended} == {"open"}
    assert Conversation.objects.get(pk=still.pk).status == "snoozed"
    assert ConversationActivity.objects.count() == 5
    assert [activity_texts(c) for c in ended] == [["Reopened: the snooze ended"]] * 5
    assert workflow.reopen_due_snoozes(now=now) == 0


def test_beat_runs_the_conversation_sweep(settings):
    from conversations import jobs

    scheduled = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled[jobs.SWEEP_CONVERSATIONS] == settings.CONVERSATION_SWEEP_INTERVAL_SECONDS


# --- assignment ---------------------------------------------------------------------------------------------


def test_an_agent_takes_an_unassigned_conversation_and_hands_it_back(team, conversation):
    workflow.take_conversation(user=team["ana"], conversation=conversation)
    with pytest.raises(WorkflowRefused) as refused:
        workflow.take_conversation(user=team["ben"], conversation=conversation)
    assert (refused.value.status, refused.value.code) == (409, "already_assigned")
    with pytest.raises(WorkflowRefused) as refused:
        workflow.hand_back_conversation(user=team["ben"], conversation=conversation)
    assert refused.value.status == 409
    workflow.hand_back_conversation(user=team["ana"], conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.assignee is None
    assert activity_texts(conversation) == ["Ana took this", "Ana handed this back"]
    assert published("conversation.activity")[0]["conversation"]["assignee"] == {"id": team["ana"].pk, "name": "Ana"}


def test_an_agent_cannot_assign_to_others_nor_take_from_others_but_a_supervisor_can(team, conversation):
    with pytest.raises(WorkflowRefused) as refused:
        workflow.assign_conversation(user=team["ana"], conversation=conversation, assignee=team["ben"])
    assert refused.value.status == 403
    workflow.assign_conversation(user=team["sue"], conversation=conversation, assignee=team["ben"])
    with pytest.raises(WorkflowRefused) as refused:
        workflow.assign_conversation(user=team["ana"], conversation=conversation, assignee=team["ana"])
    assert refused.value.status == 403
    with pytest.raises(WorkflowRefused) as refused:
        workflow.assign_conversation(user=team["ana"], conversation=conversation, assignee=None)
    assert refused.value.status == 403
    workflow.assign_conversation(user=team["sue"], conversation=conversation, assignee=team["ana"])
    root = UserFactory(username="root", is_superuser=True, first_name="Root")
    workflow.assign_conversation(user=root, conversation=conversation, assignee=None)
    assert activity_texts(conversation) == [
        "Sue assigned this to Ben",
        "Sue assigned this to Ana",
        "Root unassigned Ana",
    ]


def test_the_assignee_must_be_a_member_of_the_conversations_number(team, conversation):
    with pytest.raises(WorkflowRefused) as refused:
        workflow.assign_conversation(user=team["sue"], conversation=conversation, assignee=team["olga"])
    assert (refused.value.status, refused.value.field) == (400, "assignee")
    assert Conversation.objects.get(pk=conversation.pk).assignee is None


def test_a_reply_to_an_unassigned_conversation_assigns_it_to_whoever_replied(team, conversation, number, monkeypatch):
    monkeypatch.setattr("conversations.jobs.enqueue", lambda *args: None)
    outbound.send_text(user=team["ben"], conversation=conversation, text="On it")
    outbound.send_text(user=team["ana"], conversation=conversation, text="Me too")
    conversation.refresh_from_db()
    assert conversation.assignee == team["ben"]
    assert activity_texts(conversation) == ["Assigned to Ben on their reply"]
    created = published("message.created")
    assert [p["conversation"]["assignee"]["name"] for p in created] == ["Ben", "Ben"]
    assert [p["message"]["sent_by"]["name"] for p in created] == ["Ben", "Ana"]

    number.assign_on_reply = False
    number.save()
    other = ConversationFactory(number=number, last_inbound_at=timezone.now())
    outbound.send_text(user=team["ana"], conversation=other, text="Hi")
    assert Conversation.objects.get(pk=other.pk).assignee is None


def test_a_number_setting_is_changed_by_its_supervisors_only(team, number):
    with pytest.raises(WorkflowRefused) as refused:
        workflow.change_number_settings(user=team["ana"], number=number, auto_assignment=AutoAssignment.ROUND_ROBIN)
    assert refused.value.status == 403
    workflow.change_number_settings(user=team["sue"], number=number, auto_assignment=AutoAssignment.ROUND_ROBIN)
    number.refresh_from_db()
    assert number.auto_assignment == "round_robin"


def test_a_member_removed_from_the_number_has_none_of_its_conversations(team, conversation, number):
    workflow.take_conversation(user=team["ana"], conversation=conversation)
    number.members.remove(team["ana"])
    conversation.refresh_from_db()
    assert conversation.assignee is None
    assert activity_texts(conversation)[-1] == "Unassigned from Ana: no longer a member"
    # A number deleted with its members and assigned conversations goes whole.
    workflow.take_conversation(user=team["ben"], conversation=conversation)
    number.delete()
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


def test_a_deactivated_account_has_none_of_its_conversations_on_any_number(team, conversation, number):
    other_number = BusinessNumberFactory()
    other_number.members.add(team["ana"])
    elsewhere = ConversationFactory(number=other_number)
    for held in (conversation, elsewhere):
        workflow.take_conversation(user=team["ana"], conversation=held)
    team["ana"].first_name = "Anna"
    team["ana"].save()  # an ordinary edit keeps them
    assert Conversation.objects.filter(assignee=team["ana"]).count() == 2
    team["ana"].is_active = False
    team["ana"].save()
    assert not Conversation.objects.filter(assignee=team["ana"]).exists()
    assert activity_texts(conversation)[-1] == "Unassigned from Anna: account deactivated"
    assert activity_texts(elsewhere)[-1] == "Unassigned from Anna: account deactivated"
    assert NumberMembership.objects.filter(user=team["ana"]).count() == 2  # reactivated, they are members again

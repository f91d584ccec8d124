"""Auto-assignment: waiting conversations go to members who are online, not away and under their limit, round
robin or fewest open first; the database keeps it right when workers assign at once."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from conversations.incoming import Identity, InboundMessage
from conversations.models import AutoAssignment, Conversation, NumberMembership
from conversations.services import InboundItem, receive_inbound_messages, workflow
from realtime.models import SocketPresence
from tests.factories import BusinessNumberFactory, ContactFactory, ConversationFactory, UserFactory
from tests.threads import own_connection


def online(*users, at=None) -> None:
    for user in users:
        SocketPresence.objects.create(channel_name=f"test.{user.pk}", user=user, seen_at=at or timezone.now())


def agents(number, count: int, *, max_open: int = 10) -> list:
    people = [UserFactory(username=f"agent{index}") for index in range(count)]
    for person in people:
        NumberMembership.objects.create(number=number, user=person, max_open=max_open)
    return people


def load(number) -> dict[int, int]:
    """Open conversations per assignee (None: waiting)."""
    counts: dict[int, int] = {}
    for assignee_id in Conversation.objects.filter(number=number, status="open").values_list("assignee_id", flat=True):
        counts[assignee_id] = counts.get(assignee_id, 0) + 1
    return counts


def _text(wamid: str, contact) -> InboundMessage:
    return InboundMessage(
        wamid=wamid,
        sender=Identity(wa_id=contact.wa_id, user_id=None),
        type="text",
        body="hello",
        preview="hello",
        content={"body": "hello"},
        context={},
        reply_to_wamid="",
        timestamp=timezone.now(),
    )


def test_fifty_conversations_arriving_at_once_fill_three_agents_to_their_limit_and_the_rest_wait(transactional_db):
    number = BusinessNumberFactory(auto_assignment=AutoAssignment.ROUND_ROBIN)
    team = agents(number, 3, max_open=10)
    online(*team)
    contacts = [ContactFactory() for _ in range(50)]

    def arrive(index: int) -> None:
        # What a drain does for one delivery: store it in its transaction; on commit its auto-assignment runs
        # (Celery runs in-process here: in this thread, right after the commit).
        item = InboundItem(
            number=number, contact=contacts[index], message=_text(f"wamid.AUTO{index:03d}", contacts[index])
        )
        with transaction.atomic():
            receive_inbound_messages(items=[item])

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(own_connection(arrive), range(50)))

    assert Conversation.objects.filter(number=number).count() == 50
    assert load(number) == {team[0].pk: 10, team[1].pk: 10, team[2].pk: 10, None: 20}

    # Slots freed: a resolve and a hand-back each give a waiting conversation to the one who freed it.
    resolved = Conversation.objects.filter(assignee=team[0]).first()
    workflow.change_conversation_status(user=team[0], conversation=resolved, status="resolved")
    handed = Conversation.objects.filter(assignee=team[1]).first()
    workflow.hand_back_conversation(user=team[1], conversation=handed)
    # Each freed slot was filled from the waiting ones (the handed-back one waits with them).
    assert load(number) == {team[0].pk: 10, team[1].pk: 10, team[2].pk: 10, None: 19}

    # Limits raised: the sweep hands out what still waits, ten more each.
    NumberMembership.objects.filter(number=number).update(max_open=20)
    assert workflow.sweep_conversations()["assigned"] == 19
    assert Conversation.objects.filter(number=number, assignee__isnull=True).count() == 0


def test_two_workers_assigning_at_once_never_break_a_limit(transactional_db):
    number = BusinessNumberFactory(auto_assignment=AutoAssignment.FEWEST_OPEN)
    team = agents(number, 2, max_open=7)
    online(*team)
    for _ in range(30):
        ConversationFactory(number=number)

    def assign(_index: int) -> int:
        return workflow.assign_waiting_conversations(number_id=number.pk)

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sum(pool.map(own_connection(assign), range(8))) == 14
    assert load(number) == {team[0].pk: 7, team[1].pk: 7, None: 16}


@pytest.mark.django_db
def test_only_members_online_and_not_away_are_given_conversations_fewest_open_first():
    number = BusinessNumberFactory(auto_assignment=AutoAssignment.FEWEST_OPEN)
    busy, free, away, _offline, gone = agents(number, 5)
    NumberMembership.objects.filter(user=away).update(away=True)
    online(busy, free, away)
    online(gone, at=timezone.now() - timedelta(minutes=10))  # its Daphne died: never refreshed since
    for _ in range(3):
        ConversationFactory(number=number, assignee=busy)
    for _ in range(4):
        ConversationFactory(number=number)
    assert workflow.assign_waiting_conversations(number_id=number.pk) == 4
    # Fewest open first: free had none and gets three; at three each, busy was assigned longest ago (never).
    assert load(number) == {busy.pk: 4, free.pk: 3}


@pytest.mark.django_db
def test_a_number_with_auto_assignment_off_assigns_nothing():
    number = BusinessNumberFactory()
    online(*agents(number, 2))
    ConversationFactory(number=number)
    assert workflow.assign_waiting_conversations(number_id=number.pk) == 0

"""Who is online for auto-assignment: a member with an inbox socket open. The socket's row comes and goes with
it, is refreshed while it stays open, and stops counting when its Daphne died without closing it."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from conversations.models import AutoAssignment, Conversation
from realtime.models import SocketPresence
from realtime.presence import forget_stale_sockets, online_user_ids, record_socket_open
from tests.factories import BusinessNumberFactory, ConversationFactory, UserFactory
from tests.realtime.test_consumers import close_consumer_connections, connect  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_a_member_who_opens_the_inbox_comes_online_and_is_given_what_waits(settings):
    settings.PRESENCE_REFRESH_SECONDS = 0.05
    number = await sync_to_async(BusinessNumberFactory)(auto_assignment=AutoAssignment.ROUND_ROBIN)
    ana = await sync_to_async(UserFactory)(username="ana")
    await sync_to_async(number.members.add)(ana)
    waiting = await sync_to_async(ConversationFactory)(number=number)
    assert await sync_to_async(online_user_ids)(user_ids=[ana.pk]) == set()

    communicator, connected = await connect(ana)
    assert connected
    assert await sync_to_async(online_user_ids)(user_ids=[ana.pk]) == {ana.pk}
    assert (await sync_to_async(Conversation.objects.get)(pk=waiting.pk)).assignee_id == ana.pk
    first_seen = (await sync_to_async(SocketPresence.objects.get)(user=ana)).seen_at
    event = await communicator.receive_json_from(timeout=2)
    assert event["type"] == "conversation.activity"
    assert event["payload"]["activity"]["text"] == "Assigned to ana automatically"

    # The open socket refreshes its row by itself.
    for _ in range(50):
        row = await sync_to_async(SocketPresence.objects.get)(user=ana)
        if row.seen_at > first_seen:
            break
        await communicator.receive_nothing(timeout=0.05)
    assert row.seen_at > first_seen

    await communicator.disconnect()
    assert not await sync_to_async(SocketPresence.objects.filter(user=ana).exists)()
    assert await sync_to_async(online_user_ids)(user_ids=[ana.pk]) == set()


@pytest.mark.django_db
def test_a_socket_whose_daphne_died_counts_no_more_after_the_ttl_and_the_sweep_forgets_it(settings):
    ana, ben = UserFactory(username="ana"), UserFactory(username="ben")
    record_socket_open(channel_name="daphne-1.ana", user_id=ana.pk)
    record_socket_open(channel_name="daphne-2.ben", user_id=ben.pk)
    SocketPresence.objects.filter(user=ana).update(
        seen_at=timezone.now() - timedelta(seconds=settings.PRESENCE_TTL_SECONDS + 1)
    )
    assert online_user_ids(user_ids=[ana.pk, ben.pk]) == {ben.pk}
    assert forget_stale_sockets() == 1
    assert list(SocketPresence.objects.values_list("user_id", flat=True)) == [ben.pk]

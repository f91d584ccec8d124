"""A note reaches the sockets of everyone who sees its number; its mention's notification only the sockets of the
member mentioned."""

import pytest
from asgiref.sync import sync_to_async

from conversations.services.notes import create_note
from realtime import events
from tests.conversations.team import make_team
from tests.factories import BusinessNumberFactory, ConversationFactory
from tests.realtime.test_consumers import close_consumer_connections, connect  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True)]


def a_team_and_conversation():
    number = BusinessNumberFactory()
    return make_team(number), ConversationFactory(number=number)


async def test_the_mentioned_member_alone_is_notified_live():
    team, conversation = await sync_to_async(a_team_and_conversation)()
    sue, _ = await connect(team["sue"])
    ana, _ = await connect(team["ana"])
    olga, _ = await connect(team["olga"])

    await sync_to_async(create_note)(user=team["ana"], conversation=conversation, body="@sue please check")

    for socket in (sue, ana):
        created = await socket.receive_json_from(timeout=2)
        assert created["type"] == events.CONVERSATION_NOTE_CREATED
        assert created["payload"]["note"]["body"] == "@sue please check"
    notified = await sue.receive_json_from(timeout=2)
    assert notified["type"] == events.NOTIFICATION_CREATED
    assert notified["payload"]["notification"]["title"] == "Ana mentioned you"
    assert notified["payload"]["unread_count"] == 1
    assert await ana.receive_nothing(timeout=0.3), "the author is not notified"
    assert await olga.receive_nothing(timeout=0.3), "another number's member hears nothing"
    for socket in (sue, ana, olga):
        await socket.disconnect()

"""The project's Meta sandbox as a real HTTP server in this process: the Graph API calls (sends, media
info, media downloads) of these tests go to it over the network, as they go to Meta."""

from datetime import UTC, datetime

import pytest

from conversations.models import ConversationStatus
from sandbox import MetaSandbox
from tests.conftest import SANDBOX_TOKEN, meta_sandbox, start_sandbox  # noqa: F401 (fixtures and the token)
from tests.conversations.team import make_team
from tests.factories import ConversationFactory, UserFactory


def graph_requests(sandbox: MetaSandbox) -> list[str]:
    """The paths of every Graph API request the sandbox received, media downloads included."""
    with sandbox.lock:
        return [entry["path"] for entry in sandbox.state.requests]


@pytest.fixture
def ben(number):
    user = UserFactory(username="ben", first_name="Ben")
    number.members.add(user)
    return user


@pytest.fixture
def team_conversations(number, staff, ben):
    """One of each kind, newest first: mine, ben's, unassigned, a resolved unassigned one, another number's."""
    at = lambda day: datetime(2026, 1, day, tzinfo=UTC)  # noqa: E731
    made = {
        "mine": ConversationFactory(number=number, assignee=staff, last_message_at=at(5)),
        "bens": ConversationFactory(number=number, assignee=ben, last_message_at=at(4)),
        "unassigned": ConversationFactory(number=number, last_message_at=at(3)),
        "resolved": ConversationFactory(number=number, status=ConversationStatus.RESOLVED, last_message_at=at(2)),
    }
    ConversationFactory()  # another number's
    return made


@pytest.fixture
def team(number):
    """Ana, an agent of the number, Sue its supervisor, Olga a member of another number (``team.make_team``)."""
    return make_team(number)

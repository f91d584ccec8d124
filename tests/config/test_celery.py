"""Tasks run in-process (the embedded ``make run``): a retry waits its backoff as it would under a worker,
so a Graph API that is not up yet at the first try (the sandbox starting a moment later) gets the work."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Message, MessageStatus
from conversations.tasks import deliver_outbound_message_task
from sandbox import MetaSandbox, SandboxConfig
from tests.conversations.conftest import SANDBOX_TOKEN
from tests.e2e.conftest import free_port, wait_for
from tests.factories import ContactFactory, ConversationFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the retry runs on another thread, with its own connection


@pytest.fixture
def late_sandbox(settings):
    """A Graph API on a port where nothing listens yet; ``start_in(seconds)`` brings the sandbox up there."""
    port = free_port()
    settings.META_GRAPH_API_URL = f"http://127.0.0.1:{port}"
    settings.META_ACCESS_TOKEN = SANDBOX_TOKEN
    started: list[MetaSandbox] = []

    def start() -> None:
        config = SandboxConfig(app_secret=settings.META_APP_SECRET, access_token=SANDBOX_TOKEN, assume_window_open=True)
        started.append(MetaSandbox(config, port=port).start())

    def start_in(seconds: float) -> list[MetaSandbox]:
        threading.Timer(seconds, start).start()
        return started

    yield start_in
    for sandbox in started:
        sandbox.stop()


def test_an_in_process_retry_waits_its_backoff_and_reaches_a_graph_api_that_came_up_late(
    settings, number, late_sandbox
):
    settings.EAGER_RETRIES_WAIT = True
    conversation = ConversationFactory(
        number=number, contact=ContactFactory(), last_inbound_at=timezone.now() - timedelta(minutes=1)
    )
    message = OutboundMessageFactory(conversation=conversation, content={"body": "Welcome!"}, idempotency_key=None)
    started = late_sandbox(1.5)
    began = time.monotonic()
    deliver_outbound_message_task.delay(message.pk)  # the first try meets a refused connect
    assert time.monotonic() - began < 1.5
    message.refresh_from_db()
    # Run at once, its nine tries would all have met the refused connect: failed for good by now.
    assert message.status == MessageStatus.PENDING, "its retries wait their countdowns"
    sent = wait_for(
        lambda: Message.objects.filter(pk=message.pk, wamid__isnull=False).first(),
        timeout=60,
        what="the retry after the sandbox came up",
    )
    assert sent.status == MessageStatus.PENDING and sent.send_attempts >= 2
    with started[0].lock:
        assert [item["wamid"] for item in started[0].state.messages] == [sent.wamid]

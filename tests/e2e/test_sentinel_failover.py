"""Redis under Sentinel, with real processes: a master, a replica and three sentinels (tests/redis_sentinel.py), and
the stack configured by REDIS_SENTINELS and REDIS_SENTINEL_MASTER alone. The drill SIGKILLs the master while
webhooks keep arriving, staff keep replying and a browser has the conversation open; a misspelt master name is
shown to the operator and loses no webhook."""

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from conversations.models import Direction, Message
from realtime.events import MESSAGE_CREATED
from realtime.models import Event
from sandbox.simulation import envelope, message_change, new_wamid
from tests.e2e import test_replying
from tests.e2e.conftest import (
    NUMBER,
    SANDBOX_TOKEN,
    WABA,
    Stack,
    logged_in_page,
    stack_env,
    staff_member,
    start_daphne,
    start_worker,
    stop_process,
    wait_for,
)
from tests.redis_sentinel import RedisGroup, running_group
from webhooks.models import WebhookEvent, WebhookEventState

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The Meta sandbox that records every send, and a conversation a customer opened through it.
conversation = test_replying.conversation


@pytest.fixture(scope="module")
def redis_group() -> Iterator[RedisGroup]:
    with running_group(replicas=1, sentinels=3) as group:
        yield group


@pytest.fixture(scope="module")
def stack(e2e_database_url, redis_group, sandbox_process) -> Iterator[Stack]:
    """The e2e stack (Daphne, a worker with beat) on the sentinels; ``stack.redis.url`` is the current master's."""
    logs = Path(tempfile.mkdtemp(prefix="e2e-logs-"))
    env = stack_env(
        database_url=e2e_database_url,
        redis_url="",
        **redis_group.settings,
        META_GRAPH_API_URL=sandbox_process.base_url,
        META_MEDIA_HOSTS=sandbox_process.base_url,
        META_ACCESS_TOKEN=SANDBOX_TOKEN,
        # Work whose task went down with the old master is enqueued again within seconds.
        OUTBOUND_SWEEP_INTERVAL_SECONDS="1",
        OUTBOUND_SWEEP_GRACE_SECONDS="1",
    )
    daphne, base_url = start_daphne(env=env, logs=logs)
    worker = start_worker(env=env, logs=logs)
    stack = Stack(base_url=base_url, redis=redis_group, env=env, logs=logs, processes=[daphne, worker])
    try:
        yield stack
    finally:
        for process in stack.processes:
            stop_process(process)
        if os.environ.get("E2E_KEEP_LOGS"):
            print(f"e2e logs kept in {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)


def stuck_replies(reply_ids: list[int], stack: Stack) -> str:
    """What a reply Meta never accepted went through, and the worker's last words, for the failure's message."""
    rows = Message.objects.filter(pk__in=reply_ids, wamid__isnull=True).values(
        "pk", "status", "send_attempts", "send_claimed_at", "send_attempted_at", "error_title"
    )
    lines = (stack.logs / "worker.log").read_text(errors="replace").splitlines()
    # The sends and whatever went wrong, not the sweeps that run every second.
    log = [line for line in lines if "deliver_outbound" in line or "WARNING" in line or "ERROR" in line][-60:]
    return "replies not accepted: " + repr(list(rows)) + "\nworker log (sends, warnings, errors):\n" + "\n".join(log)


def inbound(text: str) -> tuple[str, dict]:
    wamid = new_wamid()
    change = message_change(**NUMBER, wa_id="447700900461", wamid=wamid, content={"text": {"body": text}})
    return wamid, envelope(waba_id=WABA, changes=[change])


class Stream(threading.Thread):
    """Calls ``step(n)`` every ``interval`` seconds until stopped; what each call returned, in order."""

    def __init__(self, step, *, interval: float):
        super().__init__(daemon=True)
        self.step, self.interval = step, interval
        self.results: list = []
        self.stopped = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                self.results.append(self.step(len(self.results)))
                self.stopped.wait(self.interval)
        except BaseException as error:  # the test reports it
            self.error = error

    def finish(self) -> list:
        self.stopped.set()
        self.join(timeout=60)
        assert self.error is None, self.error
        return self.results


def deliver_as_meta(stack: Stack, payload: dict) -> list[int]:
    """POST one delivery until it is answered 200, as Meta retries; every status it got."""
    statuses = []
    while not statuses or statuses[-1] != 200:
        try:
            statuses.append(stack.post_webhook(payload, timeout=10).status_code)
        except requests.RequestException:
            statuses.append(0)
        if statuses[-1] != 200:
            time.sleep(0.5)
    return statuses


def test_the_master_killed_mid_stream_loses_nothing_and_doubles_nothing(
    stack, redis_group, sandbox, api, conversation, browser, number
):
    page = logged_in_page(browser, stack.base_url, staff_member("ana", number))
    page.goto(f"/inbox/{conversation.pk}/")
    state = page.locator("#connection-state")
    expect(state).to_have_attribute("data-state", "live")
    expect(page.locator("#messages .message")).to_have_count(1)
    # Every state the page's socket goes through, as the page shows it.
    page.evaluate(
        """() => {
            const node = document.querySelector("#connection-state");
            window.socketStates = [node.dataset.state];
            new MutationObserver(() => window.socketStates.push(node.dataset.state))
                .observe(node, {attributes: true, attributeFilter: ["data-state"]});
        }"""
    )

    def webhook(n: int) -> tuple[str, list[int]]:
        wamid, payload = inbound(f"Customer message {n}")
        return wamid, deliver_as_meta(stack, payload)

    def reply(n: int) -> tuple[str, int]:
        text = f"Reply {n}"
        return text, api.send(conversation.pk, type="text", text=text).status_code

    webhooks, replies = Stream(webhook, interval=0.1), Stream(reply, interval=0.3)
    webhooks.start()
    replies.start()
    wait_for(lambda: len(webhooks.results) >= 10 and len(replies.results) >= 3, what="the streams to run")
    old_port = redis_group.kill_master()
    killed_at = time.monotonic()
    new_port = redis_group.wait_for_failover(old_port=old_port)
    failover_seconds = time.monotonic() - killed_at
    # Past the failover the streams go on for as long again, and at least a few seconds.
    time.sleep(max(3.0, failover_seconds))
    delivered, sent = webhooks.finish(), replies.finish()
    assert new_port != old_port
    assert all(process.poll() is None for process in stack.processes), "Daphne and the worker outlived the master"

    assert [statuses for _wamid, statuses in delivered] == [[200]] * len(delivered), "Meta never had to retry"
    assert [status for _text, status in sent] == [202] * len(sent)
    wamids = [wamid for wamid, _statuses in delivered]
    wait_for(
        lambda: (
            not WebhookEvent.objects.filter(state=WebhookEventState.PENDING).exists()
            and Message.objects.filter(wamid__in=wamids).count() == len(wamids)
        ),
        timeout=90,
        what="every delivery processed after the failover",
    )
    texts = [text for text, _status in sent]
    reply_ids = list(Message.objects.filter(direction=Direction.OUTBOUND).values_list("pk", flat=True))
    assert len(reply_ids) == len(texts)
    try:
        wait_for(
            lambda: Message.objects.filter(pk__in=reply_ids, wamid__isnull=False).count() == len(texts),
            timeout=90,
            what="every reply accepted by Meta after the failover",
        )
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}\n{stuck_replies(reply_ids, stack)}") from None
    time.sleep(3)  # three more sweeps: none sends anything again
    # Meta's status webhooks for the replies arrive after them: each is processed too, none left behind.
    wait_for(
        lambda: not WebhookEvent.objects.filter(state=WebhookEventState.PENDING).exists(),
        timeout=30,
        what="the replies' status webhooks processed",
    )
    assert WebhookEvent.objects.exclude(state=WebhookEventState.PROCESSED).count() == 0
    sent_to_meta = [item["request"]["text"]["body"] for item in sandbox.sent() if item["type"] == "text"]
    assert sorted(sent_to_meta) == sorted(texts), "each reply sent to Meta exactly once"
    created = Event.objects.filter(type=MESSAGE_CREATED).values_list("payload__message__wamid", flat=True)
    assert sorted(w for w in created if w in set(wamids)) == sorted(wamids), "each delivery applied once"

    # The page lost its socket with the master, came back live and shows every message once, in order.
    expect(state).to_have_attribute("data-state", "live", timeout=30000)
    states = page.evaluate("window.socketStates")
    assert "reconnecting" in states and states[-1] == "live", states
    everything = [message["id"] for message in api.messages(conversation.pk)]  # oldest first
    expect(page.locator("#messages .message")).to_have_count(len(everything), timeout=30000)
    shown = page.locator("#messages .message").evaluate_all("items => items.map(i => Number(i.dataset.messageId))")
    assert shown == everything
    page.context.close()


def test_a_master_name_no_sentinel_knows_is_named_to_the_operator_and_loses_no_webhook(stack, redis_group, number):
    """Only a connection can tell that no sentinel monitors REDIS_SENTINEL_MASTER: the web process still stores and
    acknowledges every webhook, says what is wrong in its log and in /readyz, and a stack configured right applies
    what it stored."""
    env = {**stack.env, "REDIS_SENTINEL_MASTER": "inbox-misspelt"}
    daphne, base_url = start_daphne(env=env, logs=stack.logs, name="daphne-misspelt-master")
    try:
        wamid, payload = inbound("Hello while the master name is wrong")
        response = Stack(base_url=base_url, redis=redis_group, env=env, logs=stack.logs).post_webhook(payload)
        assert response.status_code == 200
        event = WebhookEvent.objects.get(pk=response.json()["event_id"])
        ready = requests.get(f"{base_url}/readyz", timeout=10)
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert "REDIS_SENTINEL_MASTER" in checks["redis"]["error"], checks
        assert "inbox-misspelt" not in checks["redis"]["error"], "names stay in the log"
        assert checks["celery_worker"]["ok"] is False
        log = (stack.logs / "daphne-misspelt-master.log").read_text()
        assert "knows a master named 'inbox-misspelt': check REDIS_SENTINEL_MASTER" in log
    finally:
        stop_process(daphne)
    # The stack with the right name has it processed by its sweep: stored before Redis was touched, never lost.
    wait_for(
        lambda: WebhookEvent.objects.get(pk=event.pk).state == WebhookEventState.PROCESSED,
        timeout=60,
        what="the sweep of the stack configured right",
    )
    assert Message.objects.filter(wamid=wamid).count() == 1

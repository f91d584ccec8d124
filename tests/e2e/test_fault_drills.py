"""Fault drills with real processes: each stops the part it drills (its own Redis, worker, database link,
Meta's answer) while webhooks keep arriving or staff keep replying, then checks that nothing was lost or
doubled once the part is back. Replies go to the Meta sandbox, a real server that records every send."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from django.conf import settings

from conversations.models import BusinessNumber, Message
from sandbox.simulation import envelope, message_change, new_wamid, signed_request
from tests.e2e.conftest import (
    NUMBER,
    ROOT,
    SANDBOX_TOKEN,
    WABA,
    free_port,
    stack_env,
    start_daphne,
    start_worker,
    stop_process,
    wait_for,
)
from tests.e2e.test_replying import (  # noqa: F401 (conversation is a fixture)
    conversation,
    wait_status,
)
from webhooks.models import WebhookEvent, WebhookEventState

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def stack_overrides(sandbox_process) -> dict[str, str]:
    # The outbound sweep looks every second for work a broker outage left behind.
    return {
        "META_GRAPH_API_URL": sandbox_process.base_url,
        "META_MEDIA_HOSTS": sandbox_process.base_url,
        "META_ACCESS_TOKEN": SANDBOX_TOKEN,
        "OUTBOUND_SWEEP_INTERVAL_SECONDS": "1",
        "OUTBOUND_SWEEP_GRACE_SECONDS": "1",
    }


def one_message(wamid: str | None = None, **kwargs) -> dict:
    return envelope(
        waba_id=WABA, changes=[message_change(**NUMBER, wa_id="447700900461", wamid=wamid or new_wamid(), **kwargs)]
    )


def all_processed() -> bool:
    return not WebhookEvent.objects.filter(state=WebhookEventState.PENDING).exists()


def test_redis_stopped_during_a_stream_answers_200_and_processes_everything(stack, number):
    sent, statuses = [], []
    for i in range(30):
        if i == 10:
            stack.redis.stop()
        if i == 20:
            stack.redis.start()
        wamid = new_wamid()
        statuses.append(stack.post_webhook(one_message(wamid)).status_code)
        sent.append(wamid)
        time.sleep(0.05)
    assert statuses == [200] * 30
    wait_for(all_processed, timeout=60, what="every event after Redis returned")
    assert sorted(Message.objects.values_list("wamid", flat=True)) == sorted(sent)


def test_worker_killed_mid_batch_is_redone_once(stack, number):
    batches = []
    for _ in range(4):
        changes = [message_change(**NUMBER, wa_id=f"4477009{i:05d}", wamid=new_wamid()) for i in range(150)]
        batches.append([c["value"]["messages"][0]["id"] for c in changes])
        assert stack.post_webhook(envelope(waba_id=WABA, changes=changes)).status_code == 200
    time.sleep(0.3)  # the worker is inside a batch by now (each event is one transaction)
    worker = stack.processes[1]
    os.killpg(worker.pid, signal.SIGKILL)  # the whole pool, with no chance to ack or clean up
    worker.wait(timeout=10)
    stack.processes[1] = start_worker(env=stack.env, logs=stack.logs)
    wait_for(all_processed, timeout=90, what="the batches after the worker came back")
    expected = sorted(w for batch in batches for w in batch)
    assert sorted(Message.objects.values_list("wamid", flat=True)) == expected, "each message exactly once"


class TcpProxy:
    """A link to PostgreSQL the test can cut and restore."""

    def __init__(self, target_port: int):
        self.port = free_port()
        self.target_port = target_port
        self.server: socket.socket | None = None
        self.connections: list[socket.socket] = []

    def start(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            # shutdown() first: close() alone does not wake a thread blocked in accept(), which would
            # go on accepting on the closed socket.
            with contextlib.suppress(OSError):
                self.server.shutdown(socket.SHUT_RDWR)
            self.server.close()
            self.server = None
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.close()
        self.connections.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()


def test_database_unreachable_answers_503_and_the_same_delivery_succeeds_later(stack, number, e2e_database_url):
    db = settings.DATABASES["default"]
    proxy = TcpProxy(target_port=int(db["PORT"] or 5432))
    proxied_url = e2e_database_url.replace(f":{db['PORT'] or 5432}/", f":{proxy.port}/")
    env = stack_env(database_url=proxied_url, redis_url=stack.redis.url, DATABASE_CONNECT_TIMEOUT="2")
    proxy.start()
    daphne, base_url = start_daphne(env=env, logs=stack.logs, name="daphne-proxied")
    try:
        body, headers = signed_request(one_message(), app_secret=settings.META_APP_SECRET)
        proxy.stop()
        assert requests.post(f"{base_url}/api/webhook", data=body, headers=headers, timeout=30).status_code == 503
        assert not WebhookEvent.objects.exists(), "never 200 for what was not stored"
        proxy.start()
        assert requests.post(f"{base_url}/api/webhook", data=body, headers=headers, timeout=30).status_code == 200
        wait_for(lambda: Message.objects.count() == 1, timeout=30, what="the redelivered message")
    finally:
        stop_process(daphne)
        proxy.stop()


def test_poison_item_is_recorded_the_rest_continue_and_replay_works_after_the_fix(stack, number):
    good_before, good_after = new_wamid(), new_wamid()
    poison = one_message(timestamp=10**20)  # no datetime can hold it: processing that item raises
    stray = envelope(
        waba_id=WABA,
        changes=[
            message_change(
                phone_number_id="555000555", display_phone_number="15550005555", wa_id="447700900462", wamid=new_wamid()
            )
        ],
    )
    for payload in (one_message(good_before), poison, stray, one_message(good_after)):
        assert stack.post_webhook(payload).status_code == 200
    wait_for(all_processed, what="the stream")
    assert set(Message.objects.values_list("wamid", flat=True)) == {good_before, good_after}
    bad = WebhookEvent.objects.exclude(item_errors=[]).get(state=WebhookEventState.PROCESSED)
    assert "messages[0]" in bad.item_errors[0]["path"]
    unroutable = WebhookEvent.objects.get(state=WebhookEventState.UNROUTABLE)
    # The fix: the number the stray delivery was for is registered; then the operator replays.
    BusinessNumber.objects.create(phone_number_id="555000555", display_phone_number="15550005555", waba_id=WABA)
    result = subprocess.run(
        [sys.executable, "manage.py", "webhooks_replay", "--unroutable"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    wait_for(lambda: WebhookEvent.objects.get(pk=unroutable.pk).state == WebhookEventState.PROCESSED, what="replayed")
    assert Message.objects.filter(conversation__number__phone_number_id="555000555").count() == 1


def test_replies_sent_while_redis_is_down_are_each_delivered_once_it_is_back(stack, sandbox, api, conversation):
    texts = [f"Reply {n} while Redis is down" for n in range(20)]
    stack.redis.stop()
    try:
        responses = [api.send(conversation.pk, type="text", text=text) for text in texts]
        read = api.session.post(f"{stack.base_url}/api/conversations/{conversation.pk}/read/", timeout=10)
    finally:
        stack.redis.start()
    assert [response.status_code for response in responses] == [202] * 20
    assert read.status_code == 200
    ids = [response.json()["id"] for response in responses]
    wait_for(
        lambda: Message.objects.filter(pk__in=ids, wamid__isnull=False).count() == 20,
        timeout=90,
        what="every reply accepted by Meta after Redis came back",
    )
    wait_for(lambda: sandbox.reads(), timeout=30, what="the read receipt owed since Redis was down")
    time.sleep(3)  # three more sweeps: none sends anything again
    sent = sorted(item["request"]["text"]["body"] for item in sandbox.sent() if item["type"] == "text")
    assert sent == sorted(texts), "each reply sent exactly once"
    assert len(sandbox.reads()) == 1


def test_a_reply_on_its_way_to_meta_when_redis_dies_is_recorded_as_sent(stack, sandbox, api, conversation):
    """Celery cancels the running late-acknowledged tasks of a worker that loses its broker; a send cancelled
    during its call to Meta would stay claimed, and turn unconfirmed minutes later, for a message Meta had."""
    # No status webhooks: only the send's own answer can tell that Meta has it.
    sandbox.configure(answer_lost_next={"mode": "delay", "seconds": 3.0}, statuses=[])
    message_id = api.send(conversation.pk, type="text", text="On its way as Redis dies").json()["id"]
    wait_for(lambda: sandbox.sent(), what="the send to reach Meta")
    stack.redis.stop()
    try:
        time.sleep(4)  # Meta answers while the worker has no broker
    finally:
        stack.redis.start()
    wait_for(
        lambda: Message.objects.filter(pk=message_id, wamid__isnull=False).exists(),
        timeout=30,
        what="the wamid Meta answered with",
    )
    message = Message.objects.get(pk=message_id)
    assert (message.status, message.send_claimed_at, message.send_attempts) == ("pending", None, 1)
    [sent] = sandbox.sent()
    assert sent["wamid"] == message.wamid


def test_a_send_whose_answer_is_lost_is_not_sent_again_and_its_status_webhook_confirms_it(sandbox, api, conversation):
    # Statuses come late, so a resend after the usual backoff would go out before they could attach the wamid.
    sandbox.configure(answer_lost_next={"mode": "drop"}, status_delay=3.0)
    message_id = api.send(conversation.pk, type="text", text="Did this arrive?").json()["id"]
    wait_status(api, conversation, message_id, "unconfirmed")
    item = wait_status(api, conversation, message_id, "read", timeout=30)
    [sent] = sandbox.sent()
    assert sent["wamid"] == item["wamid"]


def test_a_second_beat_started_by_mistake_sends_nothing_twice(stack, sandbox, api, conversation):
    """Beat is meant to run once (the worker's ``--beat`` here, ``config/bin/beat`` in production); a second one
    doubles the sweeps, and every sweep is idempotent: work is claimed in the database, not by who enqueued it."""
    second_beat = subprocess.Popen(
        [str(ROOT / "config" / "bin" / "beat")],
        cwd=ROOT,
        env={**stack.env, "PYTHON": sys.executable, "BEAT_SCHEDULE": str(stack.logs / "second-beat-schedule")},
        stdout=open(stack.logs / "second-beat.log", "wb"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: b"beat: Starting" in (stack.logs / "second-beat.log").read_bytes(), timeout=30, what="beat")
        texts = [f"Reply {n} with two beats" for n in range(10)]
        wamids = [new_wamid() for _ in range(10)]
        stack.redis.stop()  # what is stored now waits for the sweeps of both beats
        try:
            replies = [api.send(conversation.pk, type="text", text=text) for text in texts]
            webhooks = [stack.post_webhook(one_message(wamid, content={"text": {"body": "hi"}})) for wamid in wamids]
        finally:
            stack.redis.start()
        assert [r.status_code for r in replies] == [202] * 10 and [r.status_code for r in webhooks] == [200] * 10
        ids = [reply.json()["id"] for reply in replies]
        wait_for(
            lambda: Message.objects.filter(pk__in=ids, wamid__isnull=False).count() == 10 and all_processed(),
            timeout=90,
            what="every reply sent and every webhook processed after Redis came back",
        )
        time.sleep(3)  # three more sweeps of each beat
    finally:
        stop_process(second_beat)
    sent = sorted(item["request"]["text"]["body"] for item in sandbox.sent() if item["type"] == "text")
    assert sent == sorted(texts), "each reply sent exactly once"
    assert Message.objects.filter(wamid__in=wamids).count() == 10

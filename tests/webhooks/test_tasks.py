"""Processing drains: every stored event processed once, none stranded, bugs and outages contained."""

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import OperationalError, transaction
from django.utils import timezone

from conversations.models import Message
from tests.webhooks.test_payloads import PAYLOADS
from webhooks import drain, services
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.tasks import drain_webhook_events_task, sweep_pending_webhook_events

pytestmark = pytest.mark.django_db


def stored_event(name: str = "message_text.json", *, wamid: str | None = None) -> WebhookEvent:
    payload = json.loads((PAYLOADS / name).read_text())
    if wamid is not None:
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = wamid
    return WebhookEvent.objects.create(raw_body=json.dumps(payload))


@pytest.fixture
def enqueued(monkeypatch):
    """Record drain tasks instead of running them (the slot each was asked for)."""
    slots = []
    monkeypatch.setattr(services, "enqueue_drain", lambda *, slot: slots.append(slot))
    return slots


def state_of(event: WebhookEvent) -> str:
    event.refresh_from_db()
    return event.state


def test_transient_database_errors_retry_the_drain_until_success(number, monkeypatch):
    event = stored_event()
    real = drain._apply_items
    calls = []

    def flaky(messages, statuses):
        calls.append(len(messages))
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return real(messages, statuses)

    monkeypatch.setattr(drain, "_apply_items", flaky)
    drain_webhook_events_task.apply()
    assert len(calls) == 3
    assert state_of(event) == WebhookEventState.PROCESSED
    assert Message.objects.count() == 1
    assert cache.get("webhooks:drain:0") is None


def test_a_bug_for_one_event_is_recorded_on_it_its_writes_undone_and_the_drain_goes_on(number, monkeypatch):
    broken, fine = stored_event(wamid="wamid.BROKEN"), stored_event(wamid="wamid.FINE")
    real = drain.receive_inbound_messages

    def buggy(*, items):
        stored = real(items=items)
        if any(item.message.wamid == "wamid.BROKEN" for item in items):
            raise KeyError("surprise")  # after its writes: they must be rolled back with it
        return stored

    monkeypatch.setattr(drain, "receive_inbound_messages", buggy)
    assert drain_webhook_events_task.apply().get() == 2
    broken.refresh_from_db()
    assert (broken.state, broken.item_errors) == (
        WebhookEventState.PROCESSED,
        [{"path": "entry[0].changes[0].messages[0]", "error": "KeyError: 'surprise'"}],
    )
    assert state_of(fine) == WebhookEventState.PROCESSED
    assert list(Message.objects.values_list("wamid", flat=True)) == ["wamid.FINE"]


def test_a_delivery_600_levels_deep_with_a_nul_is_processed_and_holds_up_nothing(post_webhook, number):
    # 3.6 KB that json.loads reads; cleaning its strings once recursed a level per object, past Python's limit,
    # and every drain stopped at this delivery, oldest first, the ones after it never processed.
    deep = json.loads((PAYLOADS / "message_text.json").read_text())
    nested: object = "a\x00b"
    for _ in range(600):
        nested = {"a": nested}
    deep["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["referral"] = nested
    assert post_webhook(deep).status_code == 200
    after = json.loads((PAYLOADS / "message_text.json").read_text())
    after["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid.AFTER"
    assert post_webhook(after).status_code == 200

    assert (
        list(WebhookEvent.objects.order_by("pk").values_list("state", flat=True)) == [WebhookEventState.PROCESSED] * 2
    )
    assert Message.objects.count() == 2
    bottom = Message.objects.exclude(wamid="wamid.AFTER").get().content["referral"]
    for _ in range(600):
        bottom = bottom["a"]
    assert bottom == "ab"


def test_an_event_that_cannot_be_read_is_marked_failed_and_the_drain_goes_on(number, monkeypatch):
    broken, fine = stored_event("message_reaction.json"), stored_event(wamid="wamid.FINE")
    real = drain.parse_delivery

    def breaking(payload):
        if payload["entry"][0]["changes"][0]["value"]["messages"][0]["type"] == "reaction":
            raise ValueError("broke while reading")
        return real(payload)

    monkeypatch.setattr(drain, "parse_delivery", breaking)
    assert drain_webhook_events_task.apply().get() == 2
    broken.refresh_from_db()
    assert (broken.state, broken.attempts) == (WebhookEventState.FAILED, 1)
    assert broken.error.startswith("ValueError: broke while reading") and "Traceback" in broken.error
    assert state_of(fine) == WebhookEventState.PROCESSED


def test_draining_twice_changes_nothing(number):
    event = stored_event()
    drain_webhook_events_task.apply()
    drain_webhook_events_task.apply()
    event.refresh_from_db()
    assert (event.state, event.attempts, Message.objects.count()) == (WebhookEventState.PROCESSED, 1, 1)


def test_replay_reprocesses_without_doubling(number, django_capture_on_commit_callbacks):
    event = stored_event()
    drain_webhook_events_task.apply()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.replay_webhook_events(event_ids=[event.pk])
    event.refresh_from_db()
    assert (event.state, event.attempts, Message.objects.count()) == (WebhookEventState.PROCESSED, 2, 1)


def test_a_delivery_stored_while_a_drain_runs_enqueues_nothing_and_is_still_processed(number, enqueued):
    assert services.request_drain() is True
    assert enqueued == [0]  # the first request enqueues a drain and sets the flag
    event = stored_event()
    assert services.request_drain() is True
    assert enqueued == [0]  # the flag is set: no second task per delivery
    assert drain.drain_webhook_events() == 1
    assert state_of(event) == WebhookEventState.PROCESSED
    assert cache.get("webhooks:drain:0") is None  # done: the next delivery enqueues a drain again
    services.request_drain()
    assert enqueued == [0, 0]


def test_a_delivery_committed_just_before_the_drain_clears_its_flag_is_not_stranded(number, monkeypatch, enqueued):
    """The race the last look closes: the drain found nothing, then a delivery commits, sees the flag still
    set and enqueues nothing; the drain must still process it before it stops."""
    real = drain.process_pending_webhook_events
    late = []

    def then_a_delivery_arrives(*, limit):
        done = real(limit=limit)
        if done == 0 and not late:
            late.append(stored_event())
            services.request_drain()  # flag still set: no task
        return done

    monkeypatch.setattr(drain, "process_pending_webhook_events", then_a_delivery_arrives)
    cache.add("webhooks:drain:0", "1")
    assert drain.drain_webhook_events() == 1
    assert state_of(late[0]) == WebhookEventState.PROCESSED
    assert enqueued == []


def test_a_backlog_brings_in_a_second_drain_up_to_the_configured_concurrency(number, settings, enqueued):
    settings.WEBHOOK_DRAIN_BATCH = 2
    settings.WEBHOOK_DRAIN_CONCURRENCY = 2
    events = [stored_event(wamid=f"wamid.BACKLOG{n}") for n in range(5)]
    assert drain.drain_webhook_events(slot=0) == 5
    assert enqueued == [1]  # slot 1 requested once (its flag then stays set until that drain runs)
    assert {state_of(e) for e in events} == {WebhookEventState.PROCESSED}
    enqueued.clear()
    cache.delete("webhooks:drain:1")
    settings.WEBHOOK_DRAIN_CONCURRENCY = 1
    for n in range(5):
        stored_event(wamid=f"wamid.SOLO{n}")
    assert drain.drain_webhook_events(slot=0) == 5
    assert enqueued == []


class FakeClock:
    """``time`` for the drain loop: sleeping moves the clock on at once, and the sleeps are recorded."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


@pytest.fixture
def scripted_drain(settings, monkeypatch, enqueued):
    """A drain on a fake clock whose rounds find the given numbers of events (no database involved);
    returns (run, clock): ``run(counts, concurrency=1)`` drains slot 0 and returns its total."""
    settings.WEBHOOK_DRAIN_BATCH = 1000
    clock = FakeClock()
    monkeypatch.setattr(drain, "time", clock)

    def run(counts: list[int], *, concurrency: int = 1) -> int:
        settings.WEBHOOK_DRAIN_CONCURRENCY = concurrency
        rounds = iter(counts)
        monkeypatch.setattr(drain, "process_pending_webhook_events", lambda *, limit: next(rounds))
        return drain.drain_webhook_events(slot=0)

    return run, clock


def test_round_interval_stretches_only_when_events_arrive_at_the_busy_rate():
    busy = drain.DRAIN_BUSY_RATE
    assert drain.round_interval(done=40, seconds_since_last_round=None) == drain.DRAIN_ROUND_SECONDS
    assert drain.round_interval(done=busy // 20 - 1, seconds_since_last_round=0.05) == drain.DRAIN_ROUND_SECONDS
    assert drain.round_interval(done=busy // 20, seconds_since_last_round=0.05) == drain.DRAIN_BUSY_ROUND_SECONDS
    assert drain.round_interval(done=busy, seconds_since_last_round=0.5) == drain.DRAIN_BUSY_ROUND_SECONDS
    # A lingering drain found a few deliveries 10 ms after an empty round: a trickle, not a busy number.
    assert drain.round_interval(done=5, seconds_since_last_round=0.01) == drain.DRAIN_ROUND_SECONDS
    assert drain.DRAIN_BUSY_ROUND_SECONDS > drain.DRAIN_ROUND_SECONDS


def test_a_busy_drain_waits_longer_between_rounds_and_a_quiet_one_does_not(scripted_drain):
    run, clock = scripted_drain
    # Events found per round: a quiet start (10 in 50 ms: 200/s), a burst (200 in 50 ms: 4,000/s), then
    # what the longer wait gathered at a quieter rate (50 in 250 ms: 200/s), then nothing.
    assert run([10, 10, 200, 50, 0, 0]) == 270
    assert clock.sleeps == [0.05, 0.05, 0.25, 0.05]


def test_a_few_deliveries_right_after_a_quiet_spell_do_not_stretch_the_rounds(scripted_drain, settings, monkeypatch):
    run, clock = scripted_drain
    settings.WEBHOOK_DRAIN_LINGER_SECONDS = 0.1
    looks = iter([True])  # the lingering drain's first look finds the 5; later looks find nothing
    monkeypatch.setattr(drain, "_has_pending_events", lambda: next(looks, False))
    assert run([10, 0, 5, 0, 0, 0]) == 15
    # 10 events, a 50 ms wait; an empty round, a 10 ms look that finds 5; then a 50 ms wait, not 250.
    assert clock.sleeps[:3] == [0.05, 0.01, 0.05]
    assert drain.DRAIN_BUSY_ROUND_SECONDS not in clock.sleeps


def test_a_second_drain_is_asked_for_when_events_wait_half_a_second_not_for_a_busy_round(
    number, scripted_drain, monkeypatch, enqueued
):
    run, clock = scripted_drain
    waiting = stored_event(wamid="wamid.WAITING")

    def left_waiting(seconds: float) -> None:
        """Make the drain's lag check find an event that arrived ``seconds`` ago."""
        WebhookEvent.objects.filter(pk=waiting.pk).update(received_at=timezone.now() - timedelta(seconds=seconds))

    # Busy rounds 250 ms apart whose events waited up to 0.3 s: one drain keeps up.
    left_waiting(0.3)
    run([600, 600, 0, 0], concurrency=2)
    assert clock.sleeps == [0.05, 0.25]
    assert enqueued == []
    # Something held the drain up: an event has waited 0.6 s.
    left_waiting(0.6)
    run([10, 0, 0], concurrency=2)
    assert enqueued == [1]


def test_a_drain_past_its_time_budget_yields_the_worker_and_keeps_its_flag(number, settings, enqueued):
    settings.WEBHOOK_DRAIN_BATCH = 2
    settings.WEBHOOK_DRAIN_SECONDS = 0
    settings.WEBHOOK_DRAIN_CONCURRENCY = 1
    for n in range(5):
        stored_event(wamid=f"wamid.BUDGET{n}")
    assert drain.drain_webhook_events(slot=0) == 2
    assert enqueued == [0]  # its continuation, behind whatever else is queued
    assert cache.get("webhooks:drain:0") == "1"
    assert WebhookEvent.objects.filter(state=WebhookEventState.PENDING).count() == 3


def test_redis_unreachable_leaves_the_event_to_the_sweep(number, monkeypatch, enqueued):
    def down(*args, **kwargs):
        raise ConnectionError("Connection refused")

    monkeypatch.setattr(cache, "add", down)
    assert services.request_drain() is False
    assert enqueued == []


def test_sweep_requests_a_drain_only_for_events_pending_past_the_grace_period(number, settings):
    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 0
    old, done = stored_event(wamid="wamid.OLD"), stored_event(wamid="wamid.DONE")
    WebhookEvent.objects.filter(pk=done.pk).update(state=WebhookEventState.PROCESSED)
    assert sweep_pending_webhook_events.apply().get() == 1
    assert state_of(old) == WebhookEventState.PROCESSED
    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 3600
    fresh = stored_event(wamid="wamid.FRESH")
    assert sweep_pending_webhook_events.apply().get() == 0
    assert state_of(fresh) == WebhookEventState.PENDING


def test_a_flag_left_by_a_dead_worker_expires_and_the_sweep_then_brings_a_drain(number, settings):
    import time

    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 0
    cache.add("webhooks:drain:0", "1", timeout=1)  # its worker died: nobody refreshes it
    event = stored_event()
    assert sweep_pending_webhook_events.apply().get() == 1
    assert state_of(event) == WebhookEventState.PENDING  # the flag still stands for a drain
    time.sleep(1.1)
    assert sweep_pending_webhook_events.apply().get() == 1
    assert state_of(event) == WebhookEventState.PROCESSED


def test_sweep_leaves_a_live_drains_flag_alone(number, settings, enqueued):
    settings.WEBHOOK_SWEEP_GRACE_SECONDS = 0
    cache.add("webhooks:drain:0", "1")  # a live drain: it will get to the events
    event = stored_event()
    assert sweep_pending_webhook_events.apply().get() == 1
    assert enqueued == []
    assert cache.get("webhooks:drain:0") == "1"
    assert state_of(event) == WebhookEventState.PENDING


@pytest.mark.django_db(transaction=True)  # the late delivery commits from another thread
def test_a_lingering_drain_takes_deliveries_that_arrive_soon_after_without_a_new_task(number, settings, enqueued):
    import threading
    import time

    from django.db import connection

    settings.WEBHOOK_DRAIN_LINGER_SECONDS = 1.5
    first = stored_event(wamid="wamid.FIRST")
    late = []

    def deliver_later():
        time.sleep(0.3)
        try:
            late.append(stored_event(wamid="wamid.LATE"))
            services.request_drain()  # the flag is still set: no task
        finally:
            connection.close()

    thread = threading.Thread(target=deliver_later)
    thread.start()
    started = time.monotonic()
    processed = drain.drain_webhook_events()
    thread.join()
    assert processed == 2
    assert state_of(first) == state_of(late[0]) == WebhookEventState.PROCESSED
    assert enqueued == []
    assert 1.5 <= time.monotonic() - started < 5  # it waited out its linger after the last event, then stopped
    assert cache.get("webhooks:drain:0") is None


def test_a_drain_that_falls_behind_brings_in_a_second_one_before_its_rounds_are_full(
    number, settings, enqueued, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    settings.WEBHOOK_DRAIN_CONCURRENCY = 2
    waiting = [stored_event(wamid=f"wamid.WAITED{n}") for n in range(3)]
    WebhookEvent.objects.filter(pk__in=[e.pk for e in waiting]).update(
        received_at=timezone.now() - timedelta(seconds=5)
    )
    real = drain.process_pending_webhook_events
    # Rounds that never fill up (a slow worker): only the events' age can bring the second drain in.
    monkeypatch.setattr(drain, "process_pending_webhook_events", lambda *, limit: real(limit=1))
    assert drain.drain_webhook_events() == 3
    assert enqueued == [1]


def test_a_drain_that_keeps_up_works_alone(number, settings, enqueued, monkeypatch):
    settings.WEBHOOK_DRAIN_CONCURRENCY = 2
    for n in range(3):
        stored_event(wamid=f"wamid.FRESH{n}")
    real = drain.process_pending_webhook_events
    monkeypatch.setattr(drain, "process_pending_webhook_events", lambda *, limit: real(limit=1))
    assert drain.drain_webhook_events() == 3
    assert enqueued == []


@pytest.fixture
def redis_flags(settings):
    """Drain flags in a real Redis (the promise exists only there)."""
    import os

    settings.REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    services.clear_drain_flags()
    yield
    services.clear_drain_flags()


def test_a_web_process_trusting_the_drains_promise_never_strands_a_delivery(number, enqueued, monkeypatch, redis_flags):
    """A web process that read the drain's promise stores deliveries without asking Redis. The drain must
    not clear its flag and take its last look before that promise has run out: a delivery committed just
    after the last look then finds no flag and queues a new drain, instead of trusting a stale promise."""
    import time

    # Long enough that the three rounds below fit in one promise on a loaded machine too.
    monkeypatch.setattr(drain, "_promise_seconds", lambda: 1.5)
    asked_redis, flag_cleared = [], []
    real_ask, real_delete, real_set = services.flags.add_and_read_promise, services.flags.delete, services.flags.set
    monkeypatch.setattr(
        services.flags, "add_and_read_promise", lambda *a, **kw: asked_redis.append(1) or real_ask(*a, **kw)
    )
    monkeypatch.setattr(services.flags, "delete", lambda *keys: flag_cleared.append(True) or real_delete(*keys))
    monkeypatch.setattr(services.flags, "set", lambda *a, **kw: flag_cleared.clear() or real_set(*a, **kw))
    stored_event(wamid="wamid.FIRST")
    services.request_drain()
    assert enqueued == [0]
    real_round = drain.process_pending_webhook_events
    during, trusted, after_last_look = [], [], []

    def deliveries_keep_coming(*, limit):
        done = real_round(limit=limit)
        if done == 0 and flag_cleared and not after_last_look:  # this round was the last look
            after_last_look.append(stored_event(wamid="wamid.AFTER_LAST_LOOK"))
            services.request_drain()
        elif done == 0 and len(during) < 3:
            during.append(stored_event(wamid=f"wamid.DURING{len(during)}"))
            asked_before = len(asked_redis)
            services.request_drain()
            trusted.append(len(asked_redis) == asked_before)
        return done

    monkeypatch.setattr(drain, "process_pending_webhook_events", deliveries_keep_coming)
    started = time.monotonic()
    assert drain.drain_webhook_events() == 4
    assert all(state_of(event) == WebhookEventState.PROCESSED for event in during)
    assert trusted == [False, True, True]  # the first read the promise (with its SET), the others relied on it
    # The one after the last look is pending with a new drain queued for it, not stranded.
    assert state_of(after_last_look[0]) == WebhookEventState.PENDING
    assert enqueued == [0, 0]
    assert time.monotonic() - started >= 1.5  # it outlived its last promise


def test_drain_flags_live_in_redis_when_there_is_redis(settings):
    import os

    import redis

    settings.REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    direct = redis.Redis.from_url(settings.REDIS_URL)
    key = "webhooks:drain:test-flag"
    try:
        assert services.flags.add_and_read_promise(key, ttl=60)[0] is True
        assert services.flags.add_and_read_promise(key, ttl=60)[0] is False  # one drain per slot
        assert 0 < direct.ttl(key) <= 60
        services.flags.set(key, ttl=30)
        assert direct.ttl(key) <= 30
        assert services.flags.add_and_read_promise(key, ttl=60) == (False, 0)  # no promise made
        services.flags.promise(seconds=0.3)
        added, promise_ms = services.flags.add_and_read_promise(key, ttl=60)
        assert added is False and 0 < promise_ms <= 300 and services.flags.promise_left()
        services.flags.delete(key)
        assert direct.get(key) is None
        assert services.flags.add_and_read_promise(key, ttl=60)[0] is True
    finally:
        direct.delete(key, services.DRAIN_PROMISE)
        direct.close()

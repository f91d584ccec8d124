"""Sends paced to a number's throughput (conversations/services/pacing.py), on a clock of the test's own."""

import pytest
from django.core.cache import cache

from conversations.services import pacing
from conversations.services.errors import RetryLater
from conversations.services.pacing import take_send_slot
from tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self, at: float):
        self.at = at
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.at += seconds


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()


def send(number, clock: Clock, count: int) -> list[float]:
    """When each of ``count`` sends got its slot."""
    times = []
    for _ in range(count):
        take_send_slot(number=number, clock=clock, sleep=clock.sleep)
        times.append(clock.at)
    return times


def test_a_coexistence_number_sends_twenty_a_second_and_the_twenty_first_waits_for_the_next_second():
    number = BusinessNumberFactory(on_business_app=True)
    clock = Clock(1_000.25)

    times = send(number, clock, 41)

    assert times[:20] == [1_000.25] * 20
    assert times[20:40] == [1_001.0] * 20
    assert times[40] == 1_002.0
    assert clock.slept == [0.75, 1.0]


def test_numbers_are_paced_apart_and_by_their_own_throughput():
    standard, high = BusinessNumberFactory(), BusinessNumberFactory(throughput_level="HIGH")
    shared = BusinessNumberFactory(on_business_app=True)
    clock = Clock(2_000.0)

    assert send(shared, clock, 20) == [2_000.0] * 20
    assert send(standard, clock, 80) == [2_000.0] * 80  # a number's full second leaves the others theirs
    assert send(high, clock, 1000) == [2_000.0] * 1000
    assert clock.slept == []


def test_a_send_that_would_wait_too_long_is_retried_later(monkeypatch):
    number = BusinessNumberFactory(on_business_app=True)
    clock = Clock(3_000.0)
    send(number, clock, 20)
    monkeypatch.setattr(pacing, "MAX_WAIT_SECONDS", 0.0)

    with pytest.raises(RetryLater, match="20 messages a second"):
        take_send_slot(number=number, clock=clock, sleep=clock.sleep)
    assert clock.slept == []

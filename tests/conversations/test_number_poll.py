"""The periodic poll of each number's fields on the Graph API (against the Meta sandbox), backing the
account-level webhooks up: a change it finds is applied and recorded once, with no delivery; a poll that finds
nothing new records nothing; an expired token flags the number; Meta away is retried."""

import pytest
import requests
from django.conf import settings

from conversations.models import AccountChange, BusinessAccount, BusinessNumber, ChangeSource
from conversations.services import account
from conversations.services.errors import RetryLater
from conversations.tasks import poll_number_task, poll_numbers_task
from realtime.models import Event
from tests.factories import BusinessNumberFactory
from tests.webhooks.test_account_fields import sample, value_of

pytestmark = pytest.mark.django_db

PHONE_NUMBER_ID = "106540352240077"


@pytest.fixture
def sandbox(start_sandbox):
    sandbox = start_sandbox()
    sandbox.configure({"numbers": {PHONE_NUMBER_ID: "15550787777"}})
    return sandbox


@pytest.fixture
def line(sandbox):
    return BusinessNumberFactory(
        phone_number_id=PHONE_NUMBER_ID, display_phone_number="15550787777", waba_id=sandbox.config.waba_id
    )


def set_on_meta(sandbox, **state):
    response = requests.post(
        f"{sandbox.base_url}/_sandbox/number_quality", json={"phone_number_id": PHONE_NUMBER_ID, **state}, timeout=5
    )
    assert response.status_code == 200, response.text


def test_a_change_found_by_the_poll_is_applied_once_and_then_nothing_is_recorded(sandbox, line):
    set_on_meta(sandbox, quality_rating="RED", status="FLAGGED", current_limit="TIER_250")

    assert poll_number_task.delay(line.pk).get() is True
    line.refresh_from_db()
    assert (line.quality_rating, line.meta_status, line.messaging_limit_tier, line.throughput_level) == (
        "RED",
        "FLAGGED",
        "TIER_250",
        "STANDARD",
    )
    change = AccountChange.objects.get()
    assert (change.number, change.source, change.webhook_event, change.applied) == (line, ChangeSource.POLL, None, True)
    assert change.values["quality_rating"] == "RED"
    assert Event.objects.filter(number=line, type="number.updated").count() == 1

    assert poll_number_task.delay(line.pk).get() is False  # Meta says the same again
    assert AccountChange.objects.count() == 1
    assert Event.objects.filter(number=line, type="number.updated").count() == 1

    set_on_meta(sandbox, quality_rating="GREEN")
    assert poll_number_task.delay(line.pk).get() is True
    assert BusinessNumber.objects.get(pk=line.pk).quality_rating == "GREEN"
    assert AccountChange.objects.count() == 2
    assert AccountChange.objects.latest("pk").values == {"quality_rating": "GREEN"}


def test_the_poll_reads_the_portfolio_limit_from_version_24_on(sandbox, line, settings):
    settings.META_GRAPH_API_VERSION = "v24.0"
    set_on_meta(sandbox, portfolio_limit="TIER_100K")
    assert poll_number_task.delay(line.pk).get() is True
    assert BusinessAccount.objects.get(waba_id=line.waba_id).messaging_limit == "TIER_100K"
    asked = sandbox.state.requests[-1]["path"]
    assert "whatsapp_business_manager_messaging_limit" in asked and "messaging_limit_tier" not in asked


def test_a_webhook_older_than_what_the_poll_read_does_not_roll_it_back(sandbox, line, post_webhook):
    set_on_meta(sandbox, current_limit="TIER_10K")
    poll_number_task.delay(line.pk).get()
    payload = sample("phone_number_quality_update_upgrade")  # fired in January, delivered after the poll
    value_of(payload).update(display_phone_number="15550787777", current_limit="TIER_2K")
    del value_of(payload)["max_daily_conversations_per_business"]
    payload["entry"][0]["id"] = line.waba_id

    assert post_webhook(payload).status_code == 200
    assert BusinessNumber.objects.get(pk=line.pk).messaging_limit_tier == "TIER_10K"
    assert AccountChange.objects.get(source=ChangeSource.WEBHOOK).applied is False


def test_an_expired_token_flags_the_number_and_records_nothing(sandbox, line):
    sandbox.configure({"expire_token": True})
    assert poll_number_task.delay(line.pk).get() is False
    line.refresh_from_db()
    assert line.needs_reauthorization is True
    assert not AccountChange.objects.exists()
    # Flagged numbers are not polled until an admin sets a new token.
    sandbox.configure({"expire_token": False})
    assert poll_numbers_task.delay().get() == 0


def test_meta_out_of_reach_is_retried_later(sandbox, line):
    sandbox.stop()
    with pytest.raises(RetryLater):
        account.poll_number(number_id=line.pk)
    assert not AccountChange.objects.exists()


def test_beat_polls_every_number_that_can_be_polled(sandbox, line, django_capture_on_commit_callbacks):
    other = BusinessNumberFactory(waba_id=sandbox.config.waba_id)
    BusinessNumberFactory(needs_reauthorization=True)
    sandbox.configure({"numbers": {PHONE_NUMBER_ID: "15550787777", other.phone_number_id: other.display_phone_number}})
    set_on_meta(sandbox, quality_rating="YELLOW")

    with django_capture_on_commit_callbacks(execute=True):  # each number's poll is queued on commit
        assert poll_numbers_task.delay().get() == 2
    assert BusinessNumber.objects.get(pk=line.pk).quality_rating == "YELLOW"
    assert BusinessNumber.objects.get(pk=other.pk).quality_rating == "GREEN"  # the sandbox's default
    entry = settings.CELERY_BEAT_SCHEDULE["poll-business-numbers"]
    assert entry["task"] == poll_numbers_task.name and entry["schedule"] > 0

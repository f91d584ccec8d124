"""The inbox's work for Celery is enqueued by name (conversations/jobs.py): every name is a task registered
in every process, and every inbox task has its name there."""

import pytest
from celery.exceptions import NotRegistered

from config.celery import app
from conversations import jobs, tasks

JOB_NAMES = {value for name, value in vars(jobs).items() if name.isupper()}


def test_every_job_name_is_a_registered_task_and_every_inbox_task_has_one():
    assert len(JOB_NAMES) == 10
    assert {name for name in app.tasks if name.startswith("conversations.")} == JOB_NAMES
    assert tasks.deliver_outbound_message_task.name == jobs.DELIVER_OUTBOUND_MESSAGE
    assert app.tasks[jobs.DELIVER_OUTBOUND_MESSAGE] is tasks.deliver_outbound_message_task._get_current_object()


def test_beat_runs_inbox_work_by_a_job_name(settings):
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {jobs.SWEEP_OUTBOUND_WORK, jobs.SWEEP_CONVERSATIONS, jobs.POLL_NUMBERS} <= scheduled


def test_an_unknown_name_raises_rather_than_go_to_a_queue_no_worker_reads():
    with pytest.raises(NotRegistered):
        jobs.enqueue("conversations.tasks.no_such_task", 1)
    with pytest.raises(NotRegistered):
        jobs.enqueue_now("conversations.tasks.no_such_task", 1)


@pytest.mark.django_db
def test_work_enqueued_in_a_transaction_runs_once_it_commits(django_capture_on_commit_callbacks, monkeypatch):
    ran = []
    monkeypatch.setattr(tasks.send_read_receipt_task, "run", lambda conversation_id: ran.append(conversation_id))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        jobs.enqueue(jobs.SEND_READ_RECEIPT, 42)
        assert ran == [], "not before the commit"
    assert len(callbacks) == 1 and ran == [42]

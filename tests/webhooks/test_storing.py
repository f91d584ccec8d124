"""Storing a verified delivery (webhooks.services.store_webhook_event): the one INSERT before Meta hears 200.

On PostgreSQL in autocommit it is one statement on psycopg's connection (webhooks/fastpath.py): these pin down
that it still behaves as an ORM insert would (columns, transactions, errors).
"""

import json

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from ops.logs import log_context
from tests.webhooks.test_payloads import PAYLOADS
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.services import store_webhook_event

BODY = (PAYLOADS / "message_text.json").read_bytes()
SIGNATURE = "sha256=" + "ab" * 32


@pytest.fixture(autouse=True)
def no_drain(monkeypatch):
    monkeypatch.setattr("webhooks.services.request_drain", lambda **kwargs: False)


def store(body: bytes = BODY) -> int:
    return store_webhook_event(raw_body=body, payload=json.loads(body), signature=SIGNATURE)


@pytest.mark.django_db(transaction=True)
def test_each_delivery_is_one_pending_row_with_every_column_as_the_model_expects():
    with log_context(request_id="req-42"):
        first, second = store(), store(BODY.replace(b"Hello", b"H\xc3\xa9llo \xf0\x9f\x91\x8b"))

    assert second > first  # the statement prepared by the first call serves the second
    event = WebhookEvent.objects.get(pk=second)
    assert event.raw_body == BODY.decode().replace("Hello", "Héllo 👋")
    assert (event.signature, event.request_id, event.state, event.attempts, event.error, event.item_errors) == (
        SIGNATURE,
        "req-42",
        WebhookEventState.PENDING,
        0,
        "",
        [],
    )
    assert event.phone_number_id == json.loads(BODY)["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"]
    assert event.received_at is not None and event.processed_at is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("read_first", [False, True], ids=["first statement of the transaction", "after a read"])
def test_a_delivery_stored_inside_a_transaction_is_undone_with_it(read_first):
    # psycopg begins a transaction with its own first statement; one sent around it would have committed alone.
    store()  # one stored outside any transaction first (the prepared statement exists on the connection)

    def store_then_fail() -> None:
        with transaction.atomic():
            if read_first:
                assert WebhookEvent.objects.count() == 1
            store()
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        store_then_fail()
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_row_postgresql_refuses_raises_djangos_error_and_the_connection_goes_on():
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE webhooks_webhookevent ADD CONSTRAINT refuse_me CHECK (request_id <> 'refuse-me')")
    try:
        with log_context(request_id="refuse-me"), pytest.raises(IntegrityError, match="refuse_me"):
            store()
        assert WebhookEvent.objects.get(pk=store()).state == WebhookEventState.PENDING
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE webhooks_webhookevent DROP CONSTRAINT refuse_me")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("number_id", ["1\x002", "1\ud83d2"], ids=["NUL", "half an emoji"])
def test_a_number_id_that_is_not_digits_is_stored_as_none_not_refused(number_id):
    # Refused, the delivery would be answered 503 (or 500) on each of Meta's retries, for days.
    payload = json.loads(BODY)
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = number_id
    event = WebhookEvent.objects.get(pk=store(json.dumps(payload).encode()))
    assert event.phone_number_id == ""  # Meta's ids are digits; the drain routes by the parsed body


def event_indexes() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'webhooks_webhookevent'")
        return dict(cursor.fetchall())


def pattern_indexes() -> list[str]:
    return [name for name, sql in event_indexes().items() if "varchar_pattern_ops" in sql]


@pytest.mark.django_db(transaction=True)
def test_each_stored_event_writes_no_pattern_index_entry_and_the_migrations_reverse():
    # LIKE 'prefix%' on phone_number_id is asked by nothing; its index cost two entries per delivery.
    def number_indexes():
        return sorted(name for name, sql in event_indexes().items() if sql.endswith("(phone_number_id)"))

    assert not pattern_indexes()
    assert number_indexes() == ["webhook_event_number"]  # routing's own index stays, under the name Django knows
    call_command("migrate", "webhooks", "0005", verbosity=0)
    assert not pattern_indexes() and number_indexes() == ["webhooks_webhookevent_phone_number_id_a6253944"]
    call_command("migrate", "webhooks", "0004", verbosity=0)
    assert pattern_indexes()
    call_command("migrate", verbosity=0)  # every app: going back took the conversations' later migrations too
    assert not pattern_indexes() and number_indexes() == ["webhook_event_number"]


@pytest.mark.django_db(transaction=True)
def test_changing_the_column_later_does_not_bring_the_pattern_index_back():
    # What an AlterField of phone_number_id would do: with db_index=True in the state, Django created the
    # varchar_pattern_ops index again beside the plain one.
    old = WebhookEvent._meta.get_field("phone_number_id")
    new = old.clone()
    new.max_length = 80
    new.set_attributes_from_name("phone_number_id")
    new.model = WebhookEvent
    with connection.schema_editor() as editor:
        editor.alter_field(WebhookEvent, old, new, strict=True)
    try:
        assert not pattern_indexes()
        assert "webhook_event_number" in event_indexes()
    finally:
        with connection.schema_editor() as editor:
            editor.alter_field(WebhookEvent, new, old, strict=True)

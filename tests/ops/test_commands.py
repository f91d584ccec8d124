"""The operator commands ``register_number``, ``check_meta``, ``send_message``, ``contacts_normalize``,
``inbox_stats`` and ``purge_webhook_events``, each run as a real ``manage.py`` process.

The subprocess runs ``config.settings.base`` against the pytest-django test database (the tests are
transactional, so what they store is committed and visible to it) with no ``REDIS_URL`` unless a test
gives one, so Celery runs eagerly inside it. Where the Graph API is involved, the subprocess talks to a
``manage.py meta_sandbox`` process started here on a free port and stopped at the end, by PID.
"""

import fcntl
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.db import connection
from django.utils import timezone

from contacts.models import Contact
from conversations.models import (
    BusinessNumber,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    MessageTemplate,
    Reaction,
    ReadState,
)
from tests.e2e.conftest import RedisServer, SandboxControl, free_port, stop_process, wait_for
from tests.factories import (
    BusinessNumberFactory,
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    OutboundMessageFactory,
    UserFactory,
)
from webhooks.models import WebhookEvent, WebhookEventState

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ops-sandbox-token"
APP_SECRET = "ops-sandbox-secret"
PHONE_NUMBER_ID = "427715309981234"
DISPLAY = "15557730142"
WABA = "318273645502211"
# Nothing from the developer's environment may leak into the subprocess's settings.
INHERITED_ENV_DROPPED = ("REDIS_URL", "DATABASE_URL", "PORT", "DJANGO_SETTINGS_MODULE")
# No test may reach Meta's real servers: without a sandbox, the Graph API URL is a closed port.
NOWHERE = "http://127.0.0.1:9"

ops_db = pytest.mark.django_db(transaction=True)


def test_database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def manage(*args: str, graph: str = NOWHERE, database: bool = True, timeout: float = 60, **env_overrides: str):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in INHERITED_ENV_DROPPED and not key.startswith("META_")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_READ_DOT_ENV_FILE="0",
        META_GRAPH_API_URL=graph,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    if database:
        env["DATABASE_URL"] = test_database_url()
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def manage_all(commands: list[tuple[str, ...]], **kwargs) -> list[subprocess.CompletedProcess]:
    """Run independent invocations side by side (each is a separate process anyway), results in order."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda args: manage(*args, **kwargs), commands))


def assert_each_refused(results: list[subprocess.CompletedProcess], cases: list[tuple[list[str], str]]) -> None:
    for result, (args, message) in zip(results, cases, strict=True):
        assert result.returncode != 0, (args, result.stdout)
        assert message in result.stderr, (args, result.stderr)


class Sandbox(SandboxControl):
    def open_window(self, wa_id: str, *, ago: float = 3600) -> None:
        self.control(
            "POST", "window", {"phone_number_id": PHONE_NUMBER_ID, "wa_id": wa_id, "last_inbound_at": time.time() - ago}
        )

    def sent(self) -> list[dict]:
        return self.control("GET", "messages")


@pytest.fixture(scope="module")
def sandbox_process() -> Iterator[Sandbox]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "meta_sandbox", "--port", str(port), "--webhook-url", "http://127.0.0.1:9/api/webhook",
         "--app-secret", APP_SECRET, "--access-token", TOKEN, "--status-delay", "0.2",
         "--phone-number-id", PHONE_NUMBER_ID, "--display-phone-number", DISPLAY, "--waba-id", WABA],
        cwd=PROJECT_ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DJANGO_SETTINGS_MODULE": "config.settings.base",
             "DJANGO_READ_DOT_ENV_FILE": "0"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    sandbox = Sandbox(f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=1).ok, timeout=30, what="sandbox")
        yield sandbox
    finally:
        stop_process(process)


@pytest.fixture
def sandbox(sandbox_process) -> Sandbox:
    sandbox_process.control("POST", "reset")
    return sandbox_process


@pytest.fixture(scope="module")
def webhook_receiver(django_db_setup) -> Iterator[str]:
    """The app's webhook endpoint (Daphne, embedded Celery) on the test database, so the sandbox's status
    webhooks move sent messages on from ``pending`` as in production."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in INHERITED_ENV_DROPPED and not k.startswith("META_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base", DJANGO_READ_DOT_ENV_FILE="0", DATABASE_URL=test_database_url(),
        META_APP_SECRET=APP_SECRET, META_GRAPH_API_URL=NOWHERE,
    )  # fmt: skip
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/webhook"
    try:
        wait_for(lambda: requests.get(url, timeout=1).status_code == 403, timeout=30, what="daphne")
        yield url
    finally:
        stop_process(process)


@pytest.fixture
def sandbox_with_webhooks(sandbox, webhook_receiver) -> Sandbox:
    sandbox.configure(webhook_url=webhook_receiver)
    return sandbox


@pytest.fixture
def number(transactional_db) -> BusinessNumber:
    return BusinessNumberFactory(
        phone_number_id=PHONE_NUMBER_ID, display_phone_number=DISPLAY, waba_id=WABA, access_token=TOKEN, name="Support"
    )


def ago(**delta) -> datetime:
    return timezone.now() - timedelta(**delta)


# --- every command ---------------------------------------------------------------------------------------


COMMANDS = [
    "register_number",
    "check_meta",
    "send_message",
    "contacts_normalize",
    "inbox_stats",
    "purge_webhook_events",
]


def test_help_works():
    for result in manage_all([(command, "--help") for command in COMMANDS], database=False):
        assert result.returncode == 0, result.stderr
        assert "usage:" in result.stdout


# --- register_number ------------------------------------------------------------------------------------


@ops_db
def test_register_number_verified_with_meta_then_updated_from_settings(sandbox):
    UserFactory(username="ana")
    result = manage(
        "register_number", "--phone-number-id", PHONE_NUMBER_ID, "--waba-id", WABA, "--name", "Support",
        "--access-token", TOKEN, "--member", "ana", graph=sandbox.base_url,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    number = BusinessNumber.objects.get(phone_number_id=PHONE_NUMBER_ID)
    # The display number comes from Meta when not given.
    assert (number.display_phone_number, number.waba_id, number.name, number.access_token) == (
        DISPLAY,
        WABA,
        "Support",
        TOKEN,
    )
    assert list(number.members.values_list("username", flat=True)) == ["ana"]
    assert "Registered business number" in result.stdout
    assert "verified name Sandbox Business" in result.stdout and "quality GREEN" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    requests_seen = sandbox.control("GET", "requests")
    assert [r["path"].split("?")[0] for r in requests_seen] == [f"/v23.0/{PHONE_NUMBER_ID}"]

    # From META_* settings alone: the same number is updated, nothing else.
    BusinessNumber.objects.filter(pk=number.pk).update(needs_reauthorization=True)
    again = manage(
        "register_number", graph=sandbox.base_url, META_PHONE_NUMBER_ID=PHONE_NUMBER_ID, META_ACCESS_TOKEN=TOKEN,
        META_BUSINESS_ACCOUNT_ID=WABA, META_DISPLAY_PHONE_NUMBER=DISPLAY,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "Updated business number" in again.stdout
    assert BusinessNumber.objects.count() == 1
    number.refresh_from_db()
    assert number.name == "Support" and not number.needs_reauthorization
    assert TOKEN not in again.stdout + again.stderr


@ops_db
def test_register_number_refused_on_expired_token_and_unknown_number(sandbox):
    sandbox.configure(expire_token=True)
    expired = manage(
        "register_number", "--phone-number-id", PHONE_NUMBER_ID, "--access-token", TOKEN, graph=sandbox.base_url
    )
    assert expired.returncode != 0
    assert "token is expired/invalid (190)" in expired.stderr
    assert TOKEN not in expired.stdout + expired.stderr

    sandbox.configure(expire_token=False)
    wrong_token = manage(
        "register_number",
        "--phone-number-id",
        PHONE_NUMBER_ID,
        "--access-token",
        "not-the-token",
        graph=sandbox.base_url,
    )
    assert wrong_token.returncode != 0 and "expired/invalid (190)" in wrong_token.stderr

    unknown = manage(
        "register_number", "--phone-number-id", "999000111", "--access-token", TOKEN, graph=sandbox.base_url
    )
    assert unknown.returncode != 0
    assert "Meta does not know phone number id 999000111" in unknown.stderr
    assert not BusinessNumber.objects.exists()


@ops_db
def test_register_number_no_verify_warns_and_skips_meta():
    result = manage(
        "register_number", "--phone-number-id", "106540352240009", "--display-phone-number", "+1 555 078 0009",
        "--access-token", "secret-token-xyz", "--no-verify",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "--no-verify" in result.stderr and "NOT checked" in result.stderr
    number = BusinessNumber.objects.get(phone_number_id="106540352240009")
    assert number.display_phone_number == "15550780009"
    assert number.access_token == "secret-token-xyz"
    assert "secret-token-xyz" not in result.stdout + result.stderr


REGISTER_REFUSALS = [
    ([], "no phone number id: pass --phone-number-id or set META_PHONE_NUMBER_ID"),
    (["--phone-number-id", "12ab", "--no-verify"], "the phone number id is digits only"),
    (["--phone-number-id", "1065", "--no-verify"], "a new number needs its display phone number"),
    (["--phone-number-id", "1065", "--display-phone-number", "1555", "--no-verify", "--member", "ghost"],
     "unknown user(s): ghost"),
]  # fmt: skip


@ops_db
def test_register_number_rejects_bad_input():
    results = manage_all([("register_number", *args) for args, _ in REGISTER_REFUSALS])

    assert_each_refused(results, REGISTER_REFUSALS)
    assert not BusinessNumber.objects.exists()


# --- check_meta -----------------------------------------------------------------------------------------


@ops_db
def test_check_meta_healthy_then_expired_token_flags_the_number(sandbox, number):
    pending = WebhookEvent.objects.create(raw_body="{}", phone_number_id=PHONE_NUMBER_ID)
    WebhookEvent.objects.filter(pk=pending.pk).update(received_at=ago(minutes=10))
    WebhookEvent.objects.create(raw_body="{}", phone_number_id=PHONE_NUMBER_ID, state=WebhookEventState.FAILED)
    WebhookEvent.objects.create(raw_body="{}", phone_number_id=PHONE_NUMBER_ID, state=WebhookEventState.PROCESSED)
    WebhookEvent.objects.create(raw_body="{}", phone_number_id="other", state=WebhookEventState.FAILED)

    healthy = manage("check_meta", graph=sandbox.base_url)

    assert healthy.returncode == 0, healthy.stderr
    assert "token:        OK" in healthy.stdout
    assert "+15557730142 (Sandbox Business), quality GREEN" in healthy.stdout
    assert "subscription: unknown (endpoint not available)" in healthy.stdout
    assert "pending 1, oldest" in healthy.stdout and "(10m ago)" in healthy.stdout and "failed 1" in healthy.stdout
    paths = [r["path"].split("?")[0] for r in sandbox.control("GET", "requests")]
    assert paths == [f"/v23.0/{PHONE_NUMBER_ID}", f"/v23.0/{WABA}/subscribed_apps"]
    number.refresh_from_db()
    assert not number.needs_reauthorization

    sandbox.configure(expire_token=True)
    expired = manage("check_meta", "--number", PHONE_NUMBER_ID, graph=sandbox.base_url)

    assert expired.returncode != 0
    assert "FAILED" in expired.stdout and "expired/invalid (190)" in expired.stdout
    assert "marked needs_reauthorization" in expired.stdout
    assert f"token check failed for 1 number(s): {PHONE_NUMBER_ID}" in expired.stderr
    number.refresh_from_db()
    assert number.needs_reauthorization

    # The token works again (rotated where it is kept, or Meta's 190 was passing): the check clears the flag.
    sandbox.configure(expire_token=False)
    renewed = manage("check_meta", "--number", PHONE_NUMBER_ID, graph=sandbox.base_url)

    assert renewed.returncode == 0, renewed.stderr
    assert "needs_reauthorization cleared: Meta accepts the token, sending resumes" in renewed.stdout
    number.refresh_from_db()
    assert not number.needs_reauthorization


@ops_db
def test_check_meta_rejects_unknown_numbers_and_an_empty_registry():
    empty = manage("check_meta")
    assert empty.returncode != 0 and "no business numbers registered" in empty.stderr

    BusinessNumberFactory()
    unknown = manage("check_meta", "--number", "555")
    assert unknown.returncode != 0 and "unknown phone_number_id: 555" in unknown.stderr


# --- send_message ---------------------------------------------------------------------------------------


@ops_db
def test_send_text_inside_the_window_is_sent(sandbox_with_webhooks, number):
    sandbox = sandbox_with_webhooks
    UserFactory(username="ana").business_numbers.add(number)
    contact = ContactFactory(wa_id="447700900461")
    ConversationFactory(number=number, contact=contact, last_message_at=ago(hours=1), last_inbound_at=ago(hours=1))
    sandbox.open_window("447700900461")

    result = manage(
        "send_message", "--number", PHONE_NUMBER_ID, "--to", "+44 7700 900461", "--text", "It ships today",
        "--as", "ana", "--wait", "10", graph=sandbox.base_url, META_ACCESS_TOKEN=TOKEN,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    message = Message.objects.get(direction=Direction.OUTBOUND)
    assert message.status in (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)
    assert message.sent_by.username == "ana" and message.conversation.contact == contact
    [sent] = sandbox.sent()
    assert (sent["wamid"], sent["to"], sent["request"]["text"]["body"]) == (
        message.wamid,
        "+447700900461",
        "It ships today",
    )
    assert sent["outcome"] == "accepted"
    assert re.search(rf"Status: (sent|delivered|read), wamid {re.escape(message.wamid)}\n", result.stdout)
    assert Contact.objects.count() == 1


@ops_db
def test_send_text_is_refused_when_the_window_is_closed_or_never_opened(sandbox, number):
    contact = ContactFactory(wa_id="447700900462")
    ConversationFactory(number=number, contact=contact, last_message_at=ago(days=2), last_inbound_at=ago(days=2))

    closed = manage(
        "send_message", "--number", PHONE_NUMBER_ID, "--to", "447700900462", "--text", "hi", graph=sandbox.base_url
    )

    assert closed.returncode != 0
    assert "refused (window_closed)" in closed.stderr and "Send a template" in closed.stderr

    stranger = manage(
        "send_message", "--number", PHONE_NUMBER_ID, "--to", "+447700900999", "--text", "hi", graph=sandbox.base_url
    )

    assert stranger.returncode != 0
    assert "has never written to this number" in stranger.stderr and "--template" in stranger.stderr
    # Nothing queued, sent, or left behind by the refusals.
    assert not Message.objects.exists()
    assert sandbox.sent() == []
    assert list(Contact.objects.values_list("wa_id", flat=True)) == ["447700900462"]


@ops_db
def test_send_template_to_a_new_contact(sandbox_with_webhooks, number):
    sandbox = sandbox_with_webhooks
    MessageTemplate.objects.create(
        waba_id=WABA, name="order_update", language="en_US", status="APPROVED",
        components=[{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped and is on its way. 📦"}],
    )  # fmt: skip

    wrong_params = manage(
        "send_message", "--number", PHONE_NUMBER_ID, "--to", "5511987654321", "--template", "order_update",
        "--param", "Ana", graph=sandbox.base_url,
    )  # fmt: skip
    assert wrong_params.returncode != 0 and "refused (template_params)" in wrong_params.stderr

    result = manage(
        "send_message", "--number", PHONE_NUMBER_ID, "--to", "5511987654321", "--template", "order_update",
        "--language", "en_US", "--param", "Ana", "--param", "#42", graph=sandbox.base_url,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "(new contact)" in result.stdout
    message = Message.objects.get()
    assert message.type == "template" and message.status != MessageStatus.PENDING and message.wamid
    assert message.body == "Hi Ana, your order #42 has shipped and is on its way. 📦"
    assert message.conversation.contact.wa_id == "5511987654321"
    [sent] = sandbox.sent()
    assert sent["request"]["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Ana"}, {"type": "text", "text": "#42"}
    ]  # fmt: skip


SEND_REFUSALS = [
    (["--number", "555", "--to", "447700900461", "--text", "hi"], "unknown phone_number_id '555'"),
    (["--number", PHONE_NUMBER_ID, "--to", "call me", "--text", "hi"], "not a phone number: 'call me'"),
    (["--number", PHONE_NUMBER_ID, "--to", "447700900461", "--template", "nope"], "no template 'nope' (en_US)"),
    (["--number", PHONE_NUMBER_ID, "--to", "447700900461", "--text", "hi", "--as", "ana"], "ana is not a member of"),
    (
        ["--number", PHONE_NUMBER_ID, "--to", "447700900461", "--text", "hi", "--param", "x"],
        "--param goes with --template",
    ),
]


@ops_db
def test_send_message_rejects_bad_input(number):
    UserFactory(username="ana")  # not a member of the number
    results = manage_all([("send_message", *args) for args, _ in SEND_REFUSALS])

    assert_each_refused(results, SEND_REFUSALS)
    assert not Message.objects.exists()


# --- contacts_normalize ---------------------------------------------------------------------------------


def _inbound(conversation, at, **kwargs):
    message = MessageFactory(conversation=conversation, timestamp=at, **kwargs)
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=at, last_inbound_at=at)
    return message


@ops_db
def test_contacts_normalize_merges_brazil_mexico_and_exact_duplicates(number):
    other_number = BusinessNumberFactory()
    staff = UserFactory(username="bea")
    # Brazil: the legacy 12-digit wa_id wrote most recently, so it is what Meta uses now: it is kept.
    br_old = ContactFactory(wa_id="551187654321", phone="+551187654321", custom_name="")
    br_new = ContactFactory(wa_id="5511987654321", phone="+5511987654321", custom_name="Joana (VIP)")
    br_kept_conv = ConversationFactory(number=number, contact=br_old, last_message_at=ago(days=3))
    br_dup_conv = ConversationFactory(number=number, contact=br_new, last_message_at=ago(days=3))
    latest = _inbound(br_kept_conv, ago(hours=1), body="newest")
    older = [_inbound(br_dup_conv, ago(hours=h), body=f"older {h}") for h in (5, 4)]
    ReadState.objects.create(user=staff, conversation=br_dup_conv, last_read_message_id=older[-1].pk)
    # Mexico: 52 + 10 digits wrote last; the 521 row's conversation on another number moves over.
    mx_521 = ContactFactory(wa_id="5215512345678", phone="+5215512345678", user_id="MX.777")
    mx_52 = ContactFactory(wa_id="525512345678", phone="+525512345678")
    mx_moved_conv = ConversationFactory(number=other_number, contact=mx_521)
    _inbound(mx_moved_conv, ago(days=1))
    _inbound(ConversationFactory(number=number, contact=mx_52), ago(minutes=30))
    target = MessageFactory(conversation=br_kept_conv, direction=Direction.OUTBOUND, status=MessageStatus.SENT)
    for contact, emoji in ((mx_521, "👍"), (mx_52, "❤️")):
        Reaction.objects.create(
            message_wamid=target.wamid, contact=contact, emoji=emoji, reaction_wamid=f"r{emoji}", reacted_at=ago(days=1)
        )
    Reaction.objects.create(
        message_wamid="wamid.ELSEWHERE", contact=mx_521, emoji="🎉", reaction_wamid="r2", reacted_at=ago(days=1)
    )
    # Exact duplicates: the same phone; the BSUID-only row wrote last and inherits the wa_id.
    by_phone = ContactFactory(wa_id="447700900123", phone="447700900123", profile_name="Old Name")
    by_bsuid = ContactFactory(wa_id=None, user_id="GB.4242", phone="+447700900123", profile_name="")
    _inbound(ConversationFactory(number=number, contact=by_bsuid), ago(minutes=5))
    # Not duplicates: Argentina's 549/54 and a Brazilian landline are different subscribers.
    unrelated = [
        ContactFactory(wa_id="5491123456789", phone="+5491123456789"),
        ContactFactory(wa_id="541123456789", phone="+541123456789"),
        ContactFactory(wa_id="551132345678", phone="+551132345678"),
        ContactFactory(wa_id="5511932345678", phone="not-normalised"),
    ]

    def snapshot():
        return (
            sorted(Contact.objects.values_list("pk", "wa_id", "phone", "user_id", "custom_name")),
            sorted(Message.objects.values_list("pk", "conversation_id")),
            sorted(Conversation.objects.values_list("pk", "contact_id", "last_message_at")),
            Reaction.objects.count(),
        )

    before = snapshot()

    dry = manage("contacts_normalize", "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert snapshot() == before
    assert f"would merge contact {br_new.pk} (wa_id 5511987654321) into {br_old.pk} (wa_id 551187654321)" in dry.stdout
    assert "0 conversation(s) moved, 1 merged (2 message(s) moved)" in dry.stdout
    assert f"would merge contact {mx_521.pk} (wa_id 5215512345678) into {mx_52.pk}" in dry.stdout
    assert "1 conversation(s) moved, 0 merged (0 message(s) moved), 1 reaction(s) moved, 1 dropped" in dry.stdout
    assert f"would merge contact {by_phone.pk} (wa_id 447700900123) into {by_bsuid.pk} (user_id GB.4242)" in dry.stdout
    assert f"would set contact {by_phone.pk} phone 447700900123 -> +447700900123" in dry.stdout
    assert f"would set contact {unrelated[3].pk} phone not-normalised -> +5511932345678" in dry.stdout
    assert "Dry run: 2 phone(s) to normalise, 3 duplicate(s) to merge; nothing changed." in dry.stdout
    # Not on a terminal: a plain line per step here (a tenth of 3 is less than one), the plan's lines between.
    assert [line.split(",")[0] for line in dry.stdout.splitlines() if line.startswith("  progress ")] == [
        "  progress 1/3 steps",
        "  progress 2/3 steps",
        "  progress 3/3 steps",
    ]

    real = manage("contacts_normalize")

    assert real.returncode == 0, real.stderr
    assert "Done: 2 phone(s) normalised, 3 duplicate(s) merged." in real.stdout
    assert "  progress 5/5 steps, 100%" in real.stdout  # two phones set, three groups merged
    assert not Contact.objects.filter(pk__in=[br_new.pk, mx_521.pk, by_phone.pk]).exists()
    # Brazil: one conversation holding all three customer messages, its summary from the newest.
    br_old.refresh_from_db()
    assert (br_old.wa_id, br_old.custom_name, br_old.phone) == ("551187654321", "Joana (VIP)", "+551187654321")
    assert not Conversation.objects.filter(pk=br_dup_conv.pk).exists()
    assert not ReadState.objects.filter(conversation_id=br_dup_conv.pk).exists()
    assert set(br_kept_conv.messages.values_list("pk", flat=True)) == {latest.pk, target.pk, *(m.pk for m in older)}
    br_kept_conv.refresh_from_db()
    assert br_kept_conv.last_inbound_at == latest.timestamp
    assert (br_kept_conv.last_message_at, br_kept_conv.last_message_preview) == (latest.timestamp, "newest")
    # Mexico: the conversation moved, the clashing reaction dropped, the other moved; the BSUID inherited.
    mx_52.refresh_from_db()
    assert mx_52.user_id == "MX.777"
    assert Conversation.objects.get(pk=mx_moved_conv.pk).contact_id == mx_52.pk
    assert sorted(Reaction.objects.filter(contact=mx_52).values_list("message_wamid", "emoji")) == sorted(
        [(target.wamid, "❤️"), ("wamid.ELSEWHERE", "🎉")]
    )
    # Exact duplicate: the kept BSUID row now carries the wa_id and the profile name it lacked.
    by_bsuid.refresh_from_db()
    assert (by_bsuid.wa_id, by_bsuid.phone, by_bsuid.profile_name) == ("447700900123", "+447700900123", "Old Name")
    assert Contact.objects.filter(pk__in=[c.pk for c in unrelated]).count() == 4
    assert Contact.objects.get(pk=unrelated[3].pk).phone == "+5511932345678"

    again = manage("contacts_normalize")
    assert again.returncode == 0, again.stderr
    assert "Nothing to do" in again.stdout
    assert "  progress" not in again.stdout


# --- inbox_stats ----------------------------------------------------------------------------------------


@pytest.fixture
def redis_server() -> Iterator[str]:
    """A Redis of the test's own (the e2e suite's), with three tasks waiting in Celery's queue."""
    server = RedisServer(port=free_port(), workdir=tempfile.mkdtemp(prefix="ops-redis-"))
    server.start()
    try:
        import redis

        client = redis.Redis(port=server.port)
        client.rpush("celery", "task-1", "task-2", "task-3")
        client.close()
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@ops_db
def test_inbox_stats_text_and_json(number, redis_server):
    conversation = ConversationFactory(number=number)
    MessageFactory(conversation=conversation, timestamp=ago(hours=2))
    MessageFactory(conversation=conversation, timestamp=ago(days=3))
    OutboundMessageFactory(conversation=conversation, timestamp=ago(hours=1))
    OutboundMessageFactory(conversation=conversation, timestamp=ago(hours=1), status=MessageStatus.FAILED)
    quiet = BusinessNumberFactory(phone_number_id="106540352249999", name="Quiet line")
    for state, received in [
        (WebhookEventState.PENDING, ago(minutes=5)),
        (WebhookEventState.PROCESSED, ago(hours=1)),
        (WebhookEventState.PROCESSED, ago(hours=2)),
        (WebhookEventState.FAILED, ago(hours=3)),
        (WebhookEventState.FAILED, ago(days=10)),
        (WebhookEventState.UNROUTABLE, ago(days=2)),
    ]:
        event = WebhookEvent.objects.create(raw_body="{}", state=state)
        WebhookEvent.objects.filter(pk=event.pk).update(received_at=received)

    as_json = manage("inbox_stats", "--json", REDIS_URL=redis_server)

    assert as_json.returncode == 0, as_json.stderr
    stats = json.loads(as_json.stdout)
    assert stats["celery"] == {"queue_depth": 3, "note": None}
    assert stats["webhooks"]["pending"] == 1
    assert 290 <= stats["webhooks"]["oldest_pending_age_seconds"] <= 400
    assert stats["webhooks"]["by_state_24h"] == {"pending": 1, "processed": 2, "unroutable": 0, "failed": 1}
    assert stats["webhooks"]["failed_ever"] == 2
    assert stats["outbound"] == {"pending": 1, "failed": 1}
    assert stats["numbers"] == [
        {"phone_number_id": PHONE_NUMBER_ID, "name": "Support", "conversations": 1, "messages_in_24h": 1,
         "messages_out_24h": 2},
        {"phone_number_id": quiet.phone_number_id, "name": "Quiet line", "conversations": 0, "messages_in_24h": 0,
         "messages_out_24h": 0},
    ]  # fmt: skip

    as_text = manage("inbox_stats")

    assert as_text.returncode == 0, as_text.stderr
    assert "Celery queue depth: n/a (embedded)" in as_text.stdout
    assert "Webhook events: 1 pending (oldest " in as_text.stdout and "2 failed ever" in as_text.stdout
    assert "last 24 h: pending 1, processed 2, unroutable 0, failed 1" in as_text.stdout
    assert "Outbound messages: 1 pending, 1 failed" in as_text.stdout
    assert f"{PHONE_NUMBER_ID} Support: 1 conversation(s); last 24 h 1 in, 2 out" in as_text.stdout


# --- purge_webhook_events -------------------------------------------------------------------------------


@ops_db
def test_purge_webhook_events_dry_run_default_and_include_failed():
    def event(state, received):
        stored = WebhookEvent.objects.create(raw_body="{}", state=state)
        WebhookEvent.objects.filter(pk=stored.pk).update(received_at=received)
        return stored.pk

    old = {
        "processed": [event(WebhookEventState.PROCESSED, ago(days=40)) for _ in range(3)],
        "unroutable": [event(WebhookEventState.UNROUTABLE, ago(days=31))],
        "failed": [event(WebhookEventState.FAILED, ago(days=40))],
        "pending": [event(WebhookEventState.PENDING, ago(days=40))],
    }
    recent = [event(WebhookEventState.PROCESSED, ago(days=29)), event(WebhookEventState.FAILED, ago(days=1))]

    dry = manage("purge_webhook_events", "--older-than", "720h", "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert "4 to delete (processed 3, unroutable 1)" in dry.stdout
    assert "Dry run: 4 event(s) would be deleted; nothing changed." in dry.stdout
    assert WebhookEvent.objects.count() == 8

    purge = manage("purge_webhook_events", "--older-than", "30d", "--batch-size", "3")

    assert purge.returncode == 0, purge.stderr
    assert "  deleted 3/4 events, 75%, " in purge.stdout and "  deleted 4/4 events, 100%, " in purge.stdout
    assert "Purged 4 webhook event(s)." in purge.stdout
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {*old["failed"], *old["pending"], *recent}

    with_failed = manage(
        "purge_webhook_events",
        "--older-than",
        (timezone.now() - timedelta(days=2)).date().isoformat(),
        "--include-failed",
    )

    assert with_failed.returncode == 0, with_failed.stderr
    assert (
        "2 to delete (failed 1, processed 1)" in with_failed.stdout
        and "Purged 2 webhook event(s)." in with_failed.stdout
    )
    # Pending events are never purged, whatever their age; newer ones stay.
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {*old["pending"], recent[1]}


@ops_db
def test_purge_webhook_events_on_a_terminal_draws_a_progress_bar():
    for _ in range(5):
        WebhookEvent.objects.create(raw_body="{}", state=WebhookEventState.PROCESSED)
    WebhookEvent.objects.update(received_at=ago(days=40))

    returncode, screen = manage_on_a_terminal("purge_webhook_events", "--older-than", "30d", "--batch-size", "2")

    assert returncode == 0, screen
    # tqdm's bar: redrawn in place (carriage returns), with the count, the elapsed and remaining time and the rate.
    assert "\r" in screen
    assert re.search(r"deleted: 100%\|[^|]*\| 5/5 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+ events/s\]", screen), screen
    assert "  deleted 5/5 events" not in screen  # the plain lines are for logs
    assert "Purged 5 webhook event(s)." in screen
    assert not WebhookEvent.objects.exists()


def manage_on_a_terminal(*args: str, timeout: float = 60) -> tuple[int, str]:
    """``manage.py`` with its stdout and stderr on a pseudo-terminal, as an operator's shell runs it: the exit
    code and everything it wrote there."""
    env = {key: value for key, value in os.environ.items() if key not in INHERITED_ENV_DROPPED}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_READ_DOT_ENV_FILE="0",
        DATABASE_URL=test_database_url(),
    )
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 rows, 100 columns
    process = subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: every writer of the terminal has closed it
                break
            if not chunk:
                break
            output += chunk
        return process.wait(timeout=max(1.0, deadline - time.monotonic())), output.decode(errors="replace")
    finally:
        os.close(controller)
        if process.poll() is None:
            stop_process(process)


PURGE_REFUSALS = [
    (["--older-than", "30m"], "--older-than: '30m' is not an age like 30d or 12h, nor an ISO 8601 date"),
    (["--older-than", "2999-01-01"], "is in the future"),
    (["--older-than", "3d", "--batch-size", "0"], "--batch-size must be at least 1"),
]


@ops_db
def test_purge_webhook_events_rejects_bad_input():
    WebhookEvent.objects.create(raw_body="{}", state=WebhookEventState.PROCESSED)
    WebhookEvent.objects.update(received_at=datetime(2020, 1, 1, tzinfo=UTC))

    results = manage_all([("purge_webhook_events", *args) for args, _ in PURGE_REFUSALS])

    assert_each_refused(results, PURGE_REFUSALS)
    assert WebhookEvent.objects.count() == 1

"""The Meta sandbox (``manage.py meta_sandbox``) as a real process, driven over HTTP the way the app drives Meta.

A small recording server in this process stands in for the app's ``/api/webhook``: it checks every
``X-Hub-Signature-256`` with the app secret on its own (plain ``hmac``), answers 403 to a bad one, and keeps
the raw bodies, which the tests read with the app's own parser (``webhooks.payloads``). No database is used.
"""

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from sandbox.customers import png_bytes
from webhooks.payloads import (
    parse_address_book,
    parse_delivery,
    parse_echoes,
    parse_history,
    parse_message,
    parse_status,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SECRET = "sandbox-test-secret"
TOKEN = "sandbox-test-token"
PHONE_NUMBER_ID = "106540352240077"
DISPLAY_PHONE_NUMBER = "15550787777"
CUSTOMER = "447700900123"
STATUS_DELAY = 0.1
# A real PNG (magic bytes and all): the sandbox checks content against the declared type, as Meta does.
PNG = png_bytes(rng=__import__("random").Random(7))
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], *, timeout: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --- The app's webhook endpoint, as far as the sandbox can tell ---------------------------------------------


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.bodies: list[bytes] = []
        self.rejected: list[bytes] = []
        self.fail_next = 0
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                signature_ok = hmac.compare_digest(expected, self.headers.get("X-Hub-Signature-256", ""))
                with recorder.lock:
                    if not signature_ok:
                        recorder.rejected.append(body)
                        status = 403
                    elif recorder.fail_next:
                        recorder.fail_next -= 1
                        status = 500
                    else:
                        recorder.bodies.append(body)
                        status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/api/webhook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def clear(self) -> None:
        with self.lock:
            self.bodies.clear()
            self.rejected.clear()
            self.fail_next = 0

    def changes(self):
        with self.lock:
            bodies = list(self.bodies)
        return [change for body in bodies for change in parse_delivery(json.loads(body)).changes]

    def statuses(self, wamid: str):
        return [parse_status(raw) for change in self.changes() for raw in change.raw_statuses if raw.get("id") == wamid]

    def status_names(self, wamid: str) -> list[str]:
        return [status.status for status in self.statuses(wamid)]

    def wait_statuses(self, wamid: str, count: int, *, timeout: float = 5.0):
        wait_until(lambda: len(self.statuses(wamid)) >= count, timeout=timeout, what=f"{count} statuses of {wamid}")
        time.sleep(STATUS_DELAY * 3)  # anything further would have arrived by now
        return self.statuses(wamid)

    def messages(self):
        return [(change, raw) for change in self.changes() for raw in change.raw_messages]


@pytest.fixture(scope="module")
def recorder():
    recorder = Recorder()
    recorder.thread.start()
    yield recorder
    recorder.httpd.shutdown()
    recorder.httpd.server_close()


def sandbox_env() -> dict[str, str]:
    """The subprocess's environment: nothing of the developer's settings, no database, no .env file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "DJANGO_", "DATABASE_", "REDIS_"))}
    env.pop("PORT", None)
    env.update(DJANGO_SETTINGS_MODULE="config.settings.base", DJANGO_READ_DOT_ENV_FILE="0", PYTHONUNBUFFERED="1")
    return env


@contextmanager
def running_sandbox(*args: str, webhook_url: str, log_path: Path) -> Iterator[str]:
    """``manage.py meta_sandbox`` on a free port until the block ends; yields its base URL."""
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "meta_sandbox", "--port", str(port), "--app-secret", SECRET,
             "--access-token", TOKEN, "--webhook-url", webhook_url, *args],
            cwd=PROJECT_ROOT, env=sandbox_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    http = requests.Session()
    http.trust_env = False
    try:

        def up():
            assert process.poll() is None, log_path.read_text()
            try:
                return http.get(f"{base_url}/_sandbox/health", timeout=0.5).ok
            except requests.ConnectionError:
                return False

        wait_until(up, timeout=30, what="the sandbox to listen")
        assert f"Meta sandbox on {base_url}" in log_path.read_text()
        yield base_url
    finally:
        http.close()
        process.terminate()  # SIGTERM to this PID only
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def sandbox_url(recorder, tmp_path_factory):
    with running_sandbox(
        "--status-delay", str(STATUS_DELAY), "--phone-number-id", PHONE_NUMBER_ID,
        "--display-phone-number", DISPLAY_PHONE_NUMBER,
        webhook_url=recorder.url, log_path=tmp_path_factory.mktemp("sandbox") / "meta_sandbox.log",
    ) as base_url:  # fmt: skip
        yield base_url


class Sandbox:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()
        self.http.trust_env = False

    def graph(self, method: str, path: str, *, token: str | None = TOKEN, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, f"{self.base_url}/v23.0/{path}", headers=headers, timeout=10, **kwargs)

    def send(self, payload: dict, **kwargs) -> requests.Response:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **payload}
        return self.graph("POST", f"{PHONE_NUMBER_ID}/messages", json=body, **kwargs)

    def try_text(self, text: str = "x", to: str = CUSTOMER) -> requests.Response:
        return self.send({"to": to, "type": "text", "text": {"body": text}})

    def send_template(self, template: dict, to: str = CUSTOMER) -> requests.Response:
        return self.send({"to": to, "type": "template", "template": template})

    def send_text(self, text: str = "Hello from the team", to: str = "+" + CUSTOMER, **extra) -> str:
        response = self.send({"to": to, "type": "text", "text": {"body": text}, **extra})
        assert response.status_code == 200, response.text
        return response.json()["messages"][0]["id"]

    def upload(self, data: bytes, mime_type: str, filename: str = "file.bin") -> requests.Response:
        return self.graph(
            "POST",
            f"{PHONE_NUMBER_ID}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, data, mime_type)},
        )

    def control(self, method: str, name: str, payload: dict | None = None):
        response = self.http.request(method, f"{self.base_url}/_sandbox/{name}", json=payload, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def configure(self, **changes):
        return self.control("POST", "config", changes)

    def open_window(self, wa_id: str = CUSTOMER, *, at: float | None = None):
        return self.control(
            "POST",
            "window",
            {"phone_number_id": PHONE_NUMBER_ID, "wa_id": wa_id, "last_inbound_at": time.time() if at is None else at},
        )


@pytest.fixture
def sandbox(sandbox_url, recorder):
    client = Sandbox(sandbox_url)
    client.control("POST", "reset")
    recorder.clear()
    yield client
    client.http.close()


def assert_meta_error(response: requests.Response, *, status: int, code: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert {"message", "type", "code", "error_data", "fbtrace_id"} <= set(error)
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert error["message"].startswith(f"(#{code}) ")
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert isinstance(error["error_data"]["details"], str) and error["error_data"]["details"]
    assert error["fbtrace_id"]
    return error


# --- Sending and the status webhooks -------------------------------------------------------------------------


def test_text_send_returns_wamid_then_signed_statuses_in_order(sandbox, recorder):
    sandbox.open_window()
    response = sandbox.send(
        {"to": "+" + CUSTOMER, "type": "text", "text": {"body": "Your order shipped ✓"},
         "biz_opaque_callback_data": "order:42"}
    )  # fmt: skip

    assert response.status_code == 200
    body = response.json()
    wamid = body["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+" + CUSTOMER, "wa_id": CUSTOMER}]
    statuses = recorder.wait_statuses(wamid, 3)
    assert [s.status for s in statuses] == ["sent", "delivered", "read"]
    assert all(s.recipient.wa_id == CUSTOMER for s in statuses)
    assert [s.timestamp for s in statuses] == sorted(s.timestamp for s in statuses)
    assert all(s.raw["biz_opaque_callback_data"] == "order:42" for s in statuses)
    change = recorder.changes()[0]
    assert (change.field, change.phone_number_id, change.display_phone_number) == (
        "messages", PHONE_NUMBER_ID, DISPLAY_PHONE_NUMBER,
    )  # fmt: skip
    assert recorder.rejected == []
    second = sandbox.send_text()
    assert second != wamid


def test_statuses_shuffled_and_duplicated_when_configured(sandbox, recorder):
    sandbox.open_window()
    sandbox.configure(shuffle_statuses=True)
    wamid = sandbox.send_text()
    shuffled = recorder.wait_statuses(wamid, 3)
    assert [s.status for s in shuffled] != ["sent", "delivered", "read"]
    assert sorted(s.status for s in shuffled) == ["delivered", "read", "sent"]
    # The timestamps inside still tell the true order, as Meta says to rely on them.
    by_time = sorted(shuffled, key=lambda s: (s.timestamp, ["sent", "delivered", "read"].index(s.status)))
    assert [s.status for s in by_time] == ["sent", "delivered", "read"]

    sandbox.configure(shuffle_statuses=False, duplicate_statuses=True)
    wamid = sandbox.send_text()
    statuses = [s.status for s in recorder.wait_statuses(wamid, 6)]
    assert statuses == ["sent", "sent", "delivered", "delivered", "read", "read"]
    bodies = [body for body in recorder.bodies if wamid.encode() in body or wamid.replace("/", "\\/").encode() in body]
    assert len(set(bodies)) == 3  # each duplicate is the identical bytes, as Meta's retries are


def test_reply_context_and_reaction_are_accepted(sandbox, recorder):
    sandbox.open_window()
    reply = sandbox.send_text("Sure, here it is", context={"message_id": "wamid.INBOUND123"})
    response = sandbox.send(
        {"to": CUSTOMER, "type": "reaction", "reaction": {"message_id": "wamid.INBOUND123", "emoji": "👍"}}
    )
    assert response.status_code == 200, response.text
    reaction = response.json()["messages"][0]["id"]
    # "Reactions you send trigger only a sent status" (docs/meta.md §3.4).
    assert [s.status for s in recorder.wait_statuses(reaction, 1)] == ["sent"]
    assert recorder.status_names(reply) == ["sent", "delivered", "read"]
    sent = {m["wamid"]: m for m in sandbox.control("GET", "messages")}
    assert sent[reply]["context"] == "wamid.INBOUND123"
    assert sent[reaction]["type"] == "reaction"


def test_send_to_a_bsuid_recipient(sandbox, recorder):
    user_id = "US.13491208655302741918"
    window = {"phone_number_id": PHONE_NUMBER_ID, "user_id": user_id, "last_inbound_at": time.time()}
    sandbox.control("POST", "window", window)
    response = sandbox.send({"recipient": user_id, "type": "text", "text": {"body": "hi"}})
    assert response.status_code == 200
    assert response.json()["contacts"] == [{"input": user_id, "user_id": user_id}]
    statuses = recorder.wait_statuses(response.json()["messages"][0]["id"], 3)
    assert all(s.recipient.user_id == user_id and s.recipient.wa_id is None for s in statuses)


def test_templates_listed_and_sends_validated_against_them(sandbox, recorder):
    listed = sandbox.graph("GET", "100000000000002/message_templates").json()
    names = {(t["name"], t["language"]) for t in listed["data"]}
    assert {("hello_world", "en_US"), ("order_update", "en_US"), ("appointment_reminder", "pt_BR")} <= names
    assert all(t["status"] == "APPROVED" and t["category"] and t["components"] for t in listed["data"])
    first = sandbox.graph("GET", "100000000000002/message_templates", params={"limit": 2}).json()
    assert len(first["data"]) == 2 and first["paging"]["next"]
    rest = sandbox.graph(
        "GET", "100000000000002/message_templates", params={"limit": 2, "after": first["paging"]["cursors"]["after"]}
    ).json()
    assert [t["name"] for t in first["data"] + rest["data"]] == [t["name"] for t in listed["data"]][:4]

    # Templates go outside the 24-hour window (none is open here).
    hello = sandbox.send_template({"name": "hello_world", "language": {"code": "en_US"}})
    assert hello.status_code == 200, hello.text
    order_update = {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Sam"}, {"type": "text", "text": "#1"}]}
        ],
    }
    assert sandbox.send_template(order_update).status_code == 200
    hello_wamid = hello.json()["messages"][0]["id"]
    assert [s.status for s in recorder.wait_statuses(hello_wamid, 3)] == ["sent", "delivered", "read"]

    assert_meta_error(sandbox.send_template({"name": "nope", "language": {"code": "en_US"}}), status=400, code=132001)
    wrong_language = {"name": "appointment_reminder", "language": {"code": "en_US"}}
    assert_meta_error(sandbox.send_template(wrong_language), status=400, code=132001)
    too_few = {**order_update, "components": [{"type": "body", "parameters": [{"type": "text", "text": "Sam"}]}]}
    assert_meta_error(sandbox.send_template(too_few), status=400, code=132000)

    sandbox.configure(templates=[{"name": "welcome", "language": "es_ES", "category": "MARKETING",
                                  "components": [{"type": "BODY", "text": "¡Hola!"}]}])  # fmt: skip
    welcome = {"name": "welcome", "language": {"code": "es_ES"}}
    assert sandbox.send_template(welcome).status_code == 200
    hello_again = {"name": "hello_world", "language": {"code": "en_US"}}
    assert_meta_error(sandbox.send_template(hello_again), status=400, code=132001)


def test_missing_or_wrong_bearer_is_401_with_code_190(sandbox):
    payload = {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": {"body": "x"}}
    path = f"{PHONE_NUMBER_ID}/messages"
    assert_meta_error(sandbox.graph("POST", path, token=None, json=payload), status=401, code=190)
    assert_meta_error(sandbox.graph("POST", path, token="wrong", json=payload), status=401, code=190)
    assert_meta_error(sandbox.graph("GET", "100000000000002/message_templates", token=None), status=401, code=190)
    assert sandbox.control("GET", "messages") == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"to": CUSTOMER, "type": "text", "text": {"body": "x"}, "messaging_product": None}, 100),
        ({"to": CUSTOMER, "type": "text", "text": {"body": "x"}, "messaging_product": "sms"}, 100),
        ({"type": "text", "text": {"body": "x"}}, 100),
        ({"to": CUSTOMER, "type": "carousel", "carousel": {}}, 100),
        ({"to": CUSTOMER, "type": "text", "text": {}}, 131008),
        ({"to": CUSTOMER, "type": "text"}, 131008),
        ({"to": CUSTOMER, "type": "text", "text": {"body": "x" * 4097}}, 131009),
        ({"to": "not-a-number", "type": "text", "text": {"body": "x"}}, 131009),
        ({"to": CUSTOMER, "type": "image", "image": {"id": "123456789"}}, 100),
        ({"to": CUSTOMER, "type": "image", "image": {"link": "https://e.x/a.jpg", "caption": "c" * 1025}}, 131009),
        ({"to": CUSTOMER, "type": "reaction", "reaction": {"emoji": "👍"}}, 131008),
        ({"to": CUSTOMER, "type": "template", "template": {"name": "hello_world"}}, 131008),
    ],
)
def test_invalid_bodies_get_meta_error_shape(sandbox, payload, code):
    body = {"messaging_product": "whatsapp", **payload}
    if body["messaging_product"] is None:
        del body["messaging_product"]
    assert_meta_error(sandbox.graph("POST", f"{PHONE_NUMBER_ID}/messages", json=body), status=400, code=code)


TEXT = {"to": CUSTOMER, "type": "text", "text": {"body": "x"}}
HELLO = {"name": "hello_world", "language": {"code": "en_US"}}


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({**TEXT, "text": {"body": "x", "preview_ur1": True}}, '"preview_ur1" on param "text"'),
        ({**TEXT, "biz_opaque_callback": "order:1"}, '"biz_opaque_callback"'),
        ({**TEXT, "image": {"id": "123"}}, '"image"'),  # only the object of the message's type
        ({**TEXT, "to": int(CUSTOMER)}, "to"),
        ({**TEXT, "text": {"body": 42}}, "text['body']"),
        ({**TEXT, "context": {"message_id": "wamid.IN1", "from": CUSTOMER}}, '"from" on param "context"'),
        ({"to": CUSTOMER, "type": "reaction", "reaction": {"message_id": "wamid.IN1", "emoji": "👍", "emoij": ""}},
         '"emoij" on param "reaction"'),
        ({"to": CUSTOMER, "type": "sticker", "sticker": {"id": "123", "caption": "hi"}},
         '"caption" on param "sticker"'),
        ({"to": CUSTOMER, "type": "audio", "audio": {"id": "123", "caption": "hi"}}, '"caption" on param "audio"'),
        ({"to": CUSTOMER, "type": "image", "image": {"id": "123", "filename": "a.png"}}, '"filename" on param "image"'),
        ({"to": CUSTOMER, "type": "template", "template": {**HELLO, "namespace": "x"}},
         '"namespace" on param "template"'),
        ({"to": CUSTOMER, "type": "template", "template": {**HELLO, "language": {"code": "en_US", "locale": "en"}}},
         '"locale"'),
        ({"to": CUSTOMER, "type": "template", "template": {**HELLO, "components": [{"type": "body", "params": []}]}},
         '"params"'),
        ({"to": CUSTOMER, "type": "template",
          "template": {**HELLO, "components": [{"type": "body", "parameters": [{"type": "text", "txt": "Sam"}]}]}},
         '"txt"'),
        ({"status": "read", "message_id": "wamid.IN1", "typing": {"type": "text"}}, '"typing"'),
    ],
)  # fmt: skip
def test_a_key_meta_does_not_define_or_of_the_wrong_type_is_100_naming_it(sandbox, payload, key):
    sandbox.open_window()
    error = assert_meta_error(sandbox.send(payload), status=400, code=100)
    assert error["message"] == "(#100) Invalid parameter"
    assert key in error["error_data"]["details"]
    assert sandbox.control("GET", "messages") == []


def test_an_alias_instead_of_an_id_is_803(sandbox):
    """Graph takes a path segment that is not a numeric id for an alias: ``(#803)``, not ``(#100)``."""
    error = assert_meta_error(sandbox.graph("GET", "support-line"), status=404, code=803)
    assert error["message"] == "(#803) Some of the aliases you requested do not exist: support-line"
    assert_meta_error(sandbox.graph("DELETE", "not-a-media-id"), status=404, code=803)


def test_non_json_body_is_100(sandbox):
    headers = {"Content-Type": "application/json"}
    response = sandbox.graph("POST", f"{PHONE_NUMBER_ID}/messages", data=b"{nope", headers=headers)
    assert_meta_error(response, status=400, code=100)


def test_outside_the_window_is_accepted_then_fails_with_131047(sandbox, recorder):
    wamid = sandbox.send_text()  # no window was ever opened
    [failed] = recorder.wait_statuses(wamid, 1)
    assert failed.status == "failed"
    assert (failed.first_error.code, failed.first_error.title) == (131047, "Re-engagement message")

    sandbox.open_window(at=time.time() - 25 * 3600)  # the customer wrote 25 hours ago
    [expired] = recorder.wait_statuses(sandbox.send_text(), 1)
    assert expired.status == "failed" and expired.first_error.code == 131047

    sandbox.open_window()
    assert [s.status for s in recorder.wait_statuses(sandbox.send_text(), 3)] == ["sent", "delivered", "read"]

    # For demos whose conversations never came through the sandbox.
    sandbox.configure(assume_window_open=True)
    stranger = sandbox.send_text(to="+5511987650042")
    assert [s.status for s in recorder.wait_statuses(stranger, 3)] == ["sent", "delivered", "read"]


def test_fail_next_sync_and_async(sandbox, recorder):
    sandbox.open_window()
    sandbox.configure(fail_next={"code": 131026, "title": "Message undeliverable", "mode": "sync", "count": 1})
    error = assert_meta_error(sandbox.try_text(), status=400, code=131026)
    assert error["message"] == "(#131026) Message undeliverable"
    assert sandbox.send_text()  # only the next one failed

    sandbox.configure(fail_next={"code": 131026, "mode": "async"})
    wamid = sandbox.send_text()
    [failed] = recorder.wait_statuses(wamid, 1)
    assert failed.status == "failed" and failed.first_error.code == 131026
    assert failed.first_error.title == "Message undeliverable" and failed.first_error.details
    assert sandbox.control("GET", "config")["fail_next"]["count"] == 0


def test_server_error_next_is_transient(sandbox):
    sandbox.open_window()
    sandbox.configure(server_error_next=2)
    for _ in range(2):
        error = assert_meta_error(sandbox.try_text(), status=500, code=131000)
        assert error["is_transient"] is True
    assert sandbox.send_text()
    sandbox.configure(server_error_next={"count": 1, "code": 2})
    assert_meta_error(sandbox.try_text(), status=503, code=2)


def test_answer_lost_next_accepts_the_send_but_the_client_gets_no_answer(sandbox, recorder):
    sandbox.open_window()
    sandbox.configure(answer_lost_next={"mode": "drop"})
    with pytest.raises(requests.ConnectionError):
        sandbox.try_text("dropped")
    sandbox.configure(answer_lost_next={"mode": "delay", "seconds": 1.0})
    body = {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": {"body": "delayed"}}
    url = f"{sandbox.base_url}/v23.0/{PHONE_NUMBER_ID}/messages"
    with pytest.raises(requests.ReadTimeout):
        sandbox.http.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=(3, 0.3))
    sent = sandbox.control("GET", "messages")
    assert [item["request"]["text"]["body"] for item in sent] == ["dropped", "delayed"], "both went out"
    recorder.wait_statuses(sent[0]["wamid"], 3)
    assert sandbox.send_text()  # only the next ones lose their answer
    with pytest.raises(AssertionError, match="mode"):
        sandbox.configure(answer_lost_next={"mode": "never"})


def test_expired_token_answers_190_everywhere(sandbox):
    media_id = sandbox.upload(PNG, "image/png").json()["id"]
    sandbox.configure(expire_token=True)
    for response in (
        sandbox.try_text(),
        sandbox.graph("GET", "100000000000002/message_templates"),
        sandbox.graph("GET", media_id),
    ):
        error = assert_meta_error(response, status=401, code=190)
        assert "Session has expired" in error["message"] and error["error_subcode"] == 463
    sandbox.configure(expire_token=False)
    assert sandbox.graph("GET", media_id).status_code == 200


def test_rate_limit_130429_and_pair_limit_131056(sandbox):
    sandbox.open_window()
    sandbox.configure(rate_limit_mps=3)
    assert [sandbox.try_text(str(i)).status_code for i in range(3)] == [200, 200, 200]
    assert_meta_error(sandbox.try_text("4"), status=400, code=130429)
    time.sleep(1.05)
    assert sandbox.send_text()

    sandbox.configure(rate_limit_mps=80, pair_limit=2)
    other = "5511987654321"
    sandbox.open_window(other)
    assert sandbox.send_text(to=other) and sandbox.send_text(to=other)
    assert_meta_error(sandbox.try_text("3rd", to=other), status=400, code=131056)
    assert sandbox.send_text()  # another customer is another pair


# --- Media ---------------------------------------------------------------------------------------------------


def test_media_upload_get_and_download_round_trip(sandbox, recorder):
    uploaded = sandbox.upload(PNG, "image/png", "parcel.png")
    assert uploaded.status_code == 200, uploaded.text
    media_id = uploaded.json()["id"]
    assert media_id.isdigit()

    info = sandbox.graph("GET", media_id, params={"phone_number_id": PHONE_NUMBER_ID})
    assert info.status_code == 200
    info = info.json()
    assert info["messaging_product"] == "whatsapp" and info["id"] == media_id
    assert info["mime_type"] == "image/png"
    assert info["file_size"] == str(len(PNG))
    assert info["sha256"] == hashlib.sha256(PNG).hexdigest()  # GET /{media-id}: hex

    download = sandbox.http.get(info["url"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert download.status_code == 200
    assert download.content == PNG and download.headers["Content-Type"] == "image/png"
    assert hashlib.sha256(download.content).hexdigest() == info["sha256"]
    assert_meta_error(sandbox.http.get(info["url"], timeout=10), status=401, code=190)

    sandbox.open_window()
    sent = sandbox.send({"to": CUSTOMER, "type": "image", "image": {"id": media_id, "caption": "Your parcel"}})
    assert sent.status_code == 200, sent.text
    assert sandbox.graph("DELETE", media_id).json() == {"success": True}
    assert_meta_error(sandbox.graph("GET", media_id), status=400, code=100)


@pytest.mark.parametrize(
    ("data", "mime_type"),
    [
        (b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024), "image/jpeg"),  # over the 5 MB image limit
        (b"GIF89a" + b"\x00" * 100, "image/gif"),  # not a type WhatsApp takes
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * (100 * 1024), "image/webp"),  # static sticker over 100 KB
        (JPEG, "image/png"),  # the bytes are not what the type says
    ],
)
def test_media_size_and_type_limits_are_131053(sandbox, data, mime_type):
    assert_meta_error(sandbox.upload(data, mime_type), status=400, code=131053)


# --- Customers writing in ------------------------------------------------------------------------------------


def test_inbound_text_is_a_signed_webhook_the_app_parses_and_opens_the_window(sandbox, recorder):
    result = sandbox.control(
        "POST",
        "inbound",
        {"phone_number_id": PHONE_NUMBER_ID, "display_phone_number": DISPLAY_PHONE_NUMBER, "wa_id": CUSTOMER,
         "name": "Zoë Müller", "text": "Olá! Is it 50% off? <b>/</b>"},
    )  # fmt: skip
    wait_until(lambda: recorder.messages(), what="the inbound webhook")
    [(change, raw)] = recorder.messages()
    message = parse_message(raw)
    assert message.wamid == result["wamid"]
    assert (message.type, message.body, message.sender.wa_id) == ("text", "Olá! Is it 50% off? <b>/</b>", CUSTOMER)
    assert change.phone_number_id == PHONE_NUMBER_ID and change.contacts[0].name == "Zoë Müller"
    assert recorder.rejected == []
    assert b"\\/" in recorder.bodies[0] and b"\\u00e1" in recorder.bodies[0]  # Meta's escaping, signed as sent

    # The customer wrote, so a free-form reply is delivered now.
    assert [s.status for s in recorder.wait_statuses(sandbox.send_text(), 3)] == ["sent", "delivered", "read"]

    # Any other type goes as type + content, here a reply quoting the business's message.
    recorder.clear()
    pin = {"location": {"latitude": 51.5072, "longitude": -0.1276}}
    sandbox.control(
        "POST",
        "inbound",
        {"phone_number_id": PHONE_NUMBER_ID, "wa_id": CUSTOMER, "type": "location", "content": pin,
         "context_wamid": "wamid.OUT1"},
    )  # fmt: skip
    wait_until(lambda: recorder.messages(), what="the location webhook")
    location = parse_message(recorder.messages()[0][1])
    assert (location.type, location.content["latitude"], location.reply_to_wamid) == ("location", 51.5072, "wamid.OUT1")


def test_inbound_media_webhook_carries_a_downloadable_id_and_base64_sha256(sandbox, recorder):
    result = sandbox.control(
        "POST",
        "inbound",
        {"phone_number_id": PHONE_NUMBER_ID, "wa_id": CUSTOMER, "name": "Ana",
         "media": {"type": "image", "mime_type": "image/png", "data_base64": base64.b64encode(PNG).decode(),
                   "caption": "The parcel"}},
    )  # fmt: skip
    wait_until(lambda: recorder.messages(), what="the inbound webhook")
    message = parse_message(recorder.messages()[0][1])
    assert message.type == "image" and message.body == "The parcel"
    assert message.content["id"] == result["media_id"]
    assert message.content["mime_type"] == "image/png"
    assert message.content["sha256"] == base64.b64encode(hashlib.sha256(PNG).digest()).decode()  # webhook: base64

    info = sandbox.graph("GET", message.content["id"]).json()
    download = sandbox.http.get(info["url"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert download.content == PNG
    assert info["sha256"] == hashlib.sha256(download.content).hexdigest()

    recorder.clear()
    sandbox.control(
        "POST",
        "inbound",
        {"phone_number_id": PHONE_NUMBER_ID, "wa_id": CUSTOMER, "corrupt_sha256": True,
         "media": {"type": "document", "mime_type": "application/pdf", "filename": "invoice.pdf",
                   "data_base64": base64.b64encode(b"%PDF-1.4 invoice").decode()}},
    )  # fmt: skip
    wait_until(lambda: recorder.messages(), what="the corrupt inbound webhook")
    document = parse_message(recorder.messages()[0][1])
    assert document.content["filename"] == "invoice.pdf"
    assert document.content["sha256"] != base64.b64encode(hashlib.sha256(b"%PDF-1.4 invoice").digest()).decode()
    reported = sandbox.graph("GET", document.content["id"]).json()["sha256"]
    assert reported != hashlib.sha256(b"%PDF-1.4 invoice").hexdigest()


# --- Mark as read, the request log, retries --------------------------------------------------------------------


def test_mark_as_read_and_typing_indicator_succeed_and_are_recorded(sandbox, recorder):
    read = sandbox.send({"status": "read", "message_id": "wamid.IN1"})
    typing = sandbox.send({"status": "read", "message_id": "wamid.IN2", "typing_indicator": {"type": "text"}})
    assert read.json() == {"success": True} and typing.json() == {"success": True}
    reads = sandbox.control("GET", "reads")
    assert [(r["message_id"], r["typing_indicator"]) for r in reads] == [("wamid.IN1", False), ("wamid.IN2", True)]
    assert_meta_error(sandbox.send({"status": "read"}), status=400, code=100)

    logged = sandbox.control("GET", "requests")
    assert [entry["json"].get("message_id") for entry in logged] == ["wamid.IN1", "wamid.IN2", None]
    assert all("authorization" not in {k.lower() for k in entry["headers"]} for entry in logged)
    assert [entry["status"] for entry in logged] == [200, 200, 400]
    time.sleep(STATUS_DELAY * 3)
    assert recorder.bodies == []  # read receipts are not messages: no status webhooks


def test_webhooks_are_retried_when_the_app_fails(sandbox, recorder):
    sandbox.configure(webhook_retry_delays=[0.05, 0.1, 0.1])
    recorder.fail_next = 2
    result = sandbox.control("POST", "inbound", {"phone_number_id": PHONE_NUMBER_ID, "wa_id": CUSTOMER, "text": "hi"})
    wait_until(lambda: recorder.messages(), what="the retried webhook")

    def recorded() -> dict | None:
        [found] = [d for d in sandbox.control("GET", "webhooks") if d["wamid"] == result["wamid"]]
        return found if found["outcome"] != "pending" else None

    # The app has answered 200 before the sandbox has read the answer and recorded the outcome.
    delivery = wait_until(recorded, what="the outcome recorded")
    assert (delivery["attempts"], delivery["outcome"]) == (3, "delivered")
    assert delivery["responses"] == ["HTTP 500", "HTTP 500", "HTTP 200"]


def test_bad_signing_secret_is_visible_to_the_app(sandbox, recorder):
    sandbox.configure(app_secret="not-the-apps-secret", webhook_retry_delays=[])
    sandbox.control("POST", "inbound", {"phone_number_id": PHONE_NUMBER_ID, "wa_id": CUSTOMER, "text": "hi"})
    wait_until(lambda: recorder.rejected, what="the rejected webhook")
    assert recorder.bodies == []
    wait_until(lambda: sandbox.control("GET", "webhooks")[0]["outcome"] == "dropped", what="the drop")


def test_control_api_rejects_unknown_config(sandbox):
    response = sandbox.http.post(f"{sandbox.base_url}/_sandbox/config", json={"statsu_delay": 1}, timeout=5)
    assert response.status_code == 400 and "statsu_delay" in response.json()["error"]


def test_simulated_customers_write_in(tmp_path):
    recorder = Recorder()
    recorder.thread.start()
    try:
        with running_sandbox(
            "--customers", "3", "--customer-interval", "0.1", "--seed", "4",
            webhook_url=recorder.url, log_path=tmp_path / "customers.log",
        ) as base_url:  # fmt: skip
            wait_until(lambda: len(recorder.messages()) >= 8, timeout=10, what="8 customer messages")
            messages = [(change, parse_message(raw)) for change, raw in recorder.messages()]
            # Seed 4 makes the sixth message a photo; it is downloadable like any customer's media.
            [image] = [message for _, message in messages[:8] if message.type == "image"]
            client = Sandbox(base_url)
            info = client.graph("GET", image.content["id"]).json()
            photo = client.http.get(info["url"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).content
            assert photo.startswith(b"\x89PNG")
            assert base64.b64encode(hashlib.sha256(photo).digest()).decode() == image.content["sha256"]
    finally:
        recorder.httpd.shutdown()
        recorder.httpd.server_close()
    assert recorder.rejected == []
    assert {change.phone_number_id for change, _ in messages} == {"100000000000001"}  # the demo number
    assert {change.display_phone_number for change, _ in messages} == {"15550001111"}
    assert 1 <= len({message.sender.wa_id for _, message in messages}) <= 3
    assert all(message.body for _, message in messages if message.type == "text")


def test_command_refuses_to_start_without_an_app_secret():
    result = subprocess.run(
        [sys.executable, "manage.py", "meta_sandbox", "--port", "0", "--access-token", "t"],
        cwd=PROJECT_ROOT, env=sandbox_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "no app secret" in result.stderr


def test_the_phone_app_sends_an_echo_and_the_customer_an_edit_and_a_revoke_as_signed_webhooks(sandbox, recorder):
    party = {"phone_number_id": PHONE_NUMBER_ID, "wa_id": CUSTOMER}
    echo = sandbox.control("POST", "echo", {**party, "text": "Yes, it left this morning."})
    wait_until(lambda: recorder.bodies, what="the echo webhook")
    [echoes], broken = parse_echoes(json.loads(recorder.bodies[0]))
    assert broken == []
    assert echoes.change.field == "smb_message_echoes" and echoes.change.phone_number_id == PHONE_NUMBER_ID
    assert (echoes.message.wamid, echoes.message.body, echoes.message.sender.wa_id) == (
        echo["wamid"],
        "Yes, it left this morning.",
        CUSTOMER,
    )
    assert recorder.rejected == []

    recorder.clear()
    sandbox.control("POST", "edit", {**party, "original_wamid": "wamid.IN1", "text": "Size M, please"})
    sandbox.control("POST", "revoke", {**party, "original_wamid": "wamid.IN2"})
    wait_until(lambda: len(recorder.messages()) == 2, what="the edit and revoke webhooks")
    edited, revoked = sorted((parse_message(raw) for _change, raw in recorder.messages()), key=lambda m: m.type)
    assert (edited.type, edited.amendment.target_wamid, edited.amendment.body) == (
        "edit",
        "wamid.IN1",
        "Size M, please",
    )
    assert (revoked.type, revoked.amendment.kind, revoked.amendment.target_wamid) == ("revoke", "revoke", "wamid.IN2")

    assert sandbox.http.post(f"{sandbox.base_url}/_sandbox/edit", json=party).status_code == 400


def test_the_phone_app_sends_its_past_chats_in_chunks_and_its_contacts_as_signed_webhooks(sandbox, recorder):
    threads = [
        {"wa_id": CUSTOMER, "messages": [{"text": "Hello?"}, {"text": "Hi! How can we help?", "from_business": True}]},
        {"wa_id": "447700900124", "messages": [{"text": "Open on Sunday?"}]},
    ]
    sent = sandbox.control("POST", "history", {"phone_number_id": PHONE_NUMBER_ID, "threads": threads})
    assert len(sent["webhook_ids"]) == 2
    wait_until(lambda: len(recorder.bodies) == 2, what="the history webhooks")
    chunks = [chunk for body in recorder.bodies for _change, chunk in parse_history(json.loads(body))[0]]
    assert sorted((c.chunk_order, c.progress) for c in chunks) == [(1, 50), (2, 100)]
    assert max(c.phase for c in chunks) == 2
    first = next(c for c in chunks if c.chunk_order == 1)
    [(wa_id, (hello, reply))] = first.threads
    assert (wa_id, hello.outbound, reply.outbound, reply.status) == (CUSTOMER, False, True, "read")
    assert recorder.rejected == []

    recorder.clear()
    contacts = [
        {"phone_number": CUSTOMER, "full_name": "Pablo Morales"},
        {"phone_number": "447700900124", "action": "remove"},
    ]
    sandbox.control("POST", "contact_sync", {"phone_number_id": PHONE_NUMBER_ID, "contacts": contacts})
    wait_until(lambda: recorder.bodies, what="the contact sync webhook")
    items, broken = parse_address_book(json.loads(recorder.bodies[0]))
    assert broken == []
    assert [(i.wa_id, i.full_name, i.first_name, i.removed) for _c, i in items] == [
        (CUSTOMER, "Pablo Morales", "Pablo", False),
        ("447700900124", "", "", True),
    ]

    recorder.clear()
    sandbox.control("POST", "history", {"phone_number_id": PHONE_NUMBER_ID, "declined": True})
    wait_until(lambda: recorder.bodies, what="the declined history webhook")
    [(_change, declined)] = parse_history(json.loads(recorder.bodies[0]))[0]
    assert [e.code for e in declined.errors] == [2593109]
    assert (
        sandbox.http.post(f"{sandbox.base_url}/_sandbox/history", json={"phone_number_id": PHONE_NUMBER_ID}).status_code
        == 400
    )

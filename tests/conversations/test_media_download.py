"""A customer's media fetched from Meta: the access token goes only to Meta's media hosts, redirects are not
followed, a file is never read past its declared size or WhatsApp's limit for its kind, and a media id is
digits or nothing is asked of Meta. The sandbox (a real HTTP server) plays Meta; a small HTTP server of
this module plays a media host that misbehaves in ways the sandbox never does."""

import base64
import hashlib
import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conversations.graph_api import media_url_allowed
from conversations.models import MediaState, Message
from conversations.services.errors import RetryLater
from conversations.services.media import download_inbound_media
from sandbox.customers import png_bytes
from sandbox.simulation import message_change
from tests.conversations.conftest import SANDBOX_TOKEN, graph_requests

pytestmark = pytest.mark.django_db

CUSTOMER = "447700900123"
PNG = png_bytes(rng=random.Random(3))
MB = 1024 * 1024


def customer_sends(
    sandbox, number, deliver, *, kind: str, mime_type: str, data: bytes, media_id: str | None = None
) -> Message:
    """The customer sends a file through the sandbox; its webhook reaches the app (which fetches the media at once)."""
    sent = sandbox.inbound(
        phone_number_id=number.phone_number_id,
        display_phone_number=number.display_phone_number,
        wa_id=CUSTOMER,
        media={"type": kind, "mime_type": mime_type, "data": data},
    )
    with sandbox.lock:
        raw = next(item["message"] for item in sandbox.state.inbound if item["wamid"] == sent["wamid"])
    content = {**raw[kind], **({"id": media_id} if media_id is not None else {})}
    deliver(
        message_change(
            phone_number_id=number.phone_number_id,
            display_phone_number=number.display_phone_number,
            wa_id=CUSTOMER,
            message_type=kind,
            wamid=sent["wamid"],
            content={kind: content},
        )
    )
    return Message.objects.select_related("media").get(wamid=sent["wamid"])


def media_lookups(sandbox, message: Message) -> list[str]:
    """``GET /{media-id}``: each time the app asked Meta for the file's URL."""
    return [path for path in graph_requests(sandbox) if path.split("?")[0].endswith(f"/{message.content['id']}")]


def downloads(sandbox) -> list[str]:
    return [path for path in graph_requests(sandbox) if path.startswith("/media-download/")]


def test_a_customers_photo_is_fetched_verified_and_stored(meta_sandbox, number, deliver):
    message = customer_sends(meta_sandbox, number, deliver, kind="image", mime_type="image/png", data=PNG)
    assert message.media.state == MediaState.READY, message.media.error
    assert message.media.file.read() == PNG and message.media.size == len(PNG)
    assert len(downloads(meta_sandbox)) == 1


def test_a_media_url_that_expired_before_its_download_is_asked_for_again_once(meta_sandbox, number, deliver):
    meta_sandbox.configure({"media_url_expired_next": 1})
    message = customer_sends(meta_sandbox, number, deliver, kind="image", mime_type="image/png", data=PNG)
    assert message.media.state == MediaState.READY, message.media.error
    assert message.media.file.read() == PNG
    assert len(media_lookups(meta_sandbox, message)) == 2  # a fresh URL for the one that had expired
    assert len(downloads(meta_sandbox)) == 2  # the expired URL's 404, then the file


def test_a_media_url_expired_twice_is_left_to_the_tasks_next_try_not_failed(meta_sandbox, number, deliver, monkeypatch):
    monkeypatch.setattr("conversations.jobs.enqueue", lambda *args, **kwargs: None)  # the test runs the download
    message = customer_sends(meta_sandbox, number, deliver, kind="image", mime_type="image/png", data=PNG)
    meta_sandbox.configure({"media_url_expired_next": 2})

    with pytest.raises(RetryLater):
        download_inbound_media(message_id=message.pk)
    message.media.refresh_from_db()
    assert message.media.state == MediaState.PENDING
    assert len(media_lookups(meta_sandbox, message)) == 2

    assert download_inbound_media(message_id=message.pk) == "ready"  # the task's next try
    assert len(media_lookups(meta_sandbox, message)) == 3


@pytest.mark.parametrize("media_id", ["²³", "١٢٣٤", "123/../106540352240077", "me", "12 3"])
def test_a_media_id_that_is_not_ascii_digits_is_refused_before_any_graph_call(meta_sandbox, number, deliver, media_id):
    message = customer_sends(
        meta_sandbox, number, deliver, kind="image", mime_type="image/png", data=PNG, media_id=media_id
    )
    assert message.media.state == MediaState.FAILED
    assert "not a Meta media id" in message.media.error
    assert graph_requests(meta_sandbox) == []


@pytest.mark.parametrize(
    ("media_host", "allowed"),
    [
        ("localhost", "http://127.0.0.1:{port}"),  # another host than the one allowed
        ("127.0.0.1", "127.0.0.1"),  # a bare host is https only
    ],
)
def test_the_token_never_goes_to_a_media_url_off_the_allowed_hosts(
    start_sandbox, settings, number, deliver, media_host, allowed
):
    sandbox = start_sandbox(media_host=media_host)
    settings.META_MEDIA_HOSTS = [allowed.format(port=sandbox.httpd.server_port)]
    message = customer_sends(sandbox, number, deliver, kind="image", mime_type="image/png", data=PNG)
    assert message.media.state == MediaState.FAILED
    assert "not on Meta's media hosts" in message.media.error
    assert downloads(sandbox) == []  # the media info was asked for; the file (with the token) was not


def test_a_file_meta_declares_over_whatsapps_limit_is_not_downloaded(meta_sandbox, number, deliver):
    too_big = PNG + b"\0" * (5 * MB)
    message = customer_sends(meta_sandbox, number, deliver, kind="image", mime_type="image/png", data=too_big)
    assert message.media.state == MediaState.FAILED
    assert "over WhatsApp's 5242880-byte limit for image files" in message.media.error
    assert downloads(meta_sandbox) == [] and message.media.attempts == 1


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2", True),
        ("https://scontent.xx.fbcdn.net/v/t61/file.jpg", True),
        ("https://fbsbx.com/x", True),
        ("http://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1", False),
        ("https://lookaside.fbsbx.com.attacker.example/x", False),
        ("https://notfbsbx.com/x", False),
        ("https://lookaside.fbsbx.com:8443/x", False),
        ("https://attacker.example@lookaside.fbsbx.com/x", False),
        ("https://attacker.example\\@lookaside.fbsbx.com/x", False),
        ("https://lookaside.fbsbx.com\\.attacker.example/x", False),
        ("https://169.254.169.254/latest/meta-data/", False),
        ("file:///etc/passwd", False),
        ("lookaside.fbsbx.com/x", False),
    ],
)
def test_metas_media_hosts_are_the_default_allow_list(url, allowed):
    assert media_url_allowed(url) is allowed


# --- A media host that misbehaves -----------------------------------------------------------------------


class MediaHost:
    """Answers ``GET /<version>/<media-id>`` with media info naming its own ``/file``, and ``/file`` as a test
    sets: a redirect, or ``body`` (with or without Content-Length, or without end)."""

    def __init__(self):
        self.file_size: int | None = None
        self.redirect_to: str | None = None
        self.body = b""
        self.content_length = True
        self.endless = False
        self.requests: list[tuple[str, str]] = []  # (path, Authorization)
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                host.requests.append((self.path, self.headers.get("Authorization", "")))
                if self.path.startswith("/file"):
                    return self.file()
                info = {"messaging_product": "whatsapp", "url": f"{host.url}/file", "mime_type": "image/webp",
                        "sha256": "", "id": self.path.rsplit("/", 1)[-1].split("?")[0]}  # fmt: skip
                if host.file_size is not None:
                    info["file_size"] = str(host.file_size)
                body = json.dumps(info).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def file(self):
                if host.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", host.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/webp")
                if host.content_length and not host.endless:
                    self.send_header("Content-Length", str(len(host.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self.wfile.write(host.body)
                    sent, deadline = len(host.body), time.monotonic() + 20
                    while host.endless and sent < 50 * MB and time.monotonic() < deadline:
                        self.wfile.write(b"\0" * 65536)
                        sent += 65536
                except OSError:  # the app hung up: what a cut-off download looks like from here
                    pass
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"


@pytest.fixture
def media_host(settings) -> Iterator[MediaHost]:
    host = MediaHost()
    thread = threading.Thread(target=host.httpd.serve_forever, daemon=True)
    thread.start()
    settings.META_GRAPH_API_URL = host.url
    settings.META_MEDIA_HOSTS = [host.url]
    settings.META_ACCESS_TOKEN = SANDBOX_TOKEN
    yield host
    host.httpd.shutdown()
    host.httpd.server_close()


def sticker_arrives(number, deliver, *, sha256: str = "") -> Message:
    wamid = "wamid.STICKER" + str(time.monotonic_ns())
    content = {"sticker": {"id": "1234567890123456", "mime_type": "image/webp", "sha256": sha256, "animated": False}}
    deliver(
        message_change(
            phone_number_id=number.phone_number_id, display_phone_number=number.display_phone_number, wa_id=CUSTOMER,
            message_type="sticker", wamid=wamid, content=content,
        )
    )  # fmt: skip
    return Message.objects.select_related("media").get(wamid=wamid)


def test_a_redirect_from_the_media_url_is_not_followed(media_host, number, deliver):
    elsewhere = MediaHost()
    threading.Thread(target=elsewhere.httpd.serve_forever, daemon=True).start()
    try:
        media_host.redirect_to = f"{elsewhere.url}/file"
        message = sticker_arrives(number, deliver)
        assert message.media.state == MediaState.FAILED
        assert "redirected (HTTP 302)" in message.media.error and message.media.attempts == 1
        assert elsewhere.requests == []
    finally:
        elsewhere.httpd.shutdown()
        elsewhere.httpd.server_close()


def test_a_media_host_that_never_stops_sending_is_cut_off_at_the_limit(media_host, number, deliver):
    media_host.body, media_host.endless = b"RIFF\0\0\0\0WEBPVP8 ", True
    started = time.monotonic()
    message = sticker_arrives(number, deliver)
    assert message.media.state == MediaState.FAILED
    assert "over its 512000-byte limit: download aborted" in message.media.error
    assert message.media.attempts == 1, "a file over its limit fails for good"
    assert time.monotonic() - started < 10
    assert not message.media.file


@pytest.mark.parametrize("content_length", [True, False])
def test_more_bytes_than_meta_declared_fail_the_media(media_host, number, deliver, content_length):
    body = b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 2000
    media_host.body, media_host.content_length, media_host.file_size = body, content_length, 1000
    message = sticker_arrives(number, deliver, sha256=base64.b64encode(hashlib.sha256(body).digest()).decode())
    assert message.media.state == MediaState.FAILED
    assert "1000-byte limit" in message.media.error and message.media.attempts == 1
    assert [auth for path, auth in media_host.requests] == [f"Bearer {SANDBOX_TOKEN}"] * 2  # info, then the file

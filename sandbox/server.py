"""The Meta sandbox: a real HTTP server speaking the part of the Graph API the app uses, plus a control API.

Graph API (every path may start with a version such as ``/v23.0``; all need ``Authorization: Bearer``):

- ``POST /{phone-number-id}/messages``: sends (validated as ``messages.validate``), mark-as-read and typing
  indicators. An accepted send answers ``{"messaging_product", "contacts", "messages": [{"id": "wamid..."}]}``
  and then ``sent``/``delivered``/``read`` status webhooks follow, ``status_delay`` seconds apart; a send the
  customer cannot receive (closed 24-hour window, ``fail_next`` async) is accepted and followed by one
  ``failed`` status instead.
- ``POST /{phone-number-id}/media`` (multipart), ``GET /{media-id}``, ``DELETE /{media-id}``,
  ``GET /media-download/<token>`` (bearer required too).
- ``GET /{waba-id}/message_templates``; ``GET /{phone-number-id}?fields=...`` (the number's profile, quality,
  throughput, name review, limits); ``GET /{waba-id}?fields=whatsapp_business_manager_messaging_limit``.

Control API (not Meta's; no auth; JSON; for tests and demos), under ``/_sandbox/``:

- ``GET requests`` every Graph request in order (method, path, headers without Authorization, json, status,
  response); ``GET messages`` accepted sends and their outcome; ``GET reads`` mark-as-read/typing calls;
  ``GET inbound`` customer messages; ``GET webhooks`` deliveries (attempts, outcome, responses);
  ``GET config``; ``GET health``.
- ``POST reset``: logs, media, windows, counters and queued webhooks dropped; the start-up config restored.
- ``POST config`` with any of: ``status_delay``, ``statuses`` (default sent/delivered/read),
  ``duplicate_statuses``, ``shuffle_statuses``, ``fail_next`` (``{"code", "title"?, "details"?,
  "mode": "sync"|"async", "count"?}``), ``server_error_next`` (N, or ``{"count", "code": 131000|2|1|131016}``),
  ``answer_lost_next`` (N, or ``{"mode": "drop"|"delay", "count"?, "seconds"?}``: sends accepted, answers lost),
  ``media_url_expired_next`` (N: the next N media URLs ``GET /{media-id}`` hands out have already expired),
  ``expire_token``, ``rate_limit_mps``, ``pair_limit``/``pair_window``, ``templates``, ``webhook_url``,
  ``webhook_retry_delays``, ``webhook_timeout``, ``assume_window_open``, ``sniff_media``, ``media_url_ttl``,
  ``numbers`` ({phone_number_id: display}), ``waba_id``, ``app_secret``, ``access_token``. Injected failures
  apply to the next N *valid* sends (not to mark-as-read).
- ``POST window`` ``{phone_number_id, wa_id | user_id, last_inbound_at: unix seconds | null}``.
- ``POST inbound`` ``{phone_number_id, display_phone_number?, wa_id | user_id, name?, text}`` or with
  ``media: {type, mime_type, data_base64, caption?, filename?, voice?, animated?}`` or ``type`` + ``content``
  (e.g. ``"location", {"location": {...}}``); optional ``context_wamid``, ``wamid``, ``timestamp``,
  ``corrupt_sha256``. Answers ``{"wamid", "media_id"?, "webhook_id"}``.
- Coexistence (the phone app on the same number): ``POST echo`` ``{phone_number_id, wa_id | user_id, text |
  type + content, name?, wamid?, timestamp?}`` sends a ``smb_message_echoes`` webhook (the business wrote from
  the phone); ``POST edit`` ``{phone_number_id, wa_id | user_id, original_wamid, text}`` and ``POST revoke``
  ``{phone_number_id, wa_id | user_id, original_wamid}`` send the customer's edit and "delete for everyone"
  as ``messages`` webhooks. Each answers ``{"wamid", "webhook_id"}``. ``POST history`` ``{phone_number_id,
  threads: [{wa_id, messages: [{text | type + content, from_business?, timestamp?, status?, wamid?}]}] |
  declined: true}`` sends the past chats as ``history`` webhooks, one chunk per thread, progress rising to 100;
  ``POST contact_sync`` ``{phone_number_id, contacts: [{phone_number, full_name?, action?, timestamp?}]}``
  sends the phone app's contacts as one ``smb_app_state_sync`` webhook. Both answer ``{"webhook_ids"}``.
- ``POST number_quality``, ``number_name``, ``account_update``, ``account_alert``, ``business_capability``,
  ``template_status``, ``template_quality``, ``template_category``, ``user_preferences``, ``security``: set what
  Meta knows and send its account-level webhook (``sandbox/account.py``).

The sha256 of a media file comes in two forms, both of the same bytes and both as Meta sends them:

- in ``messages`` webhooks (``image.sha256`` etc.) it is the **base64 of the SHA-256 digest**
  (``"nWsaBZOn1/DgkDxjlvkIanEY5ga4uG9QV+ZsSg1+Yyo="``): docs/meta.md §3.3 and every webhook sample;
- in ``GET /{media-id}`` it is the **lowercase hex digest** (64 characters): docs/meta.md §7 leaves the
  form open; hex is what the media endpoint answers.

A client checking a download must therefore accept either form (44-character base64 or 64-character hex).
``POST /_sandbox/inbound {"corrupt_sha256": true}`` makes both forms wrong for that file.

Webhooks are signed with the app secret (``X-Hub-Signature-256``), serialised like Meta's
(``sandbox.simulation.to_wire``), and delivered by ``dispatcher.WebhookDispatcher`` with retries.
The sandbox is an outside party: it uses no Django model and no database.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import random
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sandbox.account import (
    CONTROL_NAMES,
    AccountControlError,
    account_envelope,
    account_object,
    build_change,
    number_object,
)
from sandbox.simulation import (
    contact_sync_change,
    echo_change,
    edit_content,
    envelope,
    history_change,
    history_declined_change,
    message_change,
    new_wamid,
    revoke_content,
    status_change,
    to_wire,
)

from .customers import CustomerSimulator
from .dispatcher import DeliveryTarget, WebhookDispatcher
from .errors import GraphError, expired_token, invalid_token, unknown_alias, unsupported
from .media import MAX_UPLOAD_BYTES, FormPart, MediaItem, base_mime, check_upload, new_media_id, parse_multipart
from .messages import OutboundMessage, ReadReceipt, validate
from .state import (
    CONFIG_SETTERS,
    AnswerLostNext,
    ExpiredUrlsNext,
    FailNext,
    SandboxConfig,
    SandboxState,
    ServerErrorNext,
    fresh_config,
)
from .template_review import review

logger = logging.getLogger("sandbox")

VERSION = re.compile(r"^v\d+(\.\d+)?$")
OBJECT_ID = re.compile(r"[0-9]+")
DEFAULT_CUSTOMER_NAME = "Sandbox Customer"
# Failures ``POST /_sandbox/config`` injects into the next sends (kept in the state, so ``reset`` drops them).
INJECTIONS = {
    "fail_next": FailNext.parse,
    "server_error_next": ServerErrorNext.parse,
    "answer_lost_next": AnswerLostNext.parse,
    "media_url_expired_next": ExpiredUrlsNext.parse,
}
TEMPLATE_PAGE_DEFAULT = 25
DAY_SECONDS = 24 * 3600
TEMPLATE_EDIT_WINDOW_SECONDS = 30 * DAY_SECONDS
TEMPLATE_EDITS_PER_WINDOW = 10


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    # answer_lost_next: wait this long before answering, or close the connection without an answer.
    delay: float = 0.0
    drop: bool = False


def json_reply(status: int, payload: Any) -> Reply:
    return Reply(status=status, body=json.dumps(payload, separators=(",", ":")).encode(), json=payload)


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class MetaSandbox:
    def __init__(
        self,
        config: SandboxConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        customers: int = 0,
        customer_interval: float = 5.0,
        seed: int | None = None,
    ):
        self._initial_config = fresh_config(config)
        self.config = config
        self.state = SandboxState()
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self.httpd = ThreadingHTTPServer((host, port), SandboxHandler)
        self.httpd.daemon_threads = True
        self.httpd.sandbox = self  # type: ignore[attr-defined]
        url_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self.base_url = (public_url or f"http://{url_host}:{self.httpd.server_port}").rstrip("/")
        self.dispatcher = WebhookDispatcher(target=self._delivery_target)
        self.customers = (
            CustomerSimulator(
                count=customers, interval=customer_interval, numbers=self._numbers, send=self.inbound, seed=seed
            )
            if customers
            else None
        )
        self._serve_thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted; then call ``close()``."""
        self._start_workers()
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> MetaSandbox:
        """Serve in a background thread (in-process use); ``stop()`` ends it."""
        self._start_workers()
        self._serve_thread = threading.Thread(target=self.httpd.serve_forever, name="sandbox-http", daemon=True)
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        if self._serve_thread is not None:
            self.httpd.shutdown()
            self._serve_thread.join(timeout=5)
        self.close()

    def close(self) -> None:
        if self.customers is not None:
            self.customers.stop()
        self.dispatcher.stop()
        self.httpd.server_close()

    def _start_workers(self) -> None:
        self.dispatcher.start()
        if self.customers is not None:
            self.customers.start()

    # --- request entry point -----------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        parts = urlsplit(raw_path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        if parts.path.startswith("/_sandbox/"):
            try:
                return self._control(method, parts.path.removeprefix("/_sandbox/").strip("/"), body)
            except ControlError as exc:
                return json_reply(exc.status, {"error": str(exc)})
        entry = self._log_request(method, raw_path, headers, body)
        try:
            if parts.path.startswith("/media-download/"):
                reply = self._download(parts.path.removeprefix("/media-download/"), headers, query)
            else:
                reply = self._graph(method, parts.path, query, headers, body, entry)
        except GraphError as exc:
            reply = json_reply(exc.http_status, exc.body())
        reply.headers.setdefault("x-fb-trace-id", "sandbox")
        with self.lock:
            entry["status"] = reply.status
            entry["response"] = reply.json
        return reply

    def _log_request(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        content_type = headers.get("Content-Type", "")
        parsed: Any = None
        if body and "json" in content_type:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        with self.lock:
            self.state.request_seq += 1
            entry = {
                "seq": self.state.request_seq,
                "time": time.time(),
                "method": method,
                "path": raw_path,
                "headers": {k: v for k, v in headers.items() if k.lower() != "authorization"},
                "json": parsed,
                "body_size": len(body),
            }
            self.state.requests.append(entry)
        return entry

    # --- Graph API -----------------------------------------------------------------------------------

    def _graph(
        self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str], body: bytes, entry: dict
    ) -> Reply:
        segments = [s for s in path.split("/") if s]
        version = segments.pop(0) if segments and VERSION.match(segments[0]) else "v23.0"
        self._authenticate(headers, query)
        if method == "POST" and len(segments) == 2 and segments[1] == "messages":
            return self._messages(segments[0], body)
        if method == "POST" and len(segments) == 2 and segments[1] == "media":
            return self._upload(segments[0], headers, body, entry)
        if method == "GET" and len(segments) == 2 and segments[1] == "message_templates":
            return self._templates(segments[0], query, version)
        if method in ("POST", "DELETE") and len(segments) == 2 and segments[1] == "message_templates":
            return self._manage_template(method, segments[0], query, body)
        if method == "POST" and len(segments) == 2 and segments[1] == "uploads":
            return self._start_upload(query)
        if method == "POST" and len(segments) == 1 and segments[0].startswith("upload:"):
            return self._finish_upload(segments[0], headers, body)
        if method == "POST" and len(segments) == 1 and OBJECT_ID.fullmatch(segments[0]):
            return self._edit_template(segments[0], body)
        if method == "GET" and len(segments) == 1:
            return self._get_object(segments[0], query.get("fields", ""))
        if method == "DELETE" and len(segments) == 1:
            return self._delete_media(segments[0])
        raise unsupported(method, "/".join(segments) or "/")

    def _authenticate(self, headers: Mapping[str, str], query: dict[str, str]) -> None:
        header = headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else query.get("access_token", "")
        with self.lock:
            expected, expired = self.config.access_token, self.config.expire_token
        if not token or not hmac.compare_digest(token.encode(), expected.encode()):
            raise invalid_token()
        if expired:
            raise expired_token()

    def _messages(self, phone_number_id: str, body: bytes) -> Reply:
        try:
            payload = json.loads(body or b"null")
        except (UnicodeDecodeError, ValueError):
            raise GraphError(100, "The request body is not valid JSON.") from None
        with self.lock:
            display = self._number(phone_number_id, method="POST")
            parsed = validate(
                payload, templates=self.config.templates, media_exists=lambda media_id: media_id in self.state.media
            )
            if isinstance(parsed, ReadReceipt):
                self.state.reads.append(
                    {
                        "phone_number_id": phone_number_id,
                        "message_id": parsed.message_id,
                        "typing_indicator": parsed.typing,
                        "time": time.time(),
                    }
                )
                return json_reply(200, {"success": True})
            self._injected_sync_failure()
            self._check_throughput(phone_number_id, parsed)
            if parsed.wa_id is not None and parsed.wa_id == display:
                raise GraphError(131021, "The recipient phone number is the sender's own business phone number.")
            reply = self._accept(phone_number_id, display, parsed)
            lost = self.state.answer_lost_next
            if lost is not None and lost.count > 0:
                lost.count -= 1
                if lost.mode == "drop":
                    reply.drop = True
                else:
                    reply.delay = lost.seconds
            return reply

    def _injected_sync_failure(self) -> None:
        server_error = self.state.server_error_next
        if server_error is not None and server_error.count > 0:
            server_error.count -= 1
            raise GraphError(server_error.code, http_status=server_error.http_status)
        fail = self.state.fail_next
        if fail is not None and fail.mode == "sync" and fail.count > 0:
            fail.count -= 1
            raise GraphError(fail.code, fail.details, title=fail.title)

    def _check_throughput(self, phone_number_id: str, message: OutboundMessage) -> None:
        now = time.monotonic()
        by_number = self.state.sends_by_number[phone_number_id]
        while by_number and now - by_number[0] >= 1.0:
            by_number.popleft()
        if len(by_number) >= self.config.rate_limit_mps:
            raise GraphError(130429)
        if self.config.pair_limit:
            by_pair = self.state.sends_by_pair[(phone_number_id, message.recipient_key)]
            while by_pair and now - by_pair[0] >= self.config.pair_window:
                by_pair.popleft()
            if len(by_pair) >= self.config.pair_limit:
                raise GraphError(131056)
            by_pair.append(now)
        by_number.append(now)

    def _accept(self, phone_number_id: str, display: str, message: OutboundMessage) -> Reply:
        wamid = new_wamid()
        failure: GraphError | None = None
        fail = self.state.fail_next
        if fail is not None and fail.mode == "async" and fail.count > 0:
            fail.count -= 1
            failure = GraphError(fail.code, fail.details, title=fail.title)
        elif (
            message.type != "template"
            and not self.config.assume_window_open
            and not self.state.window_open(phone_number_id, message.recipient_key)
        ):
            # Meta accepts the send and reports the closed window only in the status webhook (docs/meta.md §8).
            failure = GraphError(131047)
        self.state.messages.append(
            {
                "wamid": wamid,
                "phone_number_id": phone_number_id,
                "to": message.recipient_input,
                "wa_id": message.wa_id,
                "user_id": message.user_id,
                "type": message.type,
                "context": message.context_id,
                "biz_opaque_callback_data": message.biz_opaque_callback_data,
                "request": message.body,
                "accepted_at": time.time(),
                "outcome": "failed" if failure else "accepted",
                "error": {"code": failure.code, "title": failure.title} if failure else None,
            }
        )
        self._schedule_statuses(phone_number_id, display, message, wamid, failure)
        contact = {"input": message.recipient_input}
        contact.update({"wa_id": message.wa_id} if message.wa_id else {"user_id": message.user_id})
        return json_reply(200, {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": wamid}]})

    def _schedule_statuses(
        self, phone_number_id: str, display: str, message: OutboundMessage, wamid: str, failure: GraphError | None
    ) -> None:
        delay = self.config.status_delay
        if failure is not None:
            plan = ["failed"]
        elif message.type == "reaction":
            plan = [s for s in self.config.statuses if s == "sent"]  # "Reactions you send trigger only a sent status"
        else:
            plan = list(self.config.statuses)
        now = time.time()
        planned: list[tuple[float, bytes, str]] = []
        for index, status in enumerate(plan):
            due = delay * (index + 1)
            change = status_change(
                phone_number_id=phone_number_id,
                display_phone_number=display,
                wamid=wamid,
                status=status,
                recipient_wa_id=message.wa_id or "",
                timestamp=int(now + due),
            )
            item = change["value"]["statuses"][0]
            if message.wa_id is None:
                del item["recipient_id"]
                item["recipient_user_id"] = message.user_id
            if failure is not None:
                item["errors"] = [failure.status_item()]
            if message.biz_opaque_callback_data is not None:
                item["biz_opaque_callback_data"] = message.biz_opaque_callback_data
            if status in ("sent", "delivered"):
                item["pricing"] = self._pricing(message)
            planned.append((due, to_wire(envelope(waba_id=self.config.waba_id, changes=[change])), status))

        send_times = [due for due, _, _ in planned]
        if self.config.shuffle_statuses and len(send_times) > 1:
            # Out of order on purpose (Meta: "the order of these notifications ... may not reflect the actual
            # timing"); the timestamps inside keep the true order.
            ordered = list(send_times)
            while send_times == ordered:
                self._rng.shuffle(send_times)
        for (_, body, status), send_at in zip(planned, send_times, strict=True):
            summary = {"kind": "status", "status": status, "wamid": wamid, "phone_number_id": phone_number_id}
            self.dispatcher.schedule(body=body, app_secret=self.config.app_secret, summary=summary, delay=send_at)
            if self.config.duplicate_statuses:
                # A duplicate is a resend of the identical bytes, as Meta's retries are.
                self.dispatcher.schedule(
                    body=body,
                    app_secret=self.config.app_secret,
                    summary={**summary, "duplicate": True},
                    delay=send_at + max(delay * 0.25, 0.01),
                )

    @staticmethod
    def _pricing(message: OutboundMessage) -> dict[str, Any]:
        if message.template is not None:
            category = str(message.template.get("category") or "utility").lower()
            return {"billable": True, "pricing_model": "PMP", "type": "regular", "category": category}
        return {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}

    def _upload(self, phone_number_id: str, headers: Mapping[str, str], body: bytes, entry: dict) -> Reply:
        form = parse_multipart(content_type=headers.get("Content-Type", ""), body=body)
        with self.lock:
            entry["form"] = {name: _form_summary(part) for name, part in form.items()}
        product = form.get("messaging_product")
        if product is None:
            raise GraphError(100, "The parameter messaging_product is required.")
        if product.data.decode(errors="replace") != "whatsapp":
            raise GraphError(100, f'Param messaging_product must be one of {{WHATSAPP}} - got "{product.data[:40]!r}".')
        file = form.get("file")
        if file is None or file.filename is None:
            raise GraphError(100, "The parameter file is required.")
        declared = form["type"].data.decode(errors="replace").strip() if "type" in form else file.content_type
        if not declared:
            raise GraphError(100, "The parameter type is required.")
        part_type = base_mime(file.content_type)
        if "type" in form and part_type not in ("", "application/octet-stream", base_mime(declared)):
            raise GraphError(131053, f"The file's type {part_type} does not match the type parameter {declared}.")
        with self.lock:
            kind = check_upload(mime_type=declared, data=file.data, sniff=self.config.sniff_media)
            self._number(phone_number_id, method="POST")
            item = MediaItem(
                id=new_media_id(),
                data=file.data,
                mime_type=declared,
                kind=kind,
                phone_number_id=phone_number_id,
                filename=file.filename or "",
            )
            self.state.media[item.id] = item
        return json_reply(200, {"id": item.id})

    def _get_object(self, object_id: str, fields: str = "") -> Reply:
        if not OBJECT_ID.fullmatch(object_id):
            raise unknown_alias(object_id)
        with self.lock:
            item = self.state.media.get(object_id)
            if item is not None:
                return json_reply(
                    200,
                    {
                        "messaging_product": "whatsapp",
                        "url": self._download_url(item, looked_up=True),
                        "mime_type": item.mime_type,
                        "sha256": item.sha256_hex,
                        "file_size": str(len(item.data)),
                        "id": item.id,
                    },
                )
            display = self.config.numbers.get(object_id)
            if display is not None:
                return json_reply(
                    200,
                    number_object(
                        phone_number_id=object_id,
                        display=display,
                        fields=self.state.account.number(object_id),
                        portfolio_limit=self.state.account.portfolio_limit,
                        asked=fields,
                    ),
                )
            if object_id == self.config.waba_id:
                return json_reply(200, account_object(waba_id=object_id, account=self.state.account, asked=fields))
        raise unsupported("GET", object_id)

    def _delete_media(self, media_id: str) -> Reply:
        if not OBJECT_ID.fullmatch(media_id):
            raise unknown_alias(media_id)
        with self.lock:
            if self.state.media.pop(media_id, None) is None:
                raise unsupported("DELETE", media_id)
        return json_reply(200, {"success": True})

    def _download_url(self, item: MediaItem, *, looked_up: bool = False) -> str:
        """A download URL of the media; ``media_url_expired_next`` spends itself on those ``GET /{media-id}``
        hands out (``looked_up``), not on the one a webhook carries."""
        token = secrets.token_urlsafe(24)
        ttl = self.config.media_url_ttl
        expired = self.state.media_url_expired_next if looked_up else None
        if expired:
            ttl = -1.0
            expired.count -= 1
            if expired.count <= 0:
                self.state.media_url_expired_next = None
        self.state.downloads[token] = (item.id, time.monotonic() + ttl)
        return f"{self.base_url}/media-download/{token}"

    def _download(self, token: str, headers: Mapping[str, str], query: dict[str, str]) -> Reply:
        # Meta's media URLs need the bearer token too (docs/meta.md §7); an expired URL answers 404.
        self._authenticate(headers, {})
        with self.lock:
            media_id, expires = self.state.downloads.get(token, ("", 0.0))
            item = self.state.media.get(media_id)
            if item is None or time.monotonic() > expires:
                raise GraphError(
                    100,
                    "The media URL is unknown or has expired; GET the media id again.",
                    title="Media URL expired",
                    http_status=404,
                )
        headers_out = {"Content-Disposition": f'attachment; filename="{item.filename or item.id}"'}
        return Reply(status=200, body=item.data, content_type=item.mime_type, headers=headers_out)

    def _templates(self, waba_id: str, query: dict[str, str], version: str) -> Reply:
        if not waba_id.isdigit():
            raise unsupported("GET", f"{waba_id}/message_templates")
        with self.lock:
            templates = [
                t
                for t in self.config.templates
                if (not query.get("name") or query["name"] in t["name"])
                and (not query.get("status") or query["status"].upper() == str(t.get("status")).upper())
                and (not query.get("language") or query["language"] == t.get("language"))
            ]
        try:
            limit = max(1, min(int(query.get("limit", TEMPLATE_PAGE_DEFAULT)), 1000))
            start = int(_decode_cursor(query["after"])) + 1 if query.get("after") else 0
        except (ValueError, binascii.Error):
            raise GraphError(100, "Param limit must be an integer and after a cursor from a previous page.") from None
        page = templates[start : start + limit]
        paging: dict[str, Any] = {}
        if page:
            paging["cursors"] = {"before": _encode_cursor(start), "after": _encode_cursor(start + len(page) - 1)}
            if start + len(page) < len(templates):
                next_query = urlencode({"limit": limit, "after": paging["cursors"]["after"]})
                paging["next"] = f"{self.base_url}/{version}/{waba_id}/message_templates?{next_query}"
        return json_reply(200, {"data": page, "paging": paging})

    # --- template management (docs/meta.md §8) ---------------------------------------------------------

    def _manage_template(self, method: str, waba_id: str, query: dict[str, str], body: bytes) -> Reply:
        if waba_id != self.config.waba_id:
            raise unsupported(method, f"{waba_id}/message_templates")
        with self.lock:
            if method == "DELETE":
                name, hsm_id = query.get("name", ""), query.get("hsm_id", "")
                kept = [
                    t for t in self.config.templates if not (t["name"] == name and (not hsm_id or t["id"] == hsm_id))
                ]
                if len(kept) == len(self.config.templates):
                    raise GraphError(100, f"Message template {name!r} not found.", subcode=2593002)
                self.config.templates = kept
                return json_reply(200, {"success": True})
            payload = _json_body(body)
            reviewed = review(payload, templates=self.config.templates, samples=self.state.samples, creating=True)
            template = {"id": str(next_template_id(self.config.templates)), "name": payload["name"],
                        "language": payload["language"], "status": "PENDING", **reviewed}  # fmt: skip
            self.config.templates.append(template)
        return json_reply(200, {"id": template["id"], "status": "PENDING", "category": template["category"]})

    def _edit_template(self, template_id: str, body: bytes) -> Reply:
        with self.lock:
            template = next((t for t in self.config.templates if t.get("id") == template_id), None)
            if template is None:
                raise unsupported("POST", template_id)
            if str(template.get("status")).upper() not in ("APPROVED", "REJECTED", "PAUSED"):
                raise GraphError(100, "Only approved, rejected or paused templates can be edited.", subcode=2388025)
            payload = _json_body(body)
            if (
                str(template.get("status")).upper() == "APPROVED"
                and payload.get("category", "").upper() != template["category"]
            ):
                raise GraphError(100, "An approved template's category cannot change.", subcode=2388026)
            if str(template.get("status")).upper() == "APPROVED":
                self._spend_approved_edit(template_id)
            template.update(review(payload, templates=[], samples=self.state.samples, creating=False), status="PENDING")
        return json_reply(200, {"success": True})

    def _spend_approved_edit(self, template_id: str) -> None:
        """Meta lets an approved template be edited once in 24 hours and ten times in 30 days (a rejected or
        paused one as often as needed); past that the edit is refused and the template stays as it was."""
        now = time.time()
        edits = [at for at in self.state.template_edits[template_id] if now - at < TEMPLATE_EDIT_WINDOW_SECONDS]
        if any(now - at < DAY_SECONDS for at in edits) or len(edits) >= TEMPLATE_EDITS_PER_WINDOW:
            raise GraphError(
                100,
                "Edit limit reached for this template.",
                user_message="An approved template can be edited once a day and 10 times in 30 days. Try again later, "
                "or create a new template.",
            )
        self.state.template_edits[template_id] = [*edits, now]

    def _start_upload(self, query: dict[str, str]) -> Reply:
        try:
            length = int(query.get("file_length", ""))
        except ValueError:
            raise GraphError(100, "file_length must be the file's size in bytes.") from None
        session = f"upload:{secrets.token_urlsafe(12)}"
        with self.lock:
            self.state.upload_sessions[session] = (length, query.get("file_type", ""))
        return json_reply(200, {"id": session})

    def _finish_upload(self, session: str, headers: Mapping[str, str], body: bytes) -> Reply:
        with self.lock:
            declared = self.state.upload_sessions.pop(session, None)
            if declared is None or headers.get("file_offset", "") != "0" or declared[0] != len(body):
                raise GraphError(100, "Unknown upload session, or not the file it declared.")
            handle = f"4::{secrets.token_urlsafe(18)}"
            self.state.samples[handle] = len(body)
        return json_reply(200, {"h": handle})

    def _control_display(self, phone_number_id: str) -> str:
        """``_number`` for a control call (the lock held): a phone_number_id that is not digits is the caller's error."""
        try:
            return self._number(phone_number_id, method="POST")
        except GraphError:
            raise ControlError("phone_number_id must be digits") from None

    def _number(self, phone_number_id: str, *, method: str) -> str:
        """The display number of a business number; any numeric id is registered on first use, so an app
        with several numbers needs no sandbox setup (a sandbox convenience: Meta answers 100 for ids it lacks)."""
        display = self.config.numbers.get(phone_number_id)
        if display is None:
            if not phone_number_id.isdigit():
                raise unsupported(method, phone_number_id)
            display = "1555" + phone_number_id[-7:].rjust(7, "0")
            self.config.numbers[phone_number_id] = display
        return display

    def _numbers(self) -> dict[str, str]:
        with self.lock:
            return dict(self.config.numbers)

    def _delivery_target(self) -> DeliveryTarget:
        with self.lock:
            return DeliveryTarget(
                url=self.config.webhook_url,
                retry_delays=list(self.config.webhook_retry_delays),
                timeout=self.config.webhook_timeout,
            )

    # --- customers writing in --------------------------------------------------------------------------

    def inbound(
        self,
        *,
        phone_number_id: str,
        wa_id: str | None = None,
        user_id: str | None = None,
        display_phone_number: str | None = None,
        name: str = DEFAULT_CUSTOMER_NAME,
        text: str | None = None,
        media: dict[str, Any] | None = None,
        message_type: str | None = None,
        content: dict[str, Any] | None = None,
        context_wamid: str | None = None,
        wamid: str | None = None,
        timestamp: int | None = None,
        corrupt_sha256: bool = False,
    ) -> dict[str, Any]:
        """A customer's message to a business number: stored media, a signed ``messages`` webhook, and the
        customer's 24-hour window (re)opened. ``media["data"]`` is the raw bytes."""
        if not wa_id and not user_id:
            raise ControlError("wa_id or user_id is required")
        result: dict[str, Any] = {}
        with self.lock:
            if display_phone_number:
                if not str(display_phone_number).isdigit():
                    raise ControlError("display_phone_number must be digits")
                self.config.numbers[phone_number_id] = str(display_phone_number)
            display = self._control_display(phone_number_id)

            if media is not None:
                message_type, content = self._inbound_media(phone_number_id, media, corrupt_sha256, result)
            elif text is not None:
                message_type, content = "text", {"text": {"body": text}}
            elif message_type and content is not None:
                pass
            else:
                raise ControlError("one of text, media, or type+content is required")

            sent_at = int(timestamp or time.time())
            change = message_change(
                phone_number_id=phone_number_id,
                display_phone_number=display,
                wa_id=wa_id,
                user_id=user_id,
                name=name,
                message_type=message_type,
                wamid=wamid or new_wamid(),
                timestamp=sent_at,
                content=content,
                context={"from": display, "id": context_wamid} if context_wamid else None,
            )
            message = change["value"]["messages"][0]
            body = to_wire(envelope(waba_id=self.config.waba_id, changes=[change]))
            customer = wa_id or user_id or ""
            self.state.windows[(phone_number_id, customer)] = max(
                sent_at, self.state.windows.get((phone_number_id, customer), 0)
            )
            self.state.inbound.append({"wamid": message["id"], "phone_number_id": phone_number_id, "message": message})
            job = self.dispatcher.schedule(
                body=body,
                app_secret=self.config.app_secret,
                summary={
                    "kind": "message",
                    "type": message_type,
                    "wamid": message["id"],
                    "phone_number_id": phone_number_id,
                },
                delay=0,
            )
        result.update(wamid=message["id"], webhook_id=job.id)
        return result

    def _inbound_media(
        self, phone_number_id: str, media: dict[str, Any], corrupt: bool, result: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        kind = media.get("type")
        if kind not in ("image", "video", "audio", "document", "sticker"):
            raise ControlError("media.type must be image, video, audio, document or sticker")
        mime_type = media.get("mime_type")
        data = media.get("data")
        if not isinstance(mime_type, str) or not mime_type or not isinstance(data, bytes) or not data:
            raise ControlError("media needs mime_type and data_base64")
        item = MediaItem(
            id=new_media_id(),
            data=data,
            mime_type=mime_type,
            kind=kind,
            phone_number_id=phone_number_id,
            filename=str(media.get("filename") or ""),
            corrupt_sha256=corrupt,
        )
        self.state.media[item.id] = item
        # Webhooks carry the base64 form of the digest (docs/meta.md §3.3); see the module docstring.
        obj: dict[str, Any] = {
            "id": item.id,
            "mime_type": mime_type,
            "sha256": item.sha256_base64,
            "url": self._download_url(item),
        }
        if media.get("caption") and kind in ("image", "video", "document"):
            obj["caption"] = str(media["caption"])
        if kind == "document":
            obj["filename"] = item.filename or "document"
        if kind == "audio":
            obj["voice"] = bool(media.get("voice", "opus" in mime_type))
        if kind == "sticker":
            obj["animated"] = bool(media.get("animated", False))
        result["media_id"] = item.id
        return kind, {kind: obj}

    # --- control API -------------------------------------------------------------------------------------

    def _control(self, method: str, name: str, body: bytes) -> Reply:
        if method == "GET":
            with self.lock:
                views = {
                    "requests": lambda: list(self.state.requests),
                    "messages": lambda: list(self.state.messages),
                    "reads": lambda: list(self.state.reads),
                    "inbound": lambda: list(self.state.inbound),
                    "config": self._config_view,
                    "health": lambda: {"ok": True, "base_url": self.base_url},
                }
                if name in views:
                    return json_reply(200, views[name]())
            if name == "webhooks":
                return json_reply(200, self.dispatcher.log())
            raise ControlError(f"unknown control endpoint GET /_sandbox/{name}", status=404)
        if method != "POST":
            raise ControlError("the control API takes GET and POST", status=405)
        try:
            payload = json.loads(body or b"{}")
        except (UnicodeDecodeError, ValueError):
            raise ControlError("body is not JSON") from None
        if not isinstance(payload, dict):
            raise ControlError("body must be a JSON object")
        if name == "reset":
            self.reset()
            return json_reply(200, {"reset": True})
        if name == "config":
            return json_reply(200, self.configure(payload))
        if name == "window":
            return json_reply(200, self._set_window(payload))
        if name in ("inbound", *COEXISTENCE_CONTROLS):
            return json_reply(
                200, self._control_inbound(payload) if name == "inbound" else self._coexistence(name, payload)
            )
        if name in CONTROL_NAMES:
            return json_reply(200, self._account_control(name, payload))
        raise ControlError(f"unknown control endpoint POST /_sandbox/{name}", status=404)

    def reset(self) -> None:
        """Back to the state at start: logs, media, windows, counters and queued webhooks dropped, the
        configuration the sandbox was started with restored."""
        with self.lock:
            self.dispatcher.clear()
            self.state = SandboxState()
            self.config = fresh_config(self._initial_config)

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """``POST /_sandbox/config``: any of ``CONFIG_SETTERS`` plus the injected failures (``INJECTIONS``).
        All keys are checked before any is applied."""
        updates: dict[str, Any] = {}
        for key, value in changes.items():
            try:
                if key in INJECTIONS:
                    updates[key] = INJECTIONS[key](value)
                elif key in CONFIG_SETTERS:
                    updates[key] = CONFIG_SETTERS[key](value)
                else:
                    allowed = sorted([*CONFIG_SETTERS, *INJECTIONS])
                    raise ControlError(f"unknown config key {key!r}; allowed: {', '.join(allowed)}")
            except (TypeError, ValueError) as exc:
                raise ControlError(f"{key}: {exc}") from None
        with self.lock:
            for key, value in updates.items():
                if key in INJECTIONS:
                    setattr(self.state, key, value)
                else:
                    setattr(self.config, key, value)
            return self._config_view()

    def _config_view(self) -> dict[str, Any]:
        view = self.config.public()
        for key in INJECTIONS:
            injected = getattr(self.state, key)
            view[key] = vars(injected) if injected else None
        view["base_url"] = self.base_url
        return view

    def _set_window(self, payload: dict[str, Any]) -> dict[str, Any]:
        phone_number_id = payload.get("phone_number_id")
        customer = payload.get("wa_id") or payload.get("user_id")
        if not isinstance(phone_number_id, str) or not isinstance(customer, str) or not customer:
            raise ControlError("phone_number_id and wa_id (or user_id) are required strings")
        last = payload.get("last_inbound_at")
        with self.lock:
            if last is None:
                self.state.windows.pop((phone_number_id, customer), None)
            elif isinstance(last, int | float) and not isinstance(last, bool):
                self.state.windows[(phone_number_id, customer)] = float(last)
            else:
                raise ControlError("last_inbound_at must be unix seconds or null (no window)")
            return {
                "phone_number_id": phone_number_id,
                "customer": customer,
                "last_inbound_at": self.state.windows.get((phone_number_id, customer)),
                "open": self.state.window_open(phone_number_id, customer),
            }

    def _account_control(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Set what Meta knows about a number, the account or a template, and send the webhook Meta sends."""
        at = payload.get("time")
        if at is not None and (isinstance(at, bool) or not isinstance(at, int)):
            raise ControlError("time must be Unix seconds")
        with self.lock:
            try:
                field_name, value = build_change(
                    name,
                    payload,
                    account=self.state.account,
                    templates=self.config.templates,
                    display_of=lambda number_id: self._number(number_id, method="POST"),
                )
            except (AccountControlError, GraphError) as exc:
                raise ControlError(str(exc)) from None
            if not field_name:
                return {"webhook_id": None, "field": None}
            body = to_wire(account_envelope(waba_id=self.config.waba_id, field_name=field_name, value=value, at=at))
            job = self.dispatcher.schedule(
                body=body, app_secret=self.config.app_secret, summary={"kind": "account", "field": field_name}, delay=0
            )
        return {"webhook_id": job.id, "field": field_name}

    def _control_inbound(self, payload: dict[str, Any]) -> dict[str, Any]:
        phone_number_id = payload.get("phone_number_id")
        if not isinstance(phone_number_id, str) or not phone_number_id:
            raise ControlError("phone_number_id is required")
        media = payload.get("media")
        if media is not None:
            if not isinstance(media, dict):
                raise ControlError("media must be an object")
            try:
                data = base64.b64decode(media.get("data_base64") or "", validate=True)
            except (binascii.Error, ValueError):
                raise ControlError("media.data_base64 is not base64") from None
            media = {**media, "data": data}
        content = payload.get("content")
        if content is not None and not isinstance(content, dict):
            raise ControlError('content must be an object, e.g. {"location": {...}}')
        return self.inbound(
            phone_number_id=phone_number_id,
            wa_id=payload.get("wa_id"),
            user_id=payload.get("user_id"),
            display_phone_number=payload.get("display_phone_number"),
            name=str(payload.get("name") or DEFAULT_CUSTOMER_NAME),
            text=payload.get("text"),
            media=media,
            message_type=payload.get("type"),
            content=content,
            context_wamid=payload.get("context_wamid"),
            wamid=payload.get("wamid"),
            timestamp=payload.get("timestamp"),
            corrupt_sha256=bool(payload.get("corrupt_sha256")),
        )

    def _coexistence(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The phone app of a Coexistence number: the business's echo, the customer's edit or revoke, the
        history of its chats and its contacts."""
        if name in ("history", "contact_sync"):
            return self._control_sync(name, payload)
        return self._control_echo(payload) if name == "echo" else self._control_amend(name, payload)

    def _control_sync(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        phone_number_id = payload.get("phone_number_id")
        if not isinstance(phone_number_id, str) or not phone_number_id:
            raise ControlError("phone_number_id is required")
        with self.lock:
            display = self._control_display(phone_number_id)
            where = {"phone_number_id": phone_number_id, "display_phone_number": display}
            if name == "contact_sync":
                contacts = payload.get("contacts")
                if not isinstance(contacts, list) or not all(
                    isinstance(c, dict) and isinstance(c.get("phone_number"), str) for c in contacts
                ):
                    raise ControlError("contacts must be a list of {phone_number, full_name?, action?}")
                changes = [contact_sync_change(contacts=contacts, **where)]
            elif payload.get("declined"):
                changes = [history_declined_change(**where)]
            else:
                threads = payload.get("threads")
                if not isinstance(threads, list) or not threads or not all(_is_thread(t) for t in threads):
                    raise ControlError("threads must be a list of {wa_id, messages: [{text, ...}]}")
                changes = [
                    history_change(
                        threads=[thread],
                        phase=min(2, index * 3 // len(threads)) if index + 1 < len(threads) else 2,
                        chunk_order=index + 1,
                        progress=(index + 1) * 100 // len(threads),
                        **where,
                    )
                    for index, thread in enumerate(threads)
                ]
            jobs = [
                self.dispatcher.schedule(
                    body=to_wire(envelope(waba_id=self.config.waba_id, changes=[change])),
                    app_secret=self.config.app_secret,
                    summary={"kind": name, "phone_number_id": phone_number_id},
                    delay=0,
                )
                for change in changes
            ]
        return {"webhook_ids": [job.id for job in jobs]}

    def _control_echo(self, payload: dict[str, Any]) -> dict[str, Any]:
        party = self._party(payload)
        content = payload.get("content")
        if "text" in payload:
            if not isinstance(payload["text"], str):
                raise ControlError("text must be a string")
            message_type, content = "text", {"text": {"body": payload["text"]}}
        elif isinstance(payload.get("type"), str) and isinstance(content, dict):
            message_type = payload["type"]
        else:
            raise ControlError("one of text or type+content is required")
        timestamp = payload.get("timestamp")
        if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int)):
            raise ControlError("timestamp must be Unix seconds")
        with self.lock:
            display = self._control_display(party["phone_number_id"])
            change = echo_change(
                display_phone_number=display, message_type=message_type, content=content, timestamp=timestamp, **party
            )
            wamid = change["value"]["message_echoes"][0]["id"]
            body = to_wire(envelope(waba_id=self.config.waba_id, changes=[change]))
            job = self.dispatcher.schedule(
                body=body,
                app_secret=self.config.app_secret,
                summary={
                    "kind": "echo",
                    "type": message_type,
                    "wamid": wamid,
                    "phone_number_id": party["phone_number_id"],
                },
                delay=0,
            )
        return {"wamid": wamid, "webhook_id": job.id}

    def _control_amend(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The customer's edit or revoke of an earlier message, as the messages webhook Meta sends for it."""
        party = self._party(payload)
        original = payload.get("original_wamid")
        if not isinstance(original, str) or not original:
            raise ControlError("original_wamid is required")
        if kind == "edit":
            if not isinstance(payload.get("text"), str):
                raise ControlError("text is required")
            content = edit_content(original_wamid=original, text=payload["text"])
        else:
            content = revoke_content(original_wamid=original)
        return self.inbound(message_type=kind, content=content, timestamp=payload.get("timestamp"), **party)

    @staticmethod
    def _party(payload: dict[str, Any]) -> dict[str, Any]:
        """The number, the customer (and their name) and the wamid a control call names."""
        phone_number_id = payload.get("phone_number_id")
        if not isinstance(phone_number_id, str) or not phone_number_id:
            raise ControlError("phone_number_id is required")
        wa_id, user_id = payload.get("wa_id"), payload.get("user_id")
        if not (isinstance(wa_id, str) and wa_id) and not (isinstance(user_id, str) and user_id):
            raise ControlError("wa_id or user_id is required")
        return {
            "phone_number_id": phone_number_id,
            "wa_id": wa_id if isinstance(wa_id, str) else None,
            "user_id": user_id if isinstance(user_id, str) else None,
            "name": str(payload.get("name") or DEFAULT_CUSTOMER_NAME),
            "wamid": payload.get("wamid") if isinstance(payload.get("wamid"), str) else None,
        }


COEXISTENCE_CONTROLS = ("echo", "edit", "revoke", "history", "contact_sync")


def _is_thread(thread: Any) -> bool:
    return (
        isinstance(thread, dict)
        and isinstance(thread.get("wa_id"), str)
        and isinstance(thread.get("messages"), list)
        and all(isinstance(m, dict) and isinstance(m.get("text"), str) for m in thread["messages"])
    )


def _form_summary(part: FormPart) -> Any:
    if part.filename is None and len(part.data) <= 200:
        return part.data.decode(errors="replace")
    return {"filename": part.filename, "content_type": part.content_type, "size": len(part.data)}


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


class SandboxHandler(BaseHTTPRequestHandler):
    """Thin HTTP layer: reads the body, asks ``MetaSandbox.handle``, writes the reply (keep-alive capable)."""

    protocol_version = "HTTP/1.1"
    server_version = "MetaSandbox/1.0"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        sandbox: MetaSandbox = self.server.sandbox  # type: ignore[attr-defined]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_UPLOAD_BYTES:
            self.close_connection = True
            error = GraphError(
                131053, f"Request body over {MAX_UPLOAD_BYTES} bytes or without a valid length.", http_status=413
            )
            self._write(json_reply(413, error.body()))
            return
        body = self.rfile.read(length) if length else b""
        try:
            reply = sandbox.handle(method, self.path, self.headers, body)
        except Exception:
            logger.exception("sandbox: unhandled error on %s %s", method, self.path)
            reply = json_reply(500, GraphError(1, "Unexpected sandbox error.").body())
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True  # the server closes the socket with nothing written
            return
        self._write(reply)

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except (UnicodeDecodeError, ValueError):
        raise GraphError(100, "The request body is not JSON.") from None


def next_template_id(templates: list[dict[str, Any]]) -> int:
    return max([int(t["id"]) for t in templates if str(t.get("id", "")).isdigit()] + [10**15]) + 1

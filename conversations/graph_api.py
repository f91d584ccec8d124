"""The one client for Meta's Graph API (WhatsApp Cloud API): every outbound HTTP call to Meta is here.

One ``requests.Session`` per process (connection reuse), timeouts on every call, the API version from
settings. Meta's errors become ``GraphError`` with a typed ``outcome`` the callers act on; Meta says to
build logic on the error code, not on titles or HTTP status (docs/meta.md §5).
"""

from __future__ import annotations

import enum
import hashlib
import re
import tempfile
import threading
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError
from urllib3.util import parse_url

CONNECT_TIMEOUT = 3.05
UPLOAD_READ_TIMEOUT = 120


class Outcome(enum.Enum):
    WINDOW_CLOSED = "window_closed"  # 131047: outside the 24-hour window, only a template may go
    RETRY = "retry"  # rate limits, Meta's transient errors, 5xx, timeouts: back off and try again
    TOKEN_EXPIRED = "token_expired"  # 190: the number needs a new access token
    PERMANENT = "permanent"  # anything else: fail the message with Meta's code and title


# Meta's throttling codes: Graph's app (4), user (17), application (341) and per-endpoint (613) call limits,
# the WABA's (80007), the number's throughput (130429), the spam (131048) and pair (131056) rate limits.
RATE_LIMIT_CODES = {4, 17, 341, 613, 80007, 130429, 131048, 131056}
TRANSIENT_CODES = {1, 2, 131000, 131016, 131057, 133004}
TOKEN_CODES = {190}


@dataclass
class GraphError(Exception):
    code: int | None
    title: str
    details: str = ""
    http_status: int | None = None
    # The request went out but its answer was lost (a read timeout, the connection dropped after sending):
    # Meta may have acted on it. False when nothing reached Meta (a refused or timed-out connect) or Meta
    # answered.
    answer_lost: bool = False
    # Template management errors: Meta's subcode and its text for the person (in the account's language).
    subcode: int | None = None
    user_message: str = ""

    def __str__(self) -> str:
        return f"Graph API error {self.code}: {self.title} {self.details}".strip()

    @property
    def outcome(self) -> Outcome:
        if self.code == 131047:
            return Outcome.WINDOW_CLOSED
        if self.code in TOKEN_CODES:
            return Outcome.TOKEN_EXPIRED
        if self.code in RATE_LIMIT_CODES or self.code in TRANSIENT_CODES:
            return Outcome.RETRY
        if self.code is None and (self.http_status is None or self.http_status >= 500):
            return Outcome.RETRY  # no Meta error body: a timeout, a connection failure or a bare 5xx
        return Outcome.PERMANENT


@dataclass
class MediaRefused(GraphError):
    """A media download the app will not make or finish: an id that is not Meta's, a URL off Meta's media
    hosts, a redirect, a file over its limit. Trying again gets the same answer."""

    def __str__(self) -> str:
        return self.title

    @property
    def outcome(self) -> Outcome:
        return Outcome.PERMANENT


# Meta's media ids are ASCII digits (str.isdigit() also takes '²'); anything else would make the Graph
# path another endpoint.
DIGITS = re.compile(r"[0-9]+")
DOWNLOAD_CHUNK = 64 * 1024
# A download larger than this goes to a temporary file instead of memory.
DOWNLOAD_IN_MEMORY = 1024 * 1024


def is_media_id(value: object) -> bool:
    return isinstance(value, str) and DIGITS.fullmatch(value) is not None


def media_url_allowed(url: str) -> bool:
    """Whether the bearer token may go to this URL: https on one of META_MEDIA_HOSTS (a host or any host
    under it), or an exact origin listed there (``http://127.0.0.1:8787`` for the sandbox)."""
    try:
        parts = urlsplit(url)
        port = parts.port
        # What requests (urllib3) will connect to must be the host checked here.
        connects_to = (parse_url(url).host or "").lower()
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if not host or host != connects_to or parts.username is not None or parts.password is not None:
        return False
    for entry in settings.META_MEDIA_HOSTS:
        entry = entry.strip().lower().rstrip("/")
        if "://" in entry:
            allowed = urlsplit(entry)
            if (parts.scheme, host, port or None) == (allowed.scheme, allowed.hostname, allowed.port or None):
                return True
        elif entry and parts.scheme == "https" and port in (None, 443):
            suffix = entry.lstrip(".")
            if host == suffix or host.endswith(f".{suffix}"):
                return True
    return False


@dataclass(frozen=True)
class DownloadedMedia:
    file: IO[bytes]  # at position 0; the caller closes it
    size: int
    sha256: bytes  # the digest of exactly these bytes
    content_type: str


@dataclass(frozen=True)
class MediaInfo:
    url: str
    mime_type: str
    sha256: str
    file_size: int | None


_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


class GraphClient:
    def __init__(self, *, access_token: str, base_url: str | None = None, version: str | None = None):
        self.access_token = access_token
        self.base_url = (base_url or settings.META_GRAPH_API_URL).rstrip("/")
        self.version = version or settings.META_GRAPH_API_VERSION

    @classmethod
    def for_number(cls, number) -> GraphClient:
        return cls(access_token=number.access_token_or_default)

    # --- messages ----------------------------------------------------------------------------------

    def send_message(self, *, phone_number_id: str, payload: dict[str, Any]) -> str:
        """POST /{phone-number-id}/messages; returns the wamid Meta accepted."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **payload}
        data = self._request("POST", f"{phone_number_id}/messages", json=body)
        try:
            return str(data["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise GraphError(code=None, title="send response without a message id", http_status=200) from exc

    def mark_read(self, *, phone_number_id: str, wamid: str, typing: bool = False) -> None:
        body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        if typing:
            body["typing_indicator"] = {"type": "text"}
        self._request("POST", f"{phone_number_id}/messages", json=body)

    # --- media -------------------------------------------------------------------------------------

    def upload_media(self, *, phone_number_id: str, content: bytes, mime_type: str, filename: str) -> str:
        data = self._request(
            "POST",
            f"{phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename or "file", content, mime_type)},
            read_timeout=UPLOAD_READ_TIMEOUT,
        )
        return str(data["id"])

    def media_info(self, *, media_id: str, phone_number_id: str | None = None) -> MediaInfo:
        if not is_media_id(media_id):
            raise MediaRefused(code=None, title=f"not a Meta media id (digits only): {media_id[:40]!r}")
        params = {"phone_number_id": phone_number_id} if phone_number_id else None
        data = self._request("GET", media_id, params=params)
        size = data.get("file_size")
        return MediaInfo(
            url=str(data["url"]),
            mime_type=str(data.get("mime_type") or ""),
            sha256=str(data.get("sha256") or ""),
            file_size=int(size) if DIGITS.fullmatch(str(size)) else None,
        )

    def download(self, *, url: str, max_bytes: int) -> DownloadedMedia:
        """The media bytes, streamed. Meta's media URLs need the bearer token too (docs/meta.md §7), so the
        token goes only to META_MEDIA_HOSTS and redirects are not followed; more than ``max_bytes`` aborts."""
        if not media_url_allowed(url):
            raise MediaRefused(code=None, title=f"media URL not on Meta's media hosts: {urlsplit(url).netloc[:100]!r}")
        try:
            response = _session().get(
                url,
                headers=self._auth(),
                timeout=(CONNECT_TIMEOUT, UPLOAD_READ_TIMEOUT),
                stream=True,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise GraphError(code=None, title=f"media download failed: {type(exc).__name__}") from exc
        with response:
            if 300 <= response.status_code < 400:
                raise MediaRefused(
                    code=None,
                    title=f"media download redirected (HTTP {response.status_code})",
                    http_status=response.status_code,
                )
            if response.status_code != 200:
                raise self._error(response)
            declared = response.headers.get("Content-Length", "")
            if DIGITS.fullmatch(declared) and int(declared) > max_bytes:
                raise MediaRefused(
                    code=None, title=f"media file of {declared} bytes is over its {max_bytes}-byte limit"
                )
            return self._receive(response, max_bytes=max_bytes)

    @staticmethod
    def _receive(response: requests.Response, *, max_bytes: int) -> DownloadedMedia:
        file = tempfile.SpooledTemporaryFile(max_size=DOWNLOAD_IN_MEMORY)  # noqa: SIM115 - returned to the caller, who closes it
        digest = hashlib.sha256()
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=DOWNLOAD_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise MediaRefused(code=None, title=f"media file over its {max_bytes}-byte limit: download aborted")
                digest.update(chunk)
                file.write(chunk)
        except BaseException as exc:
            file.close()
            if isinstance(exc, requests.RequestException):
                raise GraphError(code=None, title=f"media download failed: {type(exc).__name__}") from exc
            raise
        file.seek(0)
        return DownloadedMedia(
            file=file, size=size, sha256=digest.digest(), content_type=response.headers.get("Content-Type", "")
        )

    # --- templates and number health -----------------------------------------------------------------

    def list_templates(self, *, waba_id: str) -> list[dict[str, Any]]:
        templates: list[dict[str, Any]] = []
        path: str | None = f"{waba_id}/message_templates"
        params: dict[str, Any] | None = {"limit": 100}
        while path:
            data = self._request("GET", path, params=params)
            templates.extend(data.get("data") or [])
            after = ((data.get("paging") or {}).get("cursors") or {}).get("after")
            has_next = bool((data.get("paging") or {}).get("next"))
            path, params = (
                (f"{waba_id}/message_templates", {"limit": 100, "after": after}) if after and has_next else (None, None)
            )
        return templates

    def create_template(self, *, waba_id: str, template: dict[str, Any]) -> dict[str, Any]:
        """POST /{waba-id}/message_templates: ``{"id", "status", "category"}`` of the template Meta accepted."""
        return self._request("POST", f"{waba_id}/message_templates", json=template)

    def edit_template(self, *, template_id: str, changes: dict[str, Any]) -> None:
        """POST /{template-id} with the category, all components and the parameter format."""
        self._request("POST", template_id, json=changes)

    def delete_template(self, *, waba_id: str, name: str, template_id: str = "") -> None:
        """DELETE /{waba-id}/message_templates?name=: every language of the name, or with ``hsm_id`` just one."""
        params = {"name": name, **({"hsm_id": template_id} if template_id else {})}
        self._request("DELETE", f"{waba_id}/message_templates", params=params)

    def upload_sample(self, *, app_id: str, content: bytes, mime_type: str, filename: str) -> str:
        """Meta's Resumable Upload API: a session on the app, then the bytes; the handle a template's media
        header names as its sample (``example.header_handle``)."""
        session = self._request(
            "POST",
            f"{app_id}/uploads",
            params={"file_name": filename, "file_length": len(content), "file_type": mime_type},
        )
        data = self._request(
            "POST",
            str(session["id"]),
            data=content,
            headers={"file_offset": "0", "Content-Type": mime_type},
            read_timeout=UPLOAD_READ_TIMEOUT,
        )
        return str(data["h"])

    def phone_number(self, *, phone_number_id: str) -> dict[str, Any]:
        return self._request("GET", phone_number_id)

    def phone_number_profile(self, *, phone_number_id: str) -> dict[str, Any]:
        """GET /{phone-number-id} with the fields an operator checks: display number, verified name and
        quality rating. Succeeds only if this token may use the number (190 expired/invalid, 100 unknown)."""
        return self._request(
            "GET", phone_number_id, params={"fields": "display_phone_number,verified_name,quality_rating"}
        )

    def phone_number_fields(self, *, phone_number_id: str, fields: list[str]) -> dict[str, Any]:
        """GET /{phone-number-id}?fields=...: only the fields asked for (Meta answers 100 for one it does not know)."""
        return self._request("GET", phone_number_id, params={"fields": ",".join(fields)})

    def subscribed_apps(self, *, waba_id: str) -> list[dict[str, Any]]:
        """GET /{waba-id}/subscribed_apps: the apps whose webhooks receive this WABA's events; an empty list
        means Meta sends this account's webhooks to nobody."""
        data = self._request("GET", f"{waba_id}/subscribed_apps")
        return list(data.get("data") or [])

    # --- plumbing ----------------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def _request(
        self, method: str, path: str, *, read_timeout: float | None = None, headers: dict | None = None, **kwargs
    ) -> dict[str, Any]:
        url = f"{self.base_url}/{self.version}/{path}"
        timeout = (CONNECT_TIMEOUT, read_timeout or settings.META_GRAPH_API_READ_TIMEOUT)
        try:
            response = _session().request(
                method, url, headers={**self._auth(), **(headers or {})}, timeout=timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise GraphError(
                code=None, title=f"{type(exc).__name__} calling the Graph API", answer_lost=_answer_lost(exc)
            ) from exc
        if response.status_code >= 400:
            raise self._error(response)
        try:
            return response.json()
        except ValueError as exc:
            raise GraphError(
                code=None, title="Graph API answered with non-JSON", http_status=response.status_code
            ) from exc

    @staticmethod
    def _error(response: requests.Response) -> GraphError:
        try:
            error = response.json().get("error") or {}
        except (ValueError, AttributeError):
            error = {}
        code = error.get("code")
        message = str(error.get("message") or "")
        # Meta's message is "(#131026) Message undeliverable": keep the title without the code prefix.
        title = message.split(") ", 1)[1] if message.startswith("(#") and ") " in message else message
        details = str((error.get("error_data") or {}).get("details") or "")
        return GraphError(
            code=int(code) if isinstance(code, int) else None,
            title=title or f"HTTP {response.status_code}",
            details=details,
            http_status=response.status_code,
            subcode=error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None,
            user_message=str(error.get("error_user_msg") or ""),
        )


def _answer_lost(exc: requests.RequestException) -> bool:
    """Whether the request may have reached Meta without its answer reaching us. Only what surely sent
    nothing says no: a connect that was refused or timed out (urllib3 names it as the reason of its retry
    error), a name that did not resolve, a request that could not be built. A read timeout, a connection
    broken once the request was under way, anything else: it may have gone out."""
    if isinstance(exc, requests.ConnectTimeout | ValueError | requests.exceptions.InvalidJSONError):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return not (isinstance(exc, requests.ConnectionError) and isinstance(reason, ConnectTimeoutError))

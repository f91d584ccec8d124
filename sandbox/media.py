"""Media the sandbox holds: Meta's upload limits, a light content sniff, multipart parsing, the two hash forms.

Limits (docs/meta.md §7): image jpeg/png 5 MB; video mp4/3gp 16 MB; audio aac/amr/mp3/m4a/ogg 16 MB;
sticker webp 100 KB static / 500 KB animated; documents 100 MB. A type outside the list, a file over its
limit, or bytes that are plainly not what the declared type says (Meta's usual cause of 131053) answer
``131053 Media upload error``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

from .errors import GraphError

KB = 1024
MB = 1024 * 1024

# mime type -> (media kind, size limit in bytes)
MIME_LIMITS: dict[str, tuple[str, int]] = {
    "image/jpeg": ("image", 5 * MB),
    "image/png": ("image", 5 * MB),
    "video/mp4": ("video", 16 * MB),
    "video/3gpp": ("video", 16 * MB),
    "audio/aac": ("audio", 16 * MB),
    "audio/amr": ("audio", 16 * MB),
    "audio/mpeg": ("audio", 16 * MB),
    "audio/mp4": ("audio", 16 * MB),
    "audio/ogg": ("audio", 16 * MB),
    "image/webp": ("sticker", 500 * KB),  # animated; a static sticker is held to 100 KB below
    "text/plain": ("document", 100 * MB),
    "application/pdf": ("document", 100 * MB),
    "application/msword": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("document", 100 * MB),
    "application/vnd.ms-excel": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("document", 100 * MB),
    "application/vnd.ms-powerpoint": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ("document", 100 * MB),
}
STATIC_STICKER_LIMIT = 100 * KB
# The largest request body the sandbox reads: the 100 MB document limit plus multipart overhead.
MAX_UPLOAD_BYTES = 101 * MB


def base_mime(mime_type: str) -> str:
    """``audio/ogg; codecs=opus`` -> ``audio/ogg``."""
    return mime_type.split(";", 1)[0].strip().lower()


def _sniff_matches(mime: str, data: bytes) -> bool:
    """False only when the bytes are certainly not the declared format (magic numbers of the common types)."""
    if mime == "image/jpeg":
        return data.startswith(b"\xff\xd8\xff")
    if mime == "image/png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if mime == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if mime == "application/pdf":
        return data.startswith(b"%PDF")
    if mime in ("video/mp4", "video/3gpp", "audio/mp4"):
        return data[4:8] == b"ftyp"
    if mime == "audio/ogg":
        return data.startswith(b"OggS")
    return True


def check_upload(*, mime_type: str, data: bytes, sniff: bool) -> str:
    """Meta's checks of an upload; returns the media kind (image, video, audio, sticker, document)."""
    mime = base_mime(mime_type)
    if mime not in MIME_LIMITS:
        raise GraphError(
            131053,
            f"Param file must be a file with one of the following types: "
            f"{', '.join(sorted(MIME_LIMITS))}. Received file of type '{mime or 'unknown'}'.",
        )
    kind, limit = MIME_LIMITS[mime]
    if kind == "sticker" and b"ANIM" not in data[:64]:
        limit = STATIC_STICKER_LIMIT
    if not data:
        raise GraphError(131053, "Uploaded file is empty.")
    if len(data) > limit:
        raise GraphError(131053, f"File size {len(data)} bytes exceeds the {limit // KB} KB limit for {mime}.")
    if sniff and not _sniff_matches(mime, data):
        raise GraphError(131053, f"Uploaded file's content does not match its declared type {mime}.")
    return kind


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def new_media_id() -> str:
    # Meta's media ids are 15-16 digit numbers, sent as strings.
    return str(10**15 + secrets.randbelow(9 * 10**15))


@dataclass
class MediaItem:
    id: str
    data: bytes
    mime_type: str
    kind: str
    phone_number_id: str
    filename: str = ""
    download_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    created_at: float = field(default_factory=time.time)
    # Set only by ``/_sandbox/inbound {"corrupt_sha256": true}``: the hash Meta reports does not match the bytes.
    corrupt_sha256: bool = False

    @property
    def sha256_hex(self) -> str:
        return sha256_hex(b"corrupted:" + self.data if self.corrupt_sha256 else self.data)

    @property
    def sha256_base64(self) -> str:
        return sha256_base64(b"corrupted:" + self.data if self.corrupt_sha256 else self.data)


@dataclass(frozen=True)
class FormPart:
    name: str
    data: bytes
    filename: str | None
    content_type: str


def parse_multipart(*, content_type: str, body: bytes) -> dict[str, FormPart]:
    """multipart/form-data with the stdlib ``email`` parser (``cgi`` is deprecated). Last part of a name wins."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise GraphError(100, "Expected a multipart/form-data body with a boundary.")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise GraphError(100, "The multipart/form-data body could not be parsed.")
    parts: dict[str, FormPart] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        parts[str(name)] = FormPart(
            name=str(name),
            data=payload,
            filename=part.get_filename(),
            content_type=str(part.get("Content-Type") or ""),
        )
    return parts

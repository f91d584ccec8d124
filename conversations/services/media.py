"""Media: inbound files fetched from Meta and stored with Django's storage API; outbound files checked
against Meta's limits before anything is uploaded (docs/meta.md §7).

Downloads never run inside a database transaction (they take seconds); the message row exists first,
its ``MediaFile`` says pending until the bytes are stored and their sha256 verified, and failed (with
the reason, shown in the thread) only after every retry: a message never silently lacks its media.
"""

import base64
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from conversations import jobs
from conversations.graph_api import GraphClient, GraphError, MediaRefused, Outcome
from conversations.models import Conversation, MediaFile, MediaState, Message
from conversations.services.errors import RetryLater, SendRefused
from conversations.snapshots import message_snapshot
from realtime import events
from realtime.publish import publish_event

logger = logging.getLogger(__name__)

MB = 1024 * 1024
# Meta's accepted MIME types and size limits per media kind.
MEDIA_LIMITS = {
    "image": ({"image/jpeg", "image/png"}, 5 * MB),
    "video": ({"video/mp4", "video/3gpp"}, 16 * MB),
    "audio": ({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}, 16 * MB),
    "document": (
        {
            "text/plain",
            "application/pdf",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        },
        100 * MB,
    ),
    "sticker": ({"image/webp"}, 500 * 1024),
}
INBOUND_MEDIA_TYPES = {"image", "video", "audio", "document", "sticker"}
# What the browser may show in the page: raster images and the audio and video WhatsApp carries. Anything
# else a customer sends (an SVG or HTML "image" among them) is served as a download.
INLINE_MEDIA_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/webp", "image/gif"} | MEDIA_LIMITS["audio"][0] | MEDIA_LIMITS["video"][0]
)


def base_mime_type(mime_type: str) -> str:
    """``audio/ogg; codecs=opus`` -> ``audio/ogg``."""
    return mime_type.split(";")[0].strip().lower()


def media_kind(mime_type: str) -> str:
    base = base_mime_type(mime_type)
    for kind, (types, _limit) in MEDIA_LIMITS.items():
        if base in types:
            return kind
    raise SendRefused("unsupported_media", f"WhatsApp does not accept {base or 'this kind of file'}.")


def check_outbound_media(*, upload) -> str:
    """The upload's MIME type if Meta will take it; ``SendRefused`` with a clear reason otherwise."""
    mime_type = base_mime_type(getattr(upload, "content_type", "") or "")
    kind = media_kind(mime_type)
    limit = MEDIA_LIMITS[kind][1]
    if upload.size > limit:
        raise SendRefused(
            "too_large",
            f"WhatsApp limits {kind} files to {limit // MB if limit >= MB else limit // 1024} {'MB' if limit >= MB else 'KB'}.",
        )
    if upload.size == 0:
        raise SendRefused("empty", "The file is empty.")
    return mime_type


def expect_inbound_media(*, message: Message) -> MediaFile | None:
    """Called when a media message is stored: records what to fetch and enqueues the download on commit."""
    if message.type not in INBOUND_MEDIA_TYPES or not message.content.get("id"):
        return None
    # What the customer's message says, each cut to its column so that storing never fails; the id is checked
    # before any Graph call (GraphClient.media_info).
    described = {
        field: str(message.content.get(key) or "")[: MediaFile._meta.get_field(field).max_length]
        for field, key in (
            ("meta_media_id", "id"),
            ("mime_type", "mime_type"),
            ("sha256", "sha256"),
            ("filename", "filename"),
        )
    }
    media = MediaFile.objects.create(message=message, **described)
    jobs.enqueue(jobs.DOWNLOAD_INBOUND_MEDIA, message.pk)
    return media


# A download still pending this long after anything last happened to it has lost its task's retries (each
# waits a few minutes at most); a newer one that has been tried is left to its task.
STRANDED_DOWNLOAD_AFTER = timedelta(minutes=15)


def requeue_stranded_media(*, limit: int) -> int:
    """For the outbound sweep: enqueue downloads left pending (never started, or whose retries were lost),
    oldest first; how many."""
    now = timezone.now()
    grace = timedelta(seconds=settings.OUTBOUND_SWEEP_GRACE_SECONDS)
    stranded = MediaFile.objects.filter(state=MediaState.PENDING).filter(
        Q(attempts=0, updated_at__lt=now - grace) | Q(updated_at__lt=now - grace - STRANDED_DOWNLOAD_AFTER)
    )
    message_ids = list(stranded.order_by("updated_at").values_list("message_id", flat=True)[:limit])
    # Handed over now: the next sweeps leave them to this task for a while.
    MediaFile.objects.filter(message_id__in=message_ids, state=MediaState.PENDING).update(updated_at=now)
    for message_id in message_ids:
        jobs.enqueue(jobs.DOWNLOAD_INBOUND_MEDIA, message_id)
    return len(message_ids)


def sha256_matches(*, digest: bytes, expected: str) -> bool:
    """Meta gives the digest base64-encoded in webhooks and hex-encoded from the media endpoint."""
    return expected in (base64.b64encode(digest).decode(), digest.hex())


def download_inbound_media(*, message_id: int) -> str:
    """Fetch, verify and store one message's media. Raises ``RetryLater`` on what may pass."""
    media = MediaFile.objects.select_related("message__conversation__number").get(message_id=message_id)
    if media.state == MediaState.READY:
        return "ready"
    number = media.message.conversation.number
    client = GraphClient.for_number(number)
    MediaFile.objects.filter(pk=media.pk).update(attempts=media.attempts + 1)
    try:
        info, download = _fetch(client=client, media=media, number=number)
    except GraphError as error:
        if error.outcome is Outcome.PERMANENT or error.outcome is Outcome.TOKEN_EXPIRED:
            fail_inbound_media(message_id=message_id, error=str(error))
            return "failed"
        raise RetryLater(str(error)) from error
    with download.file:
        expected = media.sha256 or info.sha256
        if expected and not sha256_matches(digest=download.sha256, expected=expected):
            raise RetryLater(
                f"sha256 mismatch for media {media.meta_media_id}: the download is not the file Meta described"
            )
        mime_type = media.mime_type or info.mime_type or base_mime_type(download.content_type)
        extension = (mime_type.split("/")[-1].split(";")[0] or "bin")[:10]
        name = media.filename or f"{media.meta_media_id}.{extension}"
        with transaction.atomic():
            media = MediaFile.objects.select_for_update().get(pk=media.pk)
            if media.state == MediaState.READY:
                return "ready"
            media.file.save(f"{uuid.uuid4().hex}-{name}", File(download.file), save=False)
            media.size = download.size
            media.mime_type = mime_type
            media.state = MediaState.READY
            media.error = ""
            media.save()
            _publish_message_updated(media.message_id)
    return "ready"


# What Meta's media host answers a URL past its 5 minutes (or one it no longer knows).
EXPIRED_URL_STATUSES = (401, 403, 404)


def _fetch(*, client: GraphClient, media: MediaFile, number):
    """The media's info and its download. A fresh URL every attempt (Meta's media URLs expire after 5 minutes);
    one that expired before its download (a slow worker, a clock running behind) is asked for once more, and
    a second expired one leaves the file to the task's next try rather than failing it."""
    for second_url in (False, True):
        info = client.media_info(media_id=media.meta_media_id, phone_number_id=number.phone_number_id)
        try:
            return info, client.download(url=info.url, max_bytes=_download_limit(kind=media.message.type, info=info))
        except MediaRefused:
            raise
        except GraphError as error:
            if error.http_status not in EXPIRED_URL_STATUSES:
                raise
            if second_url:
                raise RetryLater(f"media {media.meta_media_id}: its URL expired twice before its download") from error
            logger.info("media %s: its URL had expired; asking Meta for a new one", media.meta_media_id)
    raise AssertionError("not reached: the second URL returns or raises")


def _download_limit(*, kind: str, info) -> int:
    """The most a download may bring: Meta's limit for the kind, or the size Meta declared if smaller."""
    limit = MEDIA_LIMITS.get(kind, MEDIA_LIMITS["document"])[1]
    if info.file_size is None:
        return limit
    if info.file_size > limit:
        raise MediaRefused(
            code=None,
            title=f"Meta declares {info.file_size} bytes, over WhatsApp's {limit}-byte limit for {kind} files",
        )
    return info.file_size


@transaction.atomic
def fail_inbound_media(*, message_id: int, error: str) -> None:
    updated = (
        MediaFile.objects.filter(message_id=message_id)
        .exclude(state=MediaState.READY)
        .update(state=MediaState.FAILED, error=error[:2000])
    )
    if updated:
        _publish_message_updated(message_id)


def _publish_message_updated(message_id: int) -> None:
    message = Message.objects.select_related("media").get(pk=message_id)
    number_id = Conversation.objects.filter(pk=message.conversation_id).values_list("number_id", flat=True).get()
    publish_event(number_id=number_id, type=events.MESSAGE_UPDATED, payload={"message": message_snapshot(message)})

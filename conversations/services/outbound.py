"""Outbound writes: staff replies queued in the outbox and delivered to Meta by Celery tasks, read
receipts and typing indicators.

The outbox: a message row exists (status ``pending``) before any task runs, and the page shows it at
once. The task claims it with a conditional UPDATE (one sender at a time), calls the Graph API outside
any transaction, stores the wamid, and lets status webhooks advance it. Every outbound message carries
an idempotency key that Meta echoes in its status webhooks (``biz_opaque_callback_data``): if the send
response is lost but Meta accepted the message, the first status webhook attaches the wamid, and a retry
sees it and does not send twice.

Meta offers no idempotent send: ``biz_opaque_callback_data`` is only echoed back, a second POST is a second
message. So a send whose answer was lost after the request went out (a read timeout, a dropped connection)
is never retried by itself: it becomes ``unconfirmed``, the status webhook that may still come attaches its
wamid and moves it on, and otherwise a person decides (``resend_unconfirmed_message`` /
``discard_unconfirmed_message``). A send that never reached Meta (refused or timed-out connect) is retried.

Work whose task was lost (Redis down when it was enqueued, a retry that never came back) is found by the
periodic ``sweep_outbound_work``.
"""

import logging
import uuid
from datetime import timedelta

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from conversations import jobs, template_format
from conversations.graph_api import GraphClient, GraphError, Outcome
from conversations.models import (
    SUMMARY_FIELDS,
    BusinessNumber,
    Conversation,
    Direction,
    MediaFile,
    MediaState,
    Message,
    MessageStatus,
    MessageTemplate,
    Reaction,
)
from conversations.selectors import labels_by_conversation, marketing_opted_out
from conversations.services.errors import RetryLater, SendRefused
from conversations.services.limits import reserve_business_initiated_send
from conversations.services.media import check_outbound_media, media_kind, requeue_stranded_media
from conversations.services.pacing import take_send_slot
from conversations.services.statuses import advance_message_status, publish_status_changed, register_sent_message
from conversations.services.workflow import assign_replier
from conversations.snapshots import conversation_snapshot, message_snapshot, reaction_snapshots
from realtime import events
from realtime.publish import publish_event

logger = logging.getLogger(__name__)

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
# A claim older than this belongs to a worker that died mid-send: whether Meta got the message is unknown.
STALE_CLAIM = timedelta(minutes=5)
# Rows the outbound sweep hands to workers per kind and run, oldest first; the next run takes the rest.
SWEEP_BATCH = 500
# Meta dismisses a typing indicator after 25 s; sending one more often than this is noise.
TYPING_INDICATOR_EVERY = timedelta(seconds=20)


# --- queueing (called by the API and the composer) ----------------------------------------------------


@transaction.atomic
def send_text(*, user, conversation: Conversation, text: str, reply_to_wamid: str = "") -> Message:
    text = text.strip()
    if not text:
        raise SendRefused("empty", "Type a message first.")
    if len(text) > TEXT_LIMIT:
        raise SendRefused("too_long", f"WhatsApp messages are limited to {TEXT_LIMIT} characters.")
    return _queue(
        user=user,
        conversation=conversation,
        type="text",
        body=text,
        preview=text,
        content={"body": text},
        reply_to_wamid=reply_to_wamid,
    )


@transaction.atomic
def send_template(
    *,
    user,
    conversation: Conversation,
    template: MessageTemplate,
    params: list[str] | tuple[str, ...] = (),
    values: dict[str, str] | None = None,
    header_file=None,
    header_link: str = "",
) -> Message:
    """Queue an approved template. ``values`` by slot key (``template_format.send_slots``: ``header``,
    ``body.1`` / ``body.first_name``, ``button.0``); ``params`` are positional body values (``body.1``, ...).
    A media header comes as an uploaded file (sent to Meta's media endpoint at delivery) or an https link."""
    if template.waba_id != conversation.number.waba_id:
        raise SendRefused("template_unavailable", "That template is not available for this number.")
    if template.status.upper() != "APPROVED":
        raise SendRefused(
            "template_not_approved",
            f"{template.name} is {template.status.lower() or 'not approved'}: only approved templates can be sent.",
        )
    if not template.components:  # announced by a webhook, its content not synced from Meta yet
        raise SendRefused(
            "template_not_approved", f"{template.name} is still being fetched from Meta: try again in a moment."
        )
    if template.category.upper() == "MARKETING" and marketing_opted_out(conversation=conversation):
        raise SendRefused(
            "marketing_opted_out", "This customer stopped marketing messages from this number: send a utility template."
        )
    values = {key: str(value).strip() for key, value in (values or {}).items()}
    values.update({f"body.{index}": str(value).strip() for index, value in enumerate(params, start=1)})
    try:
        template_format.check_send_values(template.components, values)
    except template_format.TemplateInvalid as invalid:
        raise SendRefused("template_params", invalid.detail) from invalid
    slots = template_format.send_slots(template.components)
    media_slot = next((s for s in slots if s.key == "header" and s.kind != "text"), None)
    header_media, mime_type = _template_header_media(slot=media_slot, upload=header_file, link=header_link)
    components = template_format.send_components(template.components, values, header_media=header_media)
    body = template_format.filled_text(template.body_text, values, prefix="body.")
    content = {"name": template.name, "language": template.language, "components": components}
    message = _queue(
        user=user,
        conversation=conversation,
        type="template",
        body=body,
        preview=body or template.name,
        content=content,
        publish=header_file is None,
    )
    if media_slot is not None and header_file is not None:
        filename = (header_file.name or "file").rsplit("/", 1)[-1][:200]
        media = MediaFile(
            message=message, mime_type=mime_type, filename=filename, size=header_file.size, state=MediaState.READY
        )
        media.file.save(f"{uuid.uuid4().hex}-{filename}", header_file, save=False)
        media.save()
        _publish_created(message)
    return message


def _template_header_media(*, slot, upload, link: str) -> tuple[dict | None, str]:
    """The header's media object for Meta (a link now; an uploaded file's id is filled in at delivery)."""
    if slot is None:
        return None, ""
    if upload is not None:
        mime_type = check_outbound_media(upload=upload)
        if media_kind(mime_type) != slot.kind:
            raise SendRefused("template_params", f"This template's header takes a {slot.kind}.")
        media: dict = {"id": ""}
        if slot.kind == "document":
            media["filename"] = (upload.name or "file").rsplit("/", 1)[-1][:200]
        return media, mime_type
    link = link.strip()
    if not link.startswith("https://") or any(ch.isspace() for ch in link):
        raise SendRefused("template_params", f"Attach the header {slot.kind}, or give its https link.")
    media = {"link": link}
    if slot.kind == "document":
        media["filename"] = link.rstrip("/").rsplit("/", 1)[-1][:200] or "document"
    return media, ""


@transaction.atomic
def send_reaction(*, user, conversation: Conversation, message_wamid: str, emoji: str) -> Message:
    """React (or, with an empty emoji, remove the reaction) to a message of this conversation."""
    if not conversation.messages.filter(wamid=message_wamid).exists():
        raise SendRefused("unknown_message", "You can only react to a message of this conversation.")
    message = _queue(
        user=user,
        conversation=conversation,
        type="reaction",
        body=emoji,
        preview=f"Reacted {emoji}" if emoji else "Removed a reaction",
        content={"message_id": message_wamid, "emoji": emoji},
        show_in_thread=False,
    )
    Reaction.objects.update_or_create(
        message_wamid=message_wamid,
        contact=None,
        defaults={"emoji": emoji, "reaction_wamid": f"pending:{message.pk}", "reacted_at": message.timestamp},
    )
    current = Reaction.objects.filter(message_wamid=message_wamid).select_related("contact")
    target = conversation.messages.get(wamid=message_wamid)
    publish_event(
        number_id=conversation.number_id,
        type=events.MESSAGE_REACTIONS_CHANGED,
        payload={
            "conversation_id": conversation.pk,
            "wamid": message_wamid,
            "message_id": target.pk,
            "reactions": reaction_snapshots(current),
        },
    )
    return message


@transaction.atomic
def send_media(*, user, conversation: Conversation, upload, caption: str = "", reply_to_wamid: str = "") -> Message:
    mime_type = check_outbound_media(upload=upload)
    kind = media_kind(mime_type)
    caption = caption.strip()
    if len(caption) > CAPTION_LIMIT:
        raise SendRefused("too_long", f"Captions are limited to {CAPTION_LIMIT} characters.")
    filename = (upload.name or "file").rsplit("/", 1)[-1][:200]
    labels = {
        "image": "📷 Photo",
        "video": "🎥 Video",
        "audio": "🎵 Audio",
        "document": f"📄 {filename}",
        "sticker": "Sticker",
    }
    preview = f"{labels[kind]}: {caption}" if caption else labels[kind]
    message = _queue(
        user=user,
        conversation=conversation,
        type=kind,
        body=caption,
        preview=preview,
        content={"mime_type": mime_type, "filename": filename, "caption": caption},
        reply_to_wamid=reply_to_wamid,
        publish=False,
    )
    media = MediaFile(message=message, mime_type=mime_type, filename=filename, size=upload.size, state=MediaState.READY)
    media.file.save(f"{uuid.uuid4().hex}-{filename}", upload, save=False)
    media.save()
    _publish_created(message)
    return message


def _queue(
    *,
    user,
    conversation: Conversation,
    type: str,
    body: str,
    preview: str,
    content: dict,
    reply_to_wamid: str = "",
    show_in_thread: bool = True,
    publish: bool = True,
) -> Message:
    _check_sendable(conversation=conversation, type=type)
    if reply_to_wamid and not conversation.messages.filter(wamid=reply_to_wamid).exists():
        raise SendRefused("unknown_message", "You can only reply to a message of this conversation.")
    # A template outside the window starts a conversation: it counts against the portfolio's limit. A reply
    # inside the window reads nothing more (the window is on the conversation in hand).
    business_initiated = type == "template" and not conversation.window_is_open()
    if business_initiated:
        reserve_business_initiated_send(conversation=conversation)
    with transaction.atomic():
        message = Message.objects.create(
            business_initiated=business_initiated,
            conversation=conversation,
            direction=Direction.OUTBOUND,
            type=type,
            body=body,
            preview=preview[:300],
            content=content,
            reply_to_wamid=reply_to_wamid,
            timestamp=timezone.now(),
            status=MessageStatus.PENDING,
            sent_by=user,
            idempotency_key=uuid.uuid4(),
        )
        if show_in_thread:
            assign_replier(user=user, conversation=conversation)
            _touch_conversation(conversation=conversation, message=message)
            if publish:
                _publish_created(message)
        jobs.enqueue(jobs.DELIVER_OUTBOUND_MESSAGE, message.pk)
    return message


def _touch_conversation(*, conversation: Conversation, message: Message) -> None:
    """The conversation notes the reply (``Conversation.note_message``) on its row as it is now, locked."""
    # The lock the UPDATE takes anyway, not FOR UPDATE: customer messages inserted meanwhile need not wait.
    current = Conversation.objects.select_for_update(no_key=True).only(*SUMMARY_FIELDS).get(pk=conversation.pk)
    if current.note_message(message):
        current.save(update_fields=SUMMARY_FIELDS)


def _check_sendable(*, conversation: Conversation, type: str) -> None:
    if conversation.number.needs_reauthorization:
        raise SendRefused(
            "reauthorization_required", "Meta says this number's access token expired; an admin must set a new one."
        )
    if type != "template" and not conversation.window_is_open():
        raise SendRefused(
            "window_closed",
            "The 24-hour window is closed: the customer has not written in the last 24 hours. Send a template.",
        )


def _publish_created(message: Message) -> None:
    conversation = Conversation.objects.select_related("contact", "assignee").get(pk=message.conversation_id)
    snapshot = conversation_snapshot(conversation, labels=labels_by_conversation([conversation.pk])[conversation.pk])
    publish_event(
        number_id=conversation.number_id,
        type=events.MESSAGE_CREATED,
        payload={"message": message_snapshot(message), "conversation": snapshot},
    )


# --- delivery (called by the Celery task) --------------------------------------------------------------


def deliver_outbound_message(*, message_id: int) -> str:
    """Send one queued message to Meta. Returns what happened; raises ``RetryLater`` on transient failure.

    Must not run inside a transaction: the claim is committed before the HTTP call, so a second worker
    (a redelivered task) sees it and stays away.
    """
    now = timezone.now()
    unsent = Message.objects.filter(
        pk=message_id, direction=Direction.OUTBOUND, status=MessageStatus.PENDING, wamid__isnull=True
    )
    if unsent.filter(send_claimed_at__lt=now - STALE_CLAIM).exists():
        # Its worker died during the call to Meta, and no status webhook has attached a wamid since.
        taken_over = mark_send_unconfirmed(message_id=message_id, claimed_before=now - STALE_CLAIM)
        return "unconfirmed" if taken_over else "skipped"
    claimed = unsent.filter(send_claimed_at__isnull=True).update(
        send_claimed_at=now, send_attempted_at=now, send_attempts=F("send_attempts") + 1
    )
    if not claimed:
        return "skipped"
    message = Message.objects.select_related("conversation__number", "conversation__contact").get(pk=message_id)
    number = message.conversation.number
    if number.needs_reauthorization:
        fail_outbound_message(
            message_id=message_id, code=190, title="Access token expired: an admin must set a new one"
        )
        return "failed"
    try:
        take_send_slot(number=number)
    except RetryLater:
        _release_for_retry(message)
        raise
    client = GraphClient.for_number(number)
    try:
        payload = _graph_payload(message=message, client=client)
    except GraphError as error:  # uploading the media: nothing of the message itself reached Meta
        return _handle_send_error(message=message, error=error)
    try:
        wamid = client.send_message(phone_number_id=number.phone_number_id, payload=payload)
    except GraphError as error:
        if error.answer_lost:
            mark_send_unconfirmed(message_id=message_id)
            return "unconfirmed"
        return _handle_send_error(message=message, error=error)
    with transaction.atomic():
        register_sent_message(message=message, wamid=wamid)
        Message.objects.filter(pk=message_id).update(send_claimed_at=None)
        if message.type == "reaction":
            Reaction.objects.filter(message_wamid=message.content["message_id"], contact=None).update(
                reaction_wamid=wamid
            )
    return "sent"


def _handle_send_error(*, message: Message, error: GraphError) -> str:
    outcome = error.outcome
    if outcome is Outcome.RETRY:
        _release_for_retry(message)
        raise RetryLater(str(error)) from error
    if outcome is Outcome.TOKEN_EXPIRED:
        BusinessNumber.objects.filter(pk=message.conversation.number_id).update(needs_reauthorization=True)
    title = error.title
    if outcome is Outcome.WINDOW_CLOSED:
        title = f"{error.title}: the 24-hour window closed; send a template"
    fail_outbound_message(message_id=message.pk, code=error.code, title=title)
    return "failed"


def _release_for_retry(message: Message) -> None:
    """Let go of the claim for the task's retry, which Celery schedules within its exponential backoff for this
    attempt (conversations/tasks.py RETRY_POLICY): a retry not there by then, and the sweep's grace, was lost with
    the broker, and the sweep sends the message."""
    wait = get_exponential_backoff_interval(
        factor=int(max(1.0, settings.TASK_RETRY_BACKOFF_SECONDS)),  # as Celery's autoretry reads retry_backoff
        retries=message.send_attempts - 1,
        maximum=settings.TASK_RETRY_BACKOFF_MAX_SECONDS,
    )
    Message.objects.filter(pk=message.pk).update(
        send_claimed_at=None, send_retry_due_at=timezone.now() + timedelta(seconds=wait)
    )


@transaction.atomic
def mark_send_unconfirmed(*, message_id: int, claimed_before=None) -> bool:
    """The send may have reached Meta but no answer came back: ``unconfirmed`` until a status webhook
    attaches the wamid (``record_statuses`` finds it by its idempotency key) or a person decides. Only a
    message still without a wamid changes (a webhook may have been quicker); ``claimed_before`` limits it
    to a claim that old. Whether it changed."""
    message = (
        Message.objects.select_for_update()
        .filter(pk=message_id, status=MessageStatus.PENDING, wamid__isnull=True)
        .filter(Q(send_claimed_at__lt=claimed_before) if claimed_before else Q())
        .first()
    )
    if message is None:
        if claimed_before is None:  # our own claim, on a message a status webhook has meanwhile attached
            Message.objects.filter(pk=message_id).update(send_claimed_at=None)
        return False
    message.status = MessageStatus.UNCONFIRMED
    message.status_at = timezone.now()
    message.send_claimed_at = None
    message.save(update_fields=["status", "status_at", "send_claimed_at"])
    logger.warning(
        "message %s: the send's answer was lost; unconfirmed until a status webhook or a decision", message_id
    )
    publish_status_changed(message)
    return True


@transaction.atomic
def resend_unconfirmed_message(*, message: Message) -> Message:
    """A person's decision on an unconfirmed message: Meta did not get it, send it again. It goes back to
    the outbox with the same idempotency key, so a status webhook of the first try that comes before the
    resend still attaches its wamid and the resend is skipped."""
    locked = _unconfirmed_for_update(message)
    conversation = Conversation.objects.select_related("number").get(pk=locked.conversation_id)
    _check_sendable(conversation=conversation, type=locked.type)
    locked.status = MessageStatus.PENDING
    locked.status_at = timezone.now()
    locked.save(update_fields=["status", "status_at"])
    publish_status_changed(locked)
    jobs.enqueue(jobs.DELIVER_OUTBOUND_MESSAGE, locked.pk)
    return locked


@transaction.atomic
def discard_unconfirmed_message(*, user, message: Message) -> Message:
    """A person's decision on an unconfirmed message: leave it unsent. It shows as failed; if Meta did have
    it after all, its status webhooks still attach the wamid and a ``delivered`` or ``read`` shows that."""
    locked = _unconfirmed_for_update(message)
    who = user.get_username() if user is not None else "staff"
    title = f"Not confirmed by Meta; discarded by {who}"
    advance_message_status(
        message=locked, status=MessageStatus.FAILED, at=timezone.now(), error_code=None, error_title=title
    )
    return locked


def _unconfirmed_for_update(message: Message) -> Message:
    locked = Message.objects.select_for_update().filter(pk=message.pk, direction=Direction.OUTBOUND).first()
    if locked is None or locked.status != MessageStatus.UNCONFIRMED or locked.wamid is not None:
        raise SendRefused("not_unconfirmed", "Only a message Meta has not confirmed can be sent again or discarded.")
    return locked


@transaction.atomic
def fail_outbound_message(*, message_id: int, code: int | None, title: str) -> None:
    message = Message.objects.select_for_update().get(pk=message_id)
    Message.objects.filter(pk=message_id).update(send_claimed_at=None)
    if message.wamid is None:
        advance_message_status(
            message=message, status=MessageStatus.FAILED, at=timezone.now(), error_code=code, error_title=title
        )


def _graph_payload(*, message: Message, client: GraphClient) -> dict:
    contact = message.conversation.contact
    payload: dict = {"biz_opaque_callback_data": str(message.idempotency_key)}
    # Reply to the wa_id Meta gave us (with '+', so Meta does not prepend the business's country code),
    # or to the BSUID of a customer whose phone we never saw.
    if contact.wa_id:
        payload["to"] = f"+{contact.wa_id}"
    else:
        payload["recipient"] = contact.user_id
    if message.reply_to_wamid:
        payload["context"] = {"message_id": message.reply_to_wamid}
    content = message.content
    if message.type == "text":
        payload.update(type="text", text={"body": content["body"], "preview_url": True})
    elif message.type == "reaction":
        payload.update(type="reaction", reaction={"message_id": content["message_id"], "emoji": content["emoji"]})
    elif message.type == "template":
        template: dict = {"name": content["name"], "language": {"code": content["language"]}}
        if content.get("components"):
            template["components"] = _with_uploaded_header(content["components"], message=message, client=client)
        elif content.get("params"):  # queued before templates had headers and buttons
            template["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": value} for value in content["params"]]}
            ]
        payload.update(type="template", template=template)
    else:
        media = message.media
        media_object: dict = {"id": _uploaded_media_id(media=media, message=message, client=client)}
        # Meta's audio and sticker objects take no caption: one there fails the send.
        if content.get("caption") and message.type in ("image", "video", "document"):
            media_object["caption"] = content["caption"]
        if message.type == "document":
            media_object["filename"] = media.filename
        payload.update(type=message.type, **{message.type: media_object})
    return payload


def _uploaded_media_id(*, media: MediaFile, message: Message, client: GraphClient) -> str:
    if not media.meta_media_id:
        with media.file.open("rb") as handle:
            media.meta_media_id = client.upload_media(
                phone_number_id=message.conversation.number.phone_number_id,
                content=handle.read(),
                mime_type=media.mime_type,
                filename=media.filename,
            )
        media.save(update_fields=["meta_media_id", "updated_at"])
    return media.meta_media_id


def _with_uploaded_header(components: list[dict], *, message: Message, client: GraphClient) -> list[dict]:
    """The queued components, a header media left without an id given the uploaded file's."""
    filled = []
    for part in components:
        parameters = part.get("parameters") or []
        kind = parameters[0].get("type") if part.get("type") == "header" and parameters else None
        if kind in ("image", "video", "document") and "id" in parameters[0][kind]:
            media_id = _uploaded_media_id(media=message.media, message=message, client=client)
            part = {**part, "parameters": [{"type": kind, kind: {**parameters[0][kind], "id": media_id}}]}
        filled.append(part)
    return filled


# --- read receipts and typing -----------------------------------------------------------------------------


def latest_inbound_wamid(*, conversation_id: int) -> str | None:
    return _latest_inbound(conversation_id).values_list("wamid", flat=True).first()


def _latest_inbound(conversation_id: int):
    inbound = Message.objects.filter(conversation_id=conversation_id, direction=Direction.INBOUND)
    return inbound.order_by("-timestamp", "-id")


def request_read_receipt(*, conversation: Conversation) -> bool:
    """Owe the customer blue ticks up to their latest message, and enqueue sending them on commit. The debt
    is written on the conversation first, so a receipt whose task is lost is still sent by the sweep."""
    latest = _latest_inbound(conversation.pk).values_list("pk", flat=True).first()
    if latest is None:
        return False
    Conversation.objects.filter(pk=conversation.pk).update(
        read_receipt_message_id=latest, read_receipt_requested_at=timezone.now()
    )
    jobs.enqueue(jobs.SEND_READ_RECEIPT, conversation.pk)
    return True


def send_read_receipt(*, conversation_id: int) -> bool:
    """Blue ticks on the customer's phone for everything up to the message the conversation owes a receipt
    for. The debt is cleared once Meta took the receipt or refused it for good; a transient failure raises
    ``RetryLater`` and leaves it owed. Idempotent: a second task finds nothing owed and calls nobody."""
    conversation = Conversation.objects.select_related("number").get(pk=conversation_id)
    owed = conversation.read_receipt_message_id
    if owed is None:
        return False
    number = conversation.number
    wamid = Message.objects.filter(pk=owed).values_list("wamid", flat=True).first()
    sent = False
    if wamid and number.send_read_receipts and not number.needs_reauthorization:
        sent = _call_read_endpoint(number=number, wamid=wamid, typing=False)
    # Only this debt: a read meanwhile may owe a receipt up to a later message, which stays owed.
    Conversation.objects.filter(pk=conversation_id, read_receipt_message_id=owed).update(
        read_receipt_message_id=None, read_receipt_requested_at=None
    )
    return sent


def request_typing_indicator(*, conversation: Conversation) -> bool:
    """Show "typing…" to the customer while staff type; at most once per 20 s per conversation, and only
    while a reply is possible (Meta: only show it if you will respond)."""
    if not conversation.window_is_open() or conversation.number.needs_reauthorization:
        return False
    try:
        if not cache.add(f"typing-indicator:{conversation.pk}", 1, timeout=TYPING_INDICATOR_EVERY.total_seconds()):
            return False
        jobs.enqueue_now(jobs.SEND_TYPING_INDICATOR, conversation.pk)
    except Exception:  # Redis away: a typing indicator is best-effort and never worth an error
        logger.warning("typing indicator for conversation %s not sent", conversation.pk, exc_info=True)
        return False
    return True


def send_typing_indicator(*, conversation_id: int) -> bool:
    conversation = Conversation.objects.select_related("number").get(pk=conversation_id)
    wamid = latest_inbound_wamid(conversation_id=conversation_id)
    if not wamid:
        return False
    _call_read_endpoint(number=conversation.number, wamid=wamid, typing=True)
    return True


def _call_read_endpoint(*, number: BusinessNumber, wamid: str, typing: bool) -> bool:
    """Whether Meta took it; ``RetryLater`` when it may next time. Marking read twice is harmless, so a
    lost answer is retried like any transient failure."""
    try:
        GraphClient.for_number(number).mark_read(phone_number_id=number.phone_number_id, wamid=wamid, typing=typing)
    except GraphError as error:
        if error.outcome is Outcome.RETRY:
            raise RetryLater(str(error)) from error
        if error.outcome is Outcome.TOKEN_EXPIRED:
            BusinessNumber.objects.filter(pk=number.pk).update(needs_reauthorization=True)
        logger.warning("read receipt/typing indicator for %s refused: %s", wamid, error)
        return False
    return True


# --- the outbound sweep (Celery beat) ---------------------------------------------------------------------


def sweep_outbound_work() -> dict[str, int]:
    """Hand to workers again the outbound work whose task was lost: replies Meta has not accepted, customer
    media not downloaded, read receipts not sent, each only once it has waited longer than its task would
    (``OUTBOUND_SWEEP_GRACE_SECONDS``). Idempotent: a task that finds its row already done does nothing,
    and a send is claimed with a conditional UPDATE. Returns how many of each were enqueued."""
    return {
        "messages": requeue_stranded_messages(),
        "media": requeue_stranded_media(limit=SWEEP_BATCH),
        "read_receipts": requeue_owed_read_receipts(),
    }


def requeue_stranded_messages() -> int:
    now = timezone.now()
    grace = timedelta(seconds=settings.OUTBOUND_SWEEP_GRACE_SECONDS)
    stranded = (
        Message.objects.filter(wamid__isnull=True, direction=Direction.OUTBOUND, status=MessageStatus.PENDING)
        .filter(
            # never claimed by a worker: its task was not enqueued (Redis down) or was lost
            Q(send_attempts=0, created_at__lt=now - grace)
            # to be tried again, and not tried by the time its retry was due: the retry was lost
            | Q(send_claimed_at__isnull=True, send_retry_due_at__lt=now - grace)
            # claimed by a worker that died during the call: the task marks it unconfirmed
            | Q(send_claimed_at__lt=now - STALE_CLAIM)
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    ids = list(stranded)
    for message_id in ids:
        jobs.enqueue(jobs.DELIVER_OUTBOUND_MESSAGE, message_id)
    return len(ids)


def requeue_owed_read_receipts() -> int:
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.OUTBOUND_SWEEP_GRACE_SECONDS)
    owed = Conversation.objects.filter(read_receipt_message_id__isnull=False, read_receipt_requested_at__lt=cutoff)
    ids = list(owed.order_by("read_receipt_requested_at").values_list("pk", flat=True)[:SWEEP_BATCH])
    # Asked for again now: the next sweeps leave them to this task for another grace period.
    Conversation.objects.filter(pk__in=ids, read_receipt_message_id__isnull=False).update(read_receipt_requested_at=now)
    for conversation_id in ids:
        jobs.enqueue(jobs.SEND_READ_RECEIPT, conversation_id)
    return len(ids)

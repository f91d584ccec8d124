"""Meta's validation of ``POST /{phone-number-id}/messages`` bodies (docs/meta.md §5 and §6).

Which code an error gets follows the Graph API's layering: the top-level Graph parameters
(``messaging_product``, ``to``/``recipient``, ``type``) and any key an object does not define, or of the
wrong JSON type (``schema.check_object``, as strict as Meta's OpenAPI description), answer ``100 Invalid
parameter``; the WhatsApp message contents answer ``131008`` (required parameter missing) or ``131009``
(parameter value not valid); template problems answer the 132xxx codes. Nothing here touches the sandbox's
state except through the ``media_exists`` callback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import GraphError, invalid, missing
from .schema import NUMBER, check_object
from .templates import validate_template_send

MESSAGE_TYPES = (
    "text", "image", "audio", "video", "document", "sticker", "reaction", "template", "interactive", "location",
    "contacts",
)  # fmt: skip
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# The keys each object may have (Meta's OAS ``BaseMessageProperties`` and message schemas; captions only on
# image, video and document, a filename only on documents).
TOP_LEVEL_FIELDS = {
    "messaging_product": str, "recipient_type": str, "to": str, "recipient": str, "type": str,
    "biz_opaque_callback_data": str, "context": dict,
}  # fmt: skip
READ_RECEIPT_FIELDS = {
    "messaging_product": str, "recipient_type": str, "status": str, "message_id": str, "typing_indicator": dict,
}  # fmt: skip
TYPING_INDICATOR_FIELDS = {"type": str}
CONTEXT_FIELDS = {"message_id": str}
TEXT_FIELDS = {"body": str, "preview_url": bool}
REACTION_FIELDS = {"message_id": str, "emoji": str}
MEDIA_FIELDS = {
    "image": {"id": str, "link": str, "caption": str},
    "video": {"id": str, "link": str, "caption": str},
    "document": {"id": str, "link": str, "caption": str, "filename": str},
    "audio": {"id": str, "link": str},
    "sticker": {"id": str, "link": str},
}
LOCATION_FIELDS = {"latitude": (*NUMBER, str), "longitude": (*NUMBER, str), "name": str, "address": str}
INTERACTIVE_TYPES = (
    "button", "list", "cta_url", "flow", "product", "product_list", "catalog_message", "location_request_message",
    "address_message", "call_permission_request",
)  # fmt: skip
TEXT_MAX = 4096
CAPTION_MAX = 1024
OPAQUE_MAX = 512
BSUID = re.compile(r"^[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}$")
PHONE_FORMATTING = re.compile(r"[\s+\-().]")
PHONE_DIGITS = re.compile(r"[0-9]{7,15}")


@dataclass(frozen=True)
class ReadReceipt:
    message_id: str
    typing: bool


@dataclass(frozen=True)
class OutboundMessage:
    recipient_input: str
    wa_id: str | None  # digits, when sent to a phone number
    user_id: str | None  # the BSUID, when sent to ``recipient`` only
    type: str
    context_id: str | None
    biz_opaque_callback_data: str | None
    template: dict[str, Any] | None  # the stored template, for template sends
    body: dict[str, Any]

    @property
    def recipient_key(self) -> str:
        """The customer this message goes to, as the 24-hour window and the pair limit count them."""
        return self.wa_id or self.user_id or ""


def validate(
    body: Any, *, templates: list[dict[str, Any]], media_exists: Callable[[str], bool]
) -> OutboundMessage | ReadReceipt:
    if not isinstance(body, dict):
        raise GraphError(100, "The request body must be a JSON object.")
    product = body.get("messaging_product")
    if product is None:
        raise GraphError(100, "The parameter messaging_product is required.")
    if product != "whatsapp":
        raise GraphError(100, f'Param messaging_product must be one of {{WHATSAPP}} - got "{product}".')
    if "status" in body:
        return _read_receipt(body)

    message_type = body.get("type", "text")
    if message_type not in MESSAGE_TYPES:
        raise GraphError(
            100, f'Param type must be one of {{{", ".join(t.upper() for t in MESSAGE_TYPES)}}} - got "{message_type}".'
        )
    check_object(
        body, where=None, fields={**TOP_LEVEL_FIELDS, message_type: list if message_type == "contacts" else dict}
    )
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type != "individual":
        raise invalid("recipient_type", f'must be "individual" in the sandbox - got "{recipient_type}".')
    wa_id, user_id, recipient_input = _recipient(body)

    content = body.get(message_type)
    if content is None:
        raise missing(message_type)

    stored_template = None
    if message_type == "template":
        stored_template = validate_template_send(templates, content)
    elif message_type in MEDIA_TYPES:
        _media(message_type, content, media_exists)
    else:
        CONTENT_CHECKS[message_type](content)

    context_id = _context_id(body.get("context"))
    opaque = body.get("biz_opaque_callback_data")
    if opaque is not None and len(opaque.encode()) > OPAQUE_MAX:
        raise invalid("biz_opaque_callback_data", f"must be a string of at most {OPAQUE_MAX} bytes.")
    return OutboundMessage(
        recipient_input=recipient_input,
        wa_id=wa_id,
        user_id=user_id,
        type=message_type,
        context_id=context_id,
        biz_opaque_callback_data=opaque,
        template=stored_template,
        body=body,
    )


def _context_id(context: Any) -> str | None:
    """The wamid a reply quotes, if it quotes one."""
    if context is None:
        return None
    check_object(context, where="context", fields=CONTEXT_FIELDS)
    if not context.get("message_id"):
        raise invalid("context['message_id']", "must be the wamid of a message in this conversation.")
    return context["message_id"]


def _read_receipt(body: dict[str, Any]) -> ReadReceipt:
    check_object(body, where=None, fields=READ_RECEIPT_FIELDS)
    if body["status"] != "read":
        raise GraphError(100, f'Param status must be one of {{READ}} - got "{body["status"]}".')
    message_id = body.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise GraphError(100, "The parameter message_id is required.")
    typing = body.get("typing_indicator")
    if (
        typing is not None
        and check_object(typing, where="typing_indicator", fields=TYPING_INDICATOR_FIELDS).get("type") != "text"
    ):
        raise invalid("typing_indicator['type']", "must be one of {TEXT}.")
    return ReadReceipt(message_id=message_id, typing=typing is not None)


def _recipient(body: dict[str, Any]) -> tuple[str | None, str | None, str]:
    to = body.get("to")
    recipient = body.get("recipient")
    if to is not None:  # "if both to and recipient are given, to wins" (M-BSUID)
        digits = PHONE_FORMATTING.sub("", to)
        if not PHONE_DIGITS.fullmatch(digits):
            raise invalid("to", f'is not a valid phone number - got "{to}".')
        return digits, None, to
    if recipient is not None:
        if not BSUID.match(recipient):
            raise invalid("recipient", f'is not a valid business-scoped user id - got "{recipient}".')
        return None, recipient, recipient
    raise GraphError(100, "The parameter to is required.")


def _text(content: Any) -> None:
    text = check_object(content, where="text", fields=TEXT_FIELDS).get("body")
    if not text:
        raise missing("text['body']")
    if len(text) > TEXT_MAX:
        raise invalid("text['body']", f"must be at most {TEXT_MAX} characters long.")


def _media(kind: str, content: Any, media_exists: Callable[[str], bool]) -> None:
    check_object(content, where=kind, fields=MEDIA_FIELDS[kind])
    media_id, link = content.get("id"), content.get("link")
    if media_id and link:
        raise invalid(kind, "must have only one of id or link.")
    if not media_id and not link:
        raise missing(f"{kind}['id'] or {kind}['link']")
    if media_id is not None and not media_exists(media_id):
        raise GraphError(100, f"Param {kind}['id'] is not a valid whatsapp business account media attachment ID")
    if link is not None and not link.startswith(("http://", "https://")):
        raise invalid(f"{kind}['link']", "must be an http(s) URL.")
    if len(content.get("caption", "")) > CAPTION_MAX:
        raise invalid(f"{kind}['caption']", f"must be at most {CAPTION_MAX} characters long.")


def _reaction(content: Any) -> None:
    check_object(content, where="reaction", fields=REACTION_FIELDS)
    if not content.get("message_id"):
        raise missing("reaction['message_id']")
    # An empty emoji removes the reaction; the key itself is required.
    if "emoji" not in content:
        raise missing("reaction['emoji']")


def _interactive(content: Any) -> None:
    if not isinstance(content, dict):
        raise invalid("interactive", "must be an object.")
    kind = content.get("type")
    if kind is None:
        raise missing("interactive['type']")
    if kind not in INTERACTIVE_TYPES:
        raise invalid("interactive['type']", f'must be one of {{{", ".join(INTERACTIVE_TYPES)}}} - got "{kind}".')
    action = content.get("action")
    if kind not in ("location_request_message",) and not isinstance(action, dict):
        raise missing("interactive['action']")
    if kind in ("button", "list"):
        _interactive_body(content.get("body"))
    if kind == "button":
        _interactive_buttons(action.get("buttons"))
    elif kind == "list":
        _interactive_list(action)


def _interactive_body(body: Any) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        raise missing("interactive['body']['text']")
    if len(body["text"]) > CAPTION_MAX:
        raise invalid("interactive['body']['text']", f"must be at most {CAPTION_MAX} characters long.")


def _interactive_buttons(buttons: Any) -> None:
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise invalid("interactive['action']['buttons']", "must have between 1 and 3 buttons.")
    for index, button in enumerate(buttons):
        reply = button.get("reply") if isinstance(button, dict) else None
        if not isinstance(reply, dict) or not reply.get("id") or not reply.get("title"):
            raise missing(f"interactive['action']['buttons'][{index}]['reply']['id'/'title']")
        if len(str(reply["title"])) > 20:
            where = f"interactive['action']['buttons'][{index}]['reply']['title']"
            raise invalid(where, "must be at most 20 characters.")


def _interactive_list(action: dict[str, Any]) -> None:
    if not isinstance(action.get("button"), str) or not action["button"]:
        raise missing("interactive['action']['button']")
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections:
        raise missing("interactive['action']['sections']")
    rows = [row for section in sections if isinstance(section, dict) for row in section.get("rows") or []]
    if not rows or len(rows) > 10:
        raise invalid("interactive['action']['sections']", "must have between 1 and 10 rows in total.")


def _location(content: Any) -> None:
    check_object(content, where="location", fields=LOCATION_FIELDS)
    for key, bound in (("latitude", 90), ("longitude", 180)):
        if key not in content:
            raise missing(f"location['{key}']")
        try:
            value = float(content[key])
        except (TypeError, ValueError):
            raise invalid(f"location['{key}']", "must be a number.") from None
        if not -bound <= value <= bound:
            raise invalid(f"location['{key}']", f"must be between -{bound} and {bound}.")


def _contacts(content: Any) -> None:
    if not isinstance(content, list) or not content:
        raise invalid("contacts", "must be a non-empty array.")
    for index, card in enumerate(content):
        name = card.get("name") if isinstance(card, dict) else None
        if not isinstance(name, dict) or not name.get("formatted_name"):
            raise missing(f"contacts[{index}]['name']['formatted_name']")


# The check of each message type's object that needs nothing but the object (media and templates need more).
CONTENT_CHECKS: dict[str, Callable[[Any], None]] = {
    "text": _text,
    "reaction": _reaction,
    "interactive": _interactive,
    "location": _location,
    "contacts": _contacts,
}

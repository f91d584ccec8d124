"""Creating, editing and deleting a number's message templates at Meta (docs/meta.md §8).

A template is stored only once Meta accepted it, with Meta's id and the status it answered (PENDING while
Meta reviews it); there are no local drafts. Its later status, category and rejection reason come from
Meta's template webhooks (``services/account.py``). Every refusal is a ``WorkflowRefused`` naming the
field at fault: our checks (``template_format``, the same as Meta's) before any call, Meta's own after.
"""

from django.conf import settings
from django.db import transaction

from conversations import template_format
from conversations.graph_api import GraphClient, GraphError
from conversations.models import BusinessNumber, MessageTemplate
from conversations.services.errors import WorkflowRefused
from conversations.services.media import MB, MEDIA_LIMITS, base_mime_type
from conversations.services.workflow import require_supervisor

# Meta's media sample types for a header, and the sizes its messages take for each.
SAMPLE_TYPES = {
    "IMAGE": ({"image/jpeg", "image/png"}, MEDIA_LIMITS["image"][1]),
    "VIDEO": ({"video/mp4"}, MEDIA_LIMITS["video"][1]),
    "DOCUMENT": ({"application/pdf"}, MEDIA_LIMITS["document"][1]),
}
# Meta lets these be edited (an approved one a limited number of times, which Meta counts).
EDITABLE_STATUSES = {"APPROVED", "REJECTED", "PAUSED"}


def create_template(*, user, number: BusinessNumber, definition: dict, header_file=None) -> MessageTemplate:
    require_supervisor(user=user, number=number, to="create templates")
    if not number.waba_id:
        raise WorkflowRefused("no_business_account", "This number has no WhatsApp Business Account id.", status=409)
    client = GraphClient.for_number(number)
    body = _checked(definition, lambda handle: template_format.creation_json(definition, header_handle=handle))
    if MessageTemplate.objects.filter(waba_id=number.waba_id, name=body["name"], language=body["language"]).exists():
        raise WorkflowRefused(
            "duplicate_template", "A template of this name and language exists already.", field="name", status=409
        )
    body = _with_sample(definition, body, client=client, header_file=header_file)
    answer = _at_meta(lambda: client.create_template(waba_id=number.waba_id, template=body))
    with transaction.atomic():
        return MessageTemplate.objects.create(
            waba_id=number.waba_id,
            name=body["name"],
            language=body["language"],
            status=str(answer.get("status") or "PENDING"),
            category=str(answer.get("category") or body["category"]),
            components=body["components"],
            meta_template_id=str(answer.get("id") or ""),
        )


def edit_template(
    *, user, number: BusinessNumber, template: MessageTemplate, definition: dict, header_file=None
) -> MessageTemplate:
    """Meta's edit: all components again, the name and language kept; review starts over (PENDING)."""
    require_supervisor(user=user, number=number, to="edit templates")
    if template.status.upper() not in EDITABLE_STATUSES:
        raise WorkflowRefused(
            "template_not_editable",
            f"Meta lets only approved, rejected or paused templates be edited, not {template.status.lower()}.",
            status=409,
        )
    if (
        template.status.upper() == "APPROVED"
        and str(definition.get("category") or "").upper() != template.category.upper()
    ):
        raise WorkflowRefused(
            "category_locked", "An approved template keeps its category.", field="category", status=400
        )
    client = GraphClient.for_number(number)
    body = _checked(definition, lambda handle: template_format.edit_json(definition, header_handle=handle))
    body = _with_sample(definition, body, client=client, header_file=header_file)
    _at_meta(lambda: client.edit_template(template_id=template.meta_template_id, changes=body))
    template.components = body["components"]
    template.category = body["category"]
    template.status = "PENDING"
    template.status_reason = ""
    template.status_detail = ""
    template.save(update_fields=["components", "category", "status", "status_reason", "status_detail", "synced_at"])
    return template


def delete_template(*, user, number: BusinessNumber, template: MessageTemplate) -> None:
    """This language only (Meta's ``hsm_id``); the name stays taken at Meta for 30 days."""
    require_supervisor(user=user, number=number, to="delete templates")
    client = GraphClient.for_number(number)
    _at_meta(
        lambda: client.delete_template(
            waba_id=number.waba_id, name=template.name, template_id=template.meta_template_id
        )
    )
    template.delete()


def _checked(definition: dict, build):
    """Our checks first, with a placeholder handle so a media header's other fields are checked too."""
    header = definition.get("header") or {}
    placeholder = "pending" if str(header.get("format") or "").upper() in template_format.MEDIA_FORMATS else ""
    try:
        return build(placeholder)
    except template_format.TemplateInvalid as invalid:
        if invalid.field == "header.file":
            raise WorkflowRefused("invalid_template", invalid.detail, field="header.file") from invalid
        raise WorkflowRefused("invalid_template", invalid.detail, field=invalid.field) from invalid


def _with_sample(definition: dict, body: dict, *, client: GraphClient, header_file) -> dict:
    """The creation body with the media header's sample uploaded (Resumable Upload) and its handle in."""
    header_format = str((definition.get("header") or {}).get("format") or "").upper()
    if header_format not in SAMPLE_TYPES:
        return body
    if header_file is None:
        raise WorkflowRefused(
            "invalid_template", f"A {header_format.lower()} header needs a sample file.", field="header.file"
        )
    types, limit = SAMPLE_TYPES[header_format]
    mime_type = base_mime_type(getattr(header_file, "content_type", "") or "")
    if mime_type not in types:
        raise WorkflowRefused(
            "invalid_template",
            f"A {header_format.lower()} header takes {', '.join(sorted(types))}.",
            field="header.file",
        )
    if header_file.size > limit:
        raise WorkflowRefused(
            "invalid_template",
            f"Meta limits a {header_format.lower()} header to {limit // MB} MB.",
            field="header.file",
        )
    if not settings.META_APP_ID:
        raise WorkflowRefused("not_configured", "Set META_APP_ID: Meta takes media samples on the app.", status=409)
    handle = _at_meta(
        lambda: client.upload_sample(
            app_id=settings.META_APP_ID, content=header_file.read(), mime_type=mime_type, filename=header_file.name
        )
    )
    components = [
        {**part, "example": {"header_handle": [handle]}} if part.get("type") == "HEADER" else part
        for part in body["components"]
    ]
    return {**body, "components": components}


def _at_meta(call):
    try:
        return call()
    except GraphError as error:
        detail = error.user_message or error.details or error.title
        code = "meta_refused" if error.code is not None else "meta_unreachable"
        raise WorkflowRefused(code, f"Meta refused it: {detail}", status=400 if error.code else 502) from error

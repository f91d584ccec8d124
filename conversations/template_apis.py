"""The API over a number's message templates: list them with Meta's status, create, edit and delete them
at Meta (supervisors of the number only; a member of another number sees 404)."""

import json

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import ErrorOut, TemplateOut
from conversations import selectors
from conversations.apis import template_item
from conversations.models import MessageTemplate
from conversations.services import template_management
from conversations.services.errors import WorkflowRefused
from conversations.workflow_apis import number_or_404, supervised_number_or_404

DEFINITION_HELP = (
    '{"name", "language", "category": MARKETING|UTILITY|AUTHENTICATION, "header"?: {"format": TEXT|IMAGE|VIDEO|'
    'DOCUMENT, "text"?, "example"?}, "body": {"text", "examples": [..] | {name: example}}, "footer"?, "buttons"?: '
    '[{"type": QUICK_REPLY|URL|PHONE_NUMBER|COPY_CODE, "text"?, "url"?, "example"?, "phone_number"?}]}; in a '
    "multipart form, this object's JSON as ``definition`` and the media header's sample as ``header_file``"
)
ManagedTemplateOut = inline_serializer(
    "ManagedTemplate",
    fields={
        "template": TemplateOut,
        "meta_template_id": serializers.CharField(),
        "status_reason": serializers.CharField(allow_blank=True),
        "status_detail": serializers.CharField(allow_blank=True, help_text="Meta's rejection or pause text"),
        "quality_score": serializers.CharField(allow_blank=True),
    },
)
DefinitionIn = inline_serializer(
    "TemplateDefinition",
    fields={
        "definition": serializers.JSONField(help_text=DEFINITION_HELP),
        "header_file": serializers.FileField(required=False),
    },
)


def managed_item(template: MessageTemplate) -> dict:
    return {
        "template": template_item(template),
        "meta_template_id": template.meta_template_id,
        "status_reason": template.status_reason,
        "status_detail": template.status_detail,
        "quality_score": template.quality_score,
    }


def definition_of(request) -> tuple[dict, object]:
    raw = request.data.get("definition", request.data if "name" in request.data or "body" in request.data else None)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    if not isinstance(raw, dict):
        raise WorkflowRefused(
            "invalid_template", "Send the template's definition as a JSON object.", field="definition"
        )
    return raw, request.FILES.get("header_file")


def template_or_404(number, template_id: int) -> MessageTemplate:
    template = selectors.number_template(number=number, template_id=template_id)
    if template is None:
        raise Http404
    return template


class NumberTemplatesApi(APIView):
    """``GET``: the number's templates, any status, with Meta's reason for a rejection. ``POST``: submit a new one
    to Meta (201 once Meta accepted it, status PENDING; 400 naming the field Meta would refuse)."""

    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        responses={
            200: inline_serializer("ManagedTemplateList", fields={"results": ManagedTemplateOut.__class__(many=True)}),
            401: ErrorOut,
            403: ErrorOut,
            404: ErrorOut,
        }
    )
    def get(self, request, number_id: int):
        number = supervised_number_or_404(request, number_id, to="manage templates")
        return Response({"results": [managed_item(t) for t in selectors.number_templates(number=number)]})

    @extend_schema(
        request={"application/json": DefinitionIn, "multipart/form-data": DefinitionIn},
        responses={201: ManagedTemplateOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    )
    def post(self, request, number_id: int):
        number = number_or_404(request, number_id)
        definition, header_file = definition_of(request)
        template = template_management.create_template(
            user=request.user, number=number, definition=definition, header_file=header_file
        )
        return Response(managed_item(template), status=201)


class NumberTemplateApi(APIView):
    """``POST``: edit the template at Meta (all its components again; Meta's limits on edits apply).
    ``DELETE``: delete this language of it at Meta."""

    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        operation_id="numbers_templates_edit",
        request={"application/json": DefinitionIn, "multipart/form-data": DefinitionIn},
        responses={200: ManagedTemplateOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    )
    def post(self, request, number_id: int, template_id: int):
        number = number_or_404(request, number_id)
        template = template_or_404(number, template_id)
        definition, header_file = definition_of(request)
        template = template_management.edit_template(
            user=request.user, number=number, template=template, definition=definition, header_file=header_file
        )
        return Response(managed_item(template))

    @extend_schema(responses={204: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut})
    def delete(self, request, number_id: int, template_id: int):
        number = number_or_404(request, number_id)
        template = template_or_404(number, template_id)
        template_management.delete_template(user=request.user, number=number, template=template)
        return Response(status=204)

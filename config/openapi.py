"""OpenAPI descriptions of the shapes the API answers with (conversations/snapshots.py builds them);
used only by drf-spectacular for /api/schema/, and checked against real responses by schemathesis."""

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

ErrorOut = inline_serializer(
    "Error",
    fields={
        "error": inline_serializer(
            "ErrorBody",
            fields={
                "code": serializers.CharField(),
                "detail": serializers.CharField(),
                "fields": serializers.DictField(required=False),
            },
        )
    },
)

NumberOut = inline_serializer(
    "Number",
    fields={
        "id": serializers.IntegerField(),
        "phone_number_id": serializers.CharField(),
        "display_phone_number": serializers.CharField(),
    },
)

NumberDetailOut = inline_serializer(
    "NumberDetail",
    fields={
        "id": serializers.IntegerField(),
        "phone_number_id": serializers.CharField(),
        "display_phone_number": serializers.CharField(),
        "name": serializers.CharField(),
        "waba_id": serializers.CharField(),
        "needs_reauthorization": serializers.BooleanField(),
    },
)

_contact_fields = {
    "id": serializers.IntegerField(),
    "name": serializers.CharField(allow_blank=True),
    "wa_id": serializers.CharField(allow_null=True),
    "user_id": serializers.CharField(allow_null=True),
    "username": serializers.CharField(allow_null=True),
    "phone": serializers.CharField(allow_null=True, help_text="E.164 with '+', or null for username-only users"),
}
ContactOut = inline_serializer("Contact", fields=_contact_fields)
ContactDetailOut = inline_serializer(
    "ContactDetail",
    fields={
        **_contact_fields,
        "profile_name": serializers.CharField(allow_blank=True),
        "custom_name": serializers.CharField(allow_null=True),
    },
)

PersonOut = inline_serializer(
    "Person",
    fields={"id": serializers.IntegerField(), "name": serializers.CharField()},
    allow_null=True,
)

LabelOut = inline_serializer(
    "Label",
    fields={
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "colour": serializers.ChoiceField(choices=["grey", "red", "orange", "green", "teal", "blue", "purple", "pink"]),
    },
)

ConversationOut = inline_serializer(
    "Conversation",
    fields={
        "id": serializers.IntegerField(),
        "contact": ContactOut,
        "number": NumberOut,
        "unread_count": serializers.IntegerField(help_text="for the requesting user"),
        "last_message_id": serializers.IntegerField(),
        "last_message_at": serializers.DateTimeField(),
        "last_message": serializers.CharField(allow_blank=True),
        "last_message_direction": serializers.CharField(allow_blank=True),
        "last_inbound_at": serializers.DateTimeField(allow_null=True),
        "status": serializers.ChoiceField(choices=["open", "pending", "snoozed", "resolved"]),
        "snoozed_until": serializers.DateTimeField(allow_null=True),
        "assignee": PersonOut,
        "labels": LabelOut.__class__(many=True),
    },
)

ActivityOut = inline_serializer(
    "ConversationActivity",
    fields={
        "id": serializers.IntegerField(),
        "conversation_id": serializers.IntegerField(),
        "kind": serializers.ChoiceField(choices=["status", "assignment", "label"]),
        "actor": PersonOut,
        "details": serializers.DictField(),
        "text": serializers.CharField(help_text='e.g. "Ana assigned this to Ben", "Resolved by Ana"'),
        "created_at": serializers.DateTimeField(),
    },
)

ReactionOut = inline_serializer(
    "Reaction",
    fields={"emoji": serializers.CharField(), "from": serializers.CharField(help_text="wa_id, BSUID or 'business'")},
)

MediaOut = inline_serializer(
    "Media",
    fields={
        "state": serializers.ChoiceField(choices=["pending", "ready", "failed"]),
        "url": serializers.CharField(allow_null=True),
        "mime_type": serializers.CharField(allow_blank=True),
        "filename": serializers.CharField(allow_blank=True),
        "size": serializers.IntegerField(allow_null=True),
        "error": serializers.CharField(allow_null=True),
    },
    allow_null=True,
)

MessageErrorOut = inline_serializer(
    "MessageError",
    fields={"code": serializers.IntegerField(allow_null=True), "title": serializers.CharField(allow_blank=True)},
    allow_null=True,
)

MessageOut = inline_serializer(
    "Message",
    fields={
        "id": serializers.IntegerField(),
        "conversation_id": serializers.IntegerField(),
        "wamid": serializers.CharField(allow_null=True),
        "direction": serializers.ChoiceField(choices=["in", "out"]),
        "type": serializers.CharField(),
        "text": serializers.CharField(allow_blank=True, help_text="body, caption or preview"),
        "body": serializers.CharField(allow_blank=True),
        "preview": serializers.CharField(allow_blank=True),
        "content": serializers.DictField(),
        "timestamp": serializers.DateTimeField(),
        "status": serializers.CharField(),
        "error": MessageErrorOut,
        "reply_to": serializers.CharField(allow_null=True),
        "reactions": ReactionOut.__class__(many=True),
        "media": MediaOut,
        "sent_by": PersonOut,
    },
)

TemplateOut = inline_serializer(
    "Template",
    fields={
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "language": serializers.CharField(),
        "category": serializers.CharField(allow_blank=True),
        "status": serializers.CharField(),
        "parameter_format": serializers.ChoiceField(choices=["positional", "named"]),
        "header": inline_serializer(
            "TemplateHeader",
            fields={"format": serializers.CharField(), "text": serializers.CharField(allow_blank=True)},
            allow_null=True,
        ),
        "body": serializers.CharField(allow_blank=True),
        "footer": serializers.CharField(allow_blank=True),
        "buttons": inline_serializer(
            "TemplateButton",
            fields={
                "type": serializers.CharField(),
                "text": serializers.CharField(required=False),
                "url": serializers.CharField(required=False),
                "phone_number": serializers.CharField(required=False),
            },
            many=True,
        ),
        "slots": inline_serializer(
            "TemplateSlot",
            fields={
                "key": serializers.CharField(help_text="header, body.<name or position>, button.<index>"),
                "part": serializers.ChoiceField(choices=["header", "body", "button"]),
                "name": serializers.CharField(allow_blank=True),
                "kind": serializers.ChoiceField(
                    choices=["text", "image", "video", "document", "url_suffix", "coupon_code"]
                ),
                "label": serializers.CharField(),
                "example": serializers.CharField(allow_blank=True),
            },
            many=True,
        ),
        "parameter_count": serializers.IntegerField(help_text="body parameters"),
    },
)


def cursor_page(name: str, item) -> serializers.Serializer:
    return inline_serializer(
        name,
        fields={
            "next": serializers.CharField(allow_null=True),
            "previous": serializers.CharField(allow_null=True),
            "results": item.__class__(many=True),
        },
    )


CURSOR_PARAMETERS = [
    OpenApiParameter("cursor", str, description="opaque cursor from `next`/`previous`"),
    OpenApiParameter("page_size", int, description="1 to 200 (default 50)"),
]


def document_unsupported_media_type(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation that takes a body answers 415, in the error
    shape, when the body's Content-Type is missing or not one it parses (DRF does; the schema did not say)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault(
                    "415",
                    {
                        "description": "Unsupported media type",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result

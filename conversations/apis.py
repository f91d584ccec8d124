"""The REST API over the inbox (conversations, messages, templates, numbers and the contacts staff see): thin
views that call selectors/services and shape output with snapshots."""

import json

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import error_response
from config.openapi import (
    CURSOR_PARAMETERS,
    ContactDetailOut,
    ConversationOut,
    ErrorOut,
    MessageOut,
    NumberDetailOut,
    TemplateOut,
    cursor_page,
)
from conversations import selectors
from conversations.models import ConversationStatus
from conversations.services import mark_conversation_read, outbound
from conversations.services.contacts import ContactChangeForbidden, merge_contacts, rename_contact
from conversations.services.errors import SendRefused
from conversations.snapshots import (
    contact_snapshot,
    conversation_labels,
    conversation_state,
    conversation_summary,
    message_snapshot,
    number_snapshot,
)
from conversations.template_format import template_parts


class ConversationCursor(CursorPagination):
    ordering = ("-last_message_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class MessageCursor(CursorPagination):
    ordering = ("timestamp", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def conversation_item(conversation) -> dict:
    return {
        "id": conversation.pk,
        "contact": contact_snapshot(conversation.contact),
        "number": number_snapshot(conversation.number),
        "unread_count": conversation.unread_count,
        "last_message_id": conversation.last_message_id,
        **conversation_summary(conversation),
        **conversation_state(conversation),
        "labels": conversation_labels(conversation),
    }


def conversation_or_404(request, conversation_id: int):
    conversation = selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)
    if conversation is None:
        raise Http404
    return conversation


WORKFLOW_PARAMETERS = [
    OpenApiParameter(
        "view",
        str,
        enum=list(selectors.VIEWS),
        description="mine: assigned to you; unassigned: assigned to nobody; all (the default)",
    ),
    OpenApiParameter("status", str, enum=ConversationStatus.values, description="only this status (default: any)"),
    OpenApiParameter("assignee", int, description="only conversations assigned to this user id"),
]


def workflow_filters(params) -> dict:
    """The list's view, status and assignee from query parameters, as ``selectors.conversation_list`` takes them:
    an unknown value filters nothing (as an unknown ``number`` would find nothing, an unknown view is all)."""
    view = params.get("view")
    status = params.get("status")
    assignee = params.get("assignee", "")
    return {
        "view": view if view in selectors.VIEWS else selectors.VIEW_ALL,
        "status": status if status in ConversationStatus.values else None,
        "assignee_id": int(assignee) if assignee.isdigit() and len(assignee) < 10 else None,
    }


def label_filter(params) -> int | None:
    """The list's ``label`` (an id) from query parameters; anything else filters nothing."""
    label = params.get("label", "")
    return int(label) if label.isdigit() and len(label) < 10 else None


class ConversationListApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("number", str, description="only this phone_number_id"),
            OpenApiParameter(
                "unread", str, enum=["1", "true", "yes"], description="only conversations you have not read"
            ),
            OpenApiParameter("q", str, description="contact name or phone in any format"),
            OpenApiParameter("label", int, description="only conversations with this label (its id)"),
            *WORKFLOW_PARAMETERS,
            *CURSOR_PARAMETERS,
        ],
        # 404: an invalid cursor
        responses={200: cursor_page("ConversationPage", ConversationOut), 401: ErrorOut, 404: ErrorOut},
    )
    def get(self, request):
        conversations = selectors.conversation_list(
            user=request.user,
            phone_number_id=request.query_params.get("number") or None,
            unread_only=request.query_params.get("unread") in ("1", "true", "yes"),
            search=request.query_params.get("q", ""),
            may_lag=True,
            **workflow_filters(request.query_params),
        )
        conversations = selectors.labelled(conversations, label_id=label_filter(request.query_params))
        paginator = ConversationCursor()
        page = paginator.paginate_queryset(conversations, request, view=self)
        return paginator.get_paginated_response([conversation_item(c) for c in page])


class ConversationCountsApi(APIView):
    """How many conversations each view of the list holds (mine, unassigned, all) for a number and status, as the
    inbox's view tabs count them: a tab asks again when a conversation changes owner or status."""

    @extend_schema(
        parameters=[
            OpenApiParameter("number", str, description="only this phone_number_id"),
            OpenApiParameter(
                "status", str, enum=ConversationStatus.values, description="only this status (default: any)"
            ),
        ],
        responses={
            200: inline_serializer(
                "ViewCounts",
                fields={
                    "mine": serializers.IntegerField(),
                    "unassigned": serializers.IntegerField(),
                    "all": serializers.IntegerField(),
                },
            ),
            401: ErrorOut,
        },
    )
    def get(self, request):
        return Response(
            selectors.view_counts(
                user=request.user,
                phone_number_id=request.query_params.get("number") or None,
                status=workflow_filters(request.query_params)["status"],
            )
        )


class ConversationDetailApi(APIView):
    """One conversation as the list shows it, with this user's ``unread_count``: how a tab learns the count of
    a conversation it first saw in an event."""

    @extend_schema(operation_id="conversation_retrieve", responses={200: ConversationOut, 401: ErrorOut, 404: ErrorOut})
    def get(self, request, conversation_id: int):
        conversation = selectors.conversation_list(user=request.user).filter(pk=conversation_id).first()
        if conversation is None:
            raise Http404
        return Response(conversation_item(conversation))


class UnreadTotalApi(APIView):
    """What the tab title counts: all of this user's unread messages, loaded on the page or not. A tab asks again
    when a conversation it never loaded is read elsewhere, whose share of the total it cannot know."""

    @extend_schema(
        responses={
            200: inline_serializer("UnreadTotal", fields={"unread_total": serializers.IntegerField()}),
            401: ErrorOut,
        },
    )
    def get(self, request):
        return Response({"unread_total": selectors.unread_total(user=request.user)})


class ConversationReadApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "ReadState",
                fields={
                    "conversation_id": serializers.IntegerField(),
                    "last_read_message_id": serializers.IntegerField(),
                },
            ),
            401: ErrorOut,
            404: ErrorOut,
        },
    )
    def post(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        state = mark_conversation_read(user=request.user, conversation=conversation)
        return Response({"conversation_id": conversation.pk, "last_read_message_id": state.last_read_message_id})


# Refusals about the conversation or the template's state, not the request's content.
SEND_CONFLICTS = (
    "window_closed",
    "reauthorization_required",
    "template_not_approved",
    "marketing_opted_out",
    "messaging_limit_reached",
)


class TemplateValuesField(serializers.Field):
    """A template send's values by slot key: a JSON object, or its JSON text in a multipart form."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json.loads(data or "{}")
            except ValueError:
                raise serializers.ValidationError("values must be a JSON object.") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise serializers.ValidationError("values must be an object of texts by slot key.")
        return {str(k): v for k, v in data.items()}

    def to_representation(self, value):
        return value


class ConversationMessagesApi(APIView):
    """``GET``: the thread, oldest first with a cursor; or, with ``?before=<message id>``, the page just
    before that message (what the inbox loads when the reader scrolls up); with ``?after=<message id>``, the page
    just after it (the thread opened at a search hit loads newer messages so).

    ``POST``: queue a reply; 202 with the pending message.

    JSON ``{"type": "text", "text": ..., "reply_to": wamid?}``, ``{"type": "reaction", "message": wamid,
    "emoji": "👍" | ""}``, ``{"type": "template", "template": id, "params": [...]}``; or multipart with
    ``file`` (+ ``caption``, ``reply_to``) for media.
    """

    parser_classes = [JSONParser, MultiPartParser]

    class TextInput(serializers.Serializer):
        text = serializers.CharField(allow_blank=True, trim_whitespace=False)
        reply_to = serializers.CharField(required=False, allow_blank=True, default="")

    class ReactionInput(serializers.Serializer):
        message = serializers.CharField()
        emoji = serializers.CharField(allow_blank=True, max_length=32)

    class TemplateInput(serializers.Serializer):
        template = serializers.IntegerField()
        params = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False, default=list)
        values = TemplateValuesField(required=False, default=dict)
        header_file = serializers.FileField(required=False, default=None)
        header_link = serializers.CharField(required=False, allow_blank=True, default="")

    class MediaInput(serializers.Serializer):
        file = serializers.FileField()
        caption = serializers.CharField(required=False, allow_blank=True, default="")
        reply_to = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(
        parameters=[
            OpenApiParameter("before", int, description="message id: the page just before it"),
            OpenApiParameter(
                "after", int, description="message id: the page just after it (has_more: newer ones remain)"
            ),
            *CURSOR_PARAMETERS,
        ],
        responses={
            200: PolymorphicProxySerializer(
                component_name="MessagesResponse",
                serializers=[
                    cursor_page("MessagePage", MessageOut),
                    inline_serializer(
                        "MessageHistoryPage",
                        fields={"results": MessageOut.__class__(many=True), "has_more": serializers.BooleanField()},
                    ),
                ],
                resource_type_field_name=None,
            ),
            401: ErrorOut,
            404: ErrorOut,
        },
    )
    def get(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        before_id = request.query_params.get("before")
        after_id = request.query_params.get("after")
        if before_id is not None or after_id is not None:
            anchor_id = before_id if before_id is not None else after_id
            anchor = conversation.messages.filter(pk=anchor_id if anchor_id.isdigit() else 0).first()
            if anchor is None:
                raise Http404
            if before_id is not None:
                page, has_more = selectors.messages_before(conversation=conversation, before=anchor)
            else:
                page, has_more = selectors.messages_after(conversation=conversation, after=anchor)
            reactions = selectors.reactions_by_wamid(wamids=[m.wamid for m in page])
            return Response(
                {"results": [message_snapshot(m, reactions.get(m.wamid, ())) for m in page], "has_more": has_more}
            )
        paginator = MessageCursor()
        page = paginator.paginate_queryset(selectors.message_list(conversation=conversation), request, view=self)
        reactions = selectors.reactions_by_wamid(wamids=[m.wamid for m in page])
        return paginator.get_paginated_response([message_snapshot(m, reactions.get(m.wamid, ())) for m in page])

    @extend_schema(
        request={
            "application/json": inline_serializer(
                "SendRequest",
                fields={
                    "type": serializers.ChoiceField(choices=["text", "reaction", "template"]),
                    "text": serializers.CharField(required=False),
                    "reply_to": serializers.CharField(required=False, help_text="wamid"),
                    "message": serializers.CharField(required=False, help_text="wamid to react to"),
                    "emoji": serializers.CharField(required=False, allow_blank=True),
                    "template": serializers.IntegerField(required=False),
                    "params": serializers.ListField(
                        child=serializers.CharField(), required=False, help_text="positional body values"
                    ),
                    "values": serializers.DictField(
                        child=serializers.CharField(),
                        required=False,
                        help_text="a template's values by slot key (header, body.<name>, button.<index>)",
                    ),
                    "header_link": serializers.CharField(required=False, help_text="https link of a media header"),
                },
            ),
            "multipart/form-data": inline_serializer(
                "SendMediaRequest",
                fields={
                    "file": serializers.FileField(),
                    "caption": serializers.CharField(required=False),
                    "reply_to": serializers.CharField(required=False),
                    "type": serializers.CharField(required=False, help_text="template, with header_file"),
                    "template": serializers.IntegerField(required=False),
                    "values": serializers.CharField(required=False, help_text="JSON object of the template's values"),
                    "header_file": serializers.FileField(required=False, help_text="a template's header media"),
                },
            ),
        },
        responses={202: MessageOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    )
    def post(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        kind = "media" if "file" in request.FILES else request.data.get("type", "text")
        try:
            if kind == "text":
                data = self._valid(self.TextInput, request)
                message = outbound.send_text(
                    user=request.user, conversation=conversation, text=data["text"], reply_to_wamid=data["reply_to"]
                )
            elif kind == "reaction":
                data = self._valid(self.ReactionInput, request)
                message = outbound.send_reaction(
                    user=request.user, conversation=conversation, message_wamid=data["message"], emoji=data["emoji"]
                )
            elif kind == "template":
                data = self._valid(self.TemplateInput, request)
                template = selectors.number_template(number=conversation.number, template_id=data["template"])
                if template is None:
                    raise SendRefused("template_unavailable", "That template is not available for this number.")
                message = outbound.send_template(
                    user=request.user,
                    conversation=conversation,
                    template=template,
                    params=data["params"],
                    values=data["values"],
                    header_file=data["header_file"],
                    header_link=data["header_link"],
                )
            elif kind == "media":
                data = self._valid(self.MediaInput, request)
                message = outbound.send_media(
                    user=request.user,
                    conversation=conversation,
                    upload=data["file"],
                    caption=data["caption"],
                    reply_to_wamid=data["reply_to"],
                )
            else:
                raise SendRefused("unknown_type", "type must be text, reaction, template or a file upload.")
        except SendRefused as refused:
            status = 409 if refused.code in SEND_CONFLICTS else 400
            return error_response(status=status, code=refused.code, detail=refused.detail)
        return Response(message_snapshot(message), status=202)

    @staticmethod
    def _valid(serializer_class, request) -> dict:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class MessageDecisionApi(APIView):
    """A person's decision on a reply Meta has not confirmed (the send's answer was lost, so Meta may or may
    not have it): ``send_again`` puts it back in the outbox, ``discard`` leaves it unsent (failed). 409
    ``not_unconfirmed`` for any other message (e.g. a status webhook confirmed it meanwhile)."""

    class DecisionInput(serializers.Serializer):
        decision = serializers.ChoiceField(choices=["send_again", "discard"])

    @extend_schema(
        request=DecisionInput, responses={200: MessageOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut}
    )
    def post(self, request, conversation_id: int, message_id: int):
        conversation = conversation_or_404(request, conversation_id)
        message = conversation.messages.filter(pk=message_id).first()
        if message is None:
            raise Http404
        serializer = self.DecisionInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            if serializer.validated_data["decision"] == "send_again":
                message = outbound.resend_unconfirmed_message(message=message)
            else:
                message = outbound.discard_unconfirmed_message(user=request.user, message=message)
        except SendRefused as refused:
            return error_response(status=409, code=refused.code, detail=refused.detail)
        return Response(message_snapshot(message))


def template_item(template) -> dict:
    return {
        "id": template.pk,
        "name": template.name,
        "language": template.language,
        "category": template.category,
        "status": template.status,
        **template_parts(template.components),
        "parameter_count": template.body_parameter_count,
    }


class ConversationTemplateListApi(APIView):
    """The approved templates this conversation's number may send (the only messages allowed outside the
    24-hour window), with the window's state."""

    @extend_schema(
        responses={
            200: inline_serializer(
                "TemplateList",
                fields={
                    "window": inline_serializer(
                        "Window",
                        fields={
                            "open": serializers.BooleanField(),
                            "closes_at": serializers.DateTimeField(allow_null=True),
                        },
                    ),
                    "results": TemplateOut.__class__(many=True),
                },
            ),
            401: ErrorOut,
            404: ErrorOut,
        }
    )
    def get(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        closes = conversation.window_closes_at
        return Response(
            {
                "window": {"open": conversation.window_is_open(), "closes_at": closes.isoformat() if closes else None},
                "results": [template_item(t) for t in selectors.templates_for(conversation=conversation)],
            }
        )


class NumberListApi(APIView):
    """``GET /api/numbers/``: the business numbers you may see."""

    @extend_schema(
        responses={
            200: inline_serializer("NumberList", fields={"results": NumberDetailOut.__class__(many=True)}),
            401: ErrorOut,
        }
    )
    def get(self, request):
        numbers = selectors.visible_numbers(user=request.user)
        return Response(
            {
                "results": [
                    {
                        **number_snapshot(n),
                        "name": n.name,
                        "waba_id": n.waba_id,
                        "needs_reauthorization": n.needs_reauthorization,
                    }
                    for n in numbers
                ]
            }
        )


# --- contacts: list and search (name, or phone in any format), rename, merge duplicates -------------------


class ContactCursor(CursorPagination):
    ordering = ("-updated_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _contact_or_404(request, contact_id: int):
    contact = selectors.contact_for_user(user=request.user, contact_id=contact_id)
    if contact is None:
        raise Http404
    return contact


def _refused(refusal: ContactChangeForbidden):
    return error_response(status=403, code=refusal.code, detail=refusal.detail)


def contact_item(contact) -> dict:
    return {
        **contact_snapshot(contact),
        "profile_name": contact.profile_name,
        "custom_name": contact.custom_name or None,
    }


class ContactListApi(APIView):
    """``GET /api/contacts/?q=<name or phone>``: contacts of the numbers you may see."""

    @extend_schema(
        operation_id="contacts_list",
        parameters=[
            OpenApiParameter("q", str, description="name, username or phone in any format"),
            *CURSOR_PARAMETERS,
        ],
        # 404: an invalid cursor
        responses={200: cursor_page("ContactPage", ContactDetailOut), 401: ErrorOut, 404: ErrorOut},
    )
    def get(self, request):
        contacts = selectors.contact_list(user=request.user, search=request.query_params.get("q", ""), may_lag=True)
        paginator = ContactCursor()
        page = paginator.paginate_queryset(contacts, request, view=self)
        return paginator.get_paginated_response([contact_item(c) for c in page])


class ContactDetailApi(APIView):
    """``GET`` one contact; ``PATCH {"name": "..."}`` renames it (an empty name returns to the WhatsApp name):
    403 unless you may see every number the contact talks to."""

    class RenameInput(serializers.Serializer):
        name = serializers.CharField(allow_blank=True, max_length=256)

    @extend_schema(responses={200: ContactDetailOut, 401: ErrorOut, 404: ErrorOut})
    def get(self, request, contact_id: int):
        return Response(contact_item(_contact_or_404(request, contact_id)))

    @extend_schema(
        request=RenameInput,
        responses={200: ContactDetailOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    )
    def patch(self, request, contact_id: int):
        contact = _contact_or_404(request, contact_id)
        data = self.RenameInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            renamed = rename_contact(contact=contact, name=data.validated_data["name"], user=request.user)
        except ContactChangeForbidden as refusal:
            return _refused(refusal)
        return Response(contact_item(renamed))


class ContactMergeApi(APIView):
    """``POST /api/contacts/<id>/merge/ {"duplicate": <id>}``: the duplicate's conversations and messages
    move to this contact, and the duplicate is deleted. 403 unless you may see every number either talks to."""

    class MergeInput(serializers.Serializer):
        duplicate = serializers.IntegerField()

    @extend_schema(
        request=MergeInput,
        responses={200: ContactDetailOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    )
    def post(self, request, contact_id: int):
        keep = _contact_or_404(request, contact_id)
        data = self.MergeInput(data=request.data)
        data.is_valid(raise_exception=True)
        duplicate = _contact_or_404(request, data.validated_data["duplicate"])
        if duplicate.pk == keep.pk:
            return error_response(status=400, code="same_contact", detail="A contact cannot be merged into itself.")
        try:
            merge = merge_contacts(keep=keep, duplicate=duplicate, user=request.user)
        except ContactChangeForbidden as refusal:
            return _refused(refusal)
        return Response(contact_item(merge.keep))

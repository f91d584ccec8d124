"""The REST API over labels and canned replies: a number's labels, setting and removing them on a conversation,
and the canned replies the composer offers, their placeholders filled in. Thin views over
``services/labels.py`` and ``services/canned_replies.py``; refusals in the project's error shape."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import ConversationOut, ErrorOut, LabelOut
from conversations import selectors
from conversations.apis import conversation_or_404
from conversations.models import CannedReply, Label, LabelColour
from conversations.services.canned_replies import (
    create_canned_reply,
    delete_canned_reply,
    render_canned_reply,
    update_canned_reply,
)
from conversations.services.errors import WorkflowRefused
from conversations.services.labels import add_conversation_label, create_label, remove_conversation_label
from conversations.snapshots import label_snapshot
from conversations.workflow_apis import as_listed, number_or_404, valid_data

CHANGED = {200: ConversationOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut}


class NumberLabelsApi(APIView):
    """``GET``: the number's labels, by name. ``POST {"name", "colour"}``: a new one (its supervisors only)."""

    class NewLabelInput(serializers.Serializer):
        name = serializers.CharField(max_length=40)
        colour = serializers.ChoiceField(choices=LabelColour.values, default=LabelColour.GREY)

    @extend_schema(
        responses={
            200: inline_serializer("LabelList", fields={"results": LabelOut.__class__(many=True)}),
            401: ErrorOut,
            404: ErrorOut,
        }
    )
    def get(self, request, number_id: int):
        number = number_or_404(request, number_id)
        return Response({"results": [label_snapshot(label) for label in selectors.number_labels(numbers=[number])]})

    @extend_schema(
        request=NewLabelInput, responses={201: LabelOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}
    )
    def post(self, request, number_id: int):
        number = number_or_404(request, number_id)
        data = valid_data(self.NewLabelInput, request)
        label = create_label(user=request.user, number=number, name=data["name"], colour=data["colour"])
        return Response(label_snapshot(label), status=201)


def _visible_label(request, label_id) -> Label:
    """A label of a number the user sees; any other id is a 400 on ``label`` (whether it exists elsewhere is not
    said)."""
    label = selectors.number_labels(numbers=selectors.visible_numbers(user=request.user)).filter(pk=label_id).first()
    if label is None:
        raise WorkflowRefused("unknown_label", "No such label.", field="label")
    return label


class ConversationLabelsApi(APIView):
    """``POST {"label": <id>}``: set one of the number's labels on the conversation (a label of another number is
    a 400 on ``label``); the conversation as the list gives it."""

    class LabelChoiceInput(serializers.Serializer):
        label = serializers.IntegerField()

    @extend_schema(request=LabelChoiceInput, responses=CHANGED)
    def post(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        label_id = valid_data(self.LabelChoiceInput, request)["label"]
        add_conversation_label(user=request.user, conversation=conversation, label=_visible_label(request, label_id))
        return as_listed(request, conversation)


class ConversationLabelApi(APIView):
    """``DELETE``: take the label off the conversation; the conversation as the list gives it."""

    @extend_schema(responses=CHANGED)
    def delete(self, request, conversation_id: int, label_id: int):
        conversation = conversation_or_404(request, conversation_id)
        remove_conversation_label(user=request.user, conversation=conversation, label=_visible_label(request, label_id))
        return as_listed(request, conversation)


def _canned_reply_fields(**more) -> dict:
    """A canned reply's fields in the API, and ``more`` of them."""
    return {
        "id": serializers.IntegerField(),
        "shortcut": serializers.CharField(help_text='typed after "/" in the composer'),
        "scope": serializers.ChoiceField(choices=["personal", "number"]),
        "number": serializers.IntegerField(allow_null=True, help_text="the number's id, for a number's reply"),
        "template": serializers.CharField(help_text="the text as written, placeholders and all"),
        **more,
    }


CannedReplyOut = inline_serializer(
    "CannedReply",
    fields=_canned_reply_fields(
        text=serializers.CharField(help_text="the text for this conversation, placeholders filled in")
    ),
)


def managed_canned_reply(reply: CannedReply) -> dict:
    return {
        "id": reply.pk,
        "shortcut": reply.shortcut,
        "scope": "personal" if reply.owner_id else "number",
        "number": reply.number_id,
        "template": reply.text,
    }


def _canned_reply_item(reply: CannedReply, *, conversation, user) -> dict:
    text = render_canned_reply(canned_reply=reply, conversation=conversation, user=user)
    return {**managed_canned_reply(reply), "text": text}


class ConversationCannedRepliesApi(APIView):
    """``GET``: the canned replies the composer offers in this conversation (yours and its number's), each with
    ``{{contact_name}}`` and ``{{agent_name}}`` filled in; ``q``: shortcuts starting with it."""

    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="the start of a shortcut")],
        responses={
            200: inline_serializer("CannedReplyList", fields={"results": CannedReplyOut.__class__(many=True)}),
            401: ErrorOut,
            404: ErrorOut,
        },
    )
    def get(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        replies = selectors.canned_replies_for(
            user=request.user, conversation=conversation, search=request.query_params.get("q", "")
        )
        items = [_canned_reply_item(r, conversation=conversation, user=request.user) for r in replies]
        return Response({"results": items})


class ConversationCannedReplyApi(APIView):
    """``GET``: one canned reply, filled in for this conversation; one that is not yours nor its number's is a 404
    ``unknown_canned_reply``."""

    @extend_schema(
        operation_id="conversations_canned_reply_retrieve",
        responses={200: CannedReplyOut, 401: ErrorOut, 404: ErrorOut},
    )
    def get(self, request, conversation_id: int, canned_reply_id: int):
        conversation = conversation_or_404(request, conversation_id)
        reply = selectors.canned_replies_for(user=request.user, conversation=conversation).filter(pk=canned_reply_id)
        reply = reply.first()
        if reply is None:
            raise WorkflowRefused("unknown_canned_reply", "No such canned reply for this conversation.", status=404)
        return Response(_canned_reply_item(reply, conversation=conversation, user=request.user))


ManagedCannedReplyOut = inline_serializer("ManagedCannedReply", fields=_canned_reply_fields())


class CannedRepliesApi(APIView):
    """``GET``: the canned replies you look after: your own and those of the numbers you see (their supervisors
    change them). ``POST {"shortcut", "text", "number"?}``: a canned reply of your own, or with ``number`` (a
    number id) the number's (its supervisors only). A shortcut taken in that scope is a 400 on ``shortcut``."""

    class CannedReplyInput(serializers.Serializer):
        shortcut = serializers.CharField(max_length=33)
        text = serializers.CharField(max_length=4096)
        number = serializers.IntegerField(required=False, allow_null=True, default=None)

    @extend_schema(
        operation_id="canned_replies_list",
        responses={
            200: inline_serializer(
                "ManagedCannedReplyList", fields={"results": ManagedCannedReplyOut.__class__(many=True)}
            ),
            401: ErrorOut,
        },
    )
    def get(self, request):
        replies = selectors.manageable_canned_replies(user=request.user)
        return Response({"results": [managed_canned_reply(reply) for reply in replies]})

    @extend_schema(
        request=CannedReplyInput,
        responses={201: ManagedCannedReplyOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    )
    def post(self, request):
        data = valid_data(self.CannedReplyInput, request)
        number = number_or_404(request, data["number"]) if data["number"] is not None else None
        reply = create_canned_reply(user=request.user, shortcut=data["shortcut"], text=data["text"], number=number)
        return Response(managed_canned_reply(reply), status=201)


def canned_reply_or_404(request, canned_reply_id: int) -> CannedReply:
    """One of the canned replies the user looks after; any other id is a 404 ``unknown_canned_reply``."""
    reply = selectors.manageable_canned_replies(user=request.user).filter(pk=canned_reply_id).first()
    if reply is None:
        raise WorkflowRefused("unknown_canned_reply", "No such canned reply.", status=404)
    return reply


class CannedReplyApi(APIView):
    """``PATCH {"shortcut"?, "text"?}``: change one of your own canned replies, or a number's (its supervisors
    only: 403). ``DELETE``: remove it, on the same terms. A canned reply you do not see is a 404."""

    class CannedReplyChangeInput(serializers.Serializer):
        shortcut = serializers.CharField(max_length=33, required=False)
        text = serializers.CharField(max_length=4096, required=False)

    @extend_schema(
        request=CannedReplyChangeInput,
        responses={200: ManagedCannedReplyOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    )
    def patch(self, request, canned_reply_id: int):
        reply = canned_reply_or_404(request, canned_reply_id)
        data = valid_data(self.CannedReplyChangeInput, request)
        reply = update_canned_reply(
            user=request.user,
            canned_reply=reply,
            shortcut=data.get("shortcut", reply.shortcut),
            text=data.get("text", reply.text),
        )
        return Response(managed_canned_reply(reply))

    @extend_schema(responses={204: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut})
    def delete(self, request, canned_reply_id: int):
        delete_canned_reply(user=request.user, canned_reply=canned_reply_or_404(request, canned_reply_id))
        return Response(status=204)

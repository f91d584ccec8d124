"""The REST API's message search: the messages of the numbers you may see whose text holds the words of ``q``, newest
first, each with its conversation's contact and a snippet with the matched words marked. A thin view over
``selectors.message_search``; the read replica may answer it, as it may the other searches."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.views import APIView

from config.api import error_response
from config.openapi import CURSOR_PARAMETERS, ContactOut, ErrorOut, NumberOut, cursor_page
from conversations import selectors
from conversations.models import ConversationStatus
from conversations.search import message_hit, search_terms

MessageHitOut = inline_serializer(
    "MessageHit",
    fields={
        "id": serializers.IntegerField(help_text="the message's id: /inbox/<conversation_id>/?message=<id> opens it"),
        "conversation_id": serializers.IntegerField(),
        "contact": ContactOut,
        "number": NumberOut,
        "status": serializers.ChoiceField(choices=ConversationStatus.values, help_text="the conversation's"),
        "direction": serializers.ChoiceField(choices=["in", "out"]),
        "timestamp": serializers.DateTimeField(),
        "snippet": inline_serializer(
            "SnippetPart",
            fields={
                "text": serializers.CharField(),
                "match": serializers.BooleanField(help_text="a word of the search"),
            },
            many=True,
        ),
    },
)


class MessageHitCursor(CursorPagination):
    ordering = ("-timestamp", "-id")
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class MessageSearchApi(APIView):
    """``GET /api/messages/search/?q=<words>``: every word must be in the message (the last may be the start of
    one); quoted phrases, ``or`` and ``-word`` work as in a web search. A ``q`` without a word is a 400 on ``q``."""

    @extend_schema(
        operation_id="messages_search",
        parameters=[
            OpenApiParameter("q", str, required=True, description="words of the messages to find"),
            OpenApiParameter("number", str, description="only this phone_number_id"),
            *CURSOR_PARAMETERS,
        ],
        # 404: an invalid cursor
        responses={200: cursor_page("MessageHitPage", MessageHitOut), 400: ErrorOut, 401: ErrorOut, 404: ErrorOut},
    )
    def get(self, request):
        search = request.query_params.get("q", "")
        terms = search_terms(search)
        if not terms:
            detail = "Search for at least one word."
            return error_response(status=400, code="invalid", detail=detail, fields={"q": [detail]})
        hits = selectors.message_search(
            user=request.user,
            search=search,
            phone_number_id=request.query_params.get("number") or None,
            may_lag=True,
        )
        paginator = MessageHitCursor()
        page = paginator.paginate_queryset(hits, request, view=self)
        return paginator.get_paginated_response([message_hit(m, terms) for m in page])

"""The REST API's message search: the messages of the numbers you may see whose text holds the words of ``q``, newest
first, each with its conversation's contact and a snippet with the matched words marked. A thin view over
``selectors.message_search``; the read replica may answer it, as it may the other searches."""

from functools import partial

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.views import APIView

from config.api import error_response
from config.openapi import CURSOR_PARAMETERS, ContactOut, ErrorOut, NumberOut, cursor_page
from conversations import selectors
from conversations.models import ConversationStatus, Message
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


def hits_page(
    request, *, user, search: str, numbers=None, phone_number_id: str | None = None, may_lag: bool = False
) -> tuple[list[Message], MessageHitCursor]:
    """The page of found messages ``request`` asks for, and its paginator (for the links to the next). A first
    page is looked for among the recent messages before all of them (``conversations.search`` says why); what it
    finds there is the very page the whole search would give whenever it fills the page."""
    numbers = selectors.searched_numbers(user=user, numbers=numbers, phone_number_id=phone_number_id)
    find = partial(selectors.message_search, user=user, search=search, numbers=numbers, may_lag=may_lag)
    paginator = MessageHitCursor()
    if paginator.cursor_query_param not in request.query_params:
        for since in selectors.recent_search_starts(numbers=numbers, may_lag=may_lag):
            page = paginator.paginate_queryset(find(since=since), request)
            if paginator.has_next:
                return page, paginator
    return paginator.paginate_queryset(find(), request), paginator


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
        page, paginator = hits_page(
            request,
            user=request.user,
            search=search,
            phone_number_id=request.query_params.get("number") or None,
            may_lag=True,
        )
        return paginator.get_paginated_response([message_hit(m, terms) for m in page])

"""The REST API over the inbox: thin views that call selectors/services and shape output with snapshots."""
from django.http import Http404
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import selectors
from conversations.services import mark_conversation_read
from conversations.snapshots import contact_snapshot, message_snapshot, number_snapshot


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
        "last_message_at": conversation.last_message_at.isoformat(),
        "last_message": conversation.last_message_preview,
        "last_message_direction": conversation.last_message_direction,
        "last_inbound_at": conversation.last_inbound_at.isoformat() if conversation.last_inbound_at else None,
    }


def _conversation_or_404(request, conversation_id: int):
    conversation = selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)
    if conversation is None:
        raise Http404
    return conversation


class ConversationListApi(APIView):
    def get(self, request):
        conversations = selectors.conversation_list(
            user=request.user,
            phone_number_id=request.query_params.get("number") or None,
            unread_only=request.query_params.get("unread") in ("1", "true", "yes"),
            search=request.query_params.get("q", ""),
        )
        paginator = ConversationCursor()
        page = paginator.paginate_queryset(conversations, request, view=self)
        return paginator.get_paginated_response([conversation_item(c) for c in page])


class ConversationMessageListApi(APIView):
    """Oldest first with a cursor; or, with ``?before=<message id>``, the page just before that message
    (what the inbox loads when the reader scrolls up)."""

    def get(self, request, conversation_id: int):
        conversation = _conversation_or_404(request, conversation_id)
        before_id = request.query_params.get("before")
        if before_id is not None:
            before = conversation.messages.filter(pk=before_id if before_id.isdigit() else 0).first()
            if before is None:
                raise Http404
            page, has_more = selectors.messages_before(conversation=conversation, before=before)
            reactions = selectors.reactions_by_wamid(wamids=[m.wamid for m in page])
            return Response(
                {"results": [message_snapshot(m, reactions.get(m.wamid, ())) for m in page], "has_more": has_more}
            )
        paginator = MessageCursor()
        page = paginator.paginate_queryset(selectors.message_list(conversation=conversation), request, view=self)
        reactions = selectors.reactions_by_wamid(wamids=[m.wamid for m in page])
        return paginator.get_paginated_response([message_snapshot(m, reactions.get(m.wamid, ())) for m in page])


class ConversationReadApi(APIView):
    def post(self, request, conversation_id: int):
        conversation = _conversation_or_404(request, conversation_id)
        state = mark_conversation_read(user=request.user, conversation=conversation)
        return Response({"conversation_id": conversation.pk, "last_read_message_id": state.last_read_message_id})

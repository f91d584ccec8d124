"""The REST API over private notes and notifications: a conversation's notes (read, write), the members a note
may mention, and the requesting user's notifications (list, unread count, mark read). Thin views over
``services/notes.py`` and ``services/notifications.py``; refusals in the project's error shape."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import CURSOR_PARAMETERS, ErrorOut, PersonOut, cursor_page
from conversations import selectors
from conversations.apis import conversation_or_404
from conversations.models import NotificationKind
from conversations.services.notes import create_note
from conversations.services.notifications import mark_all_notifications_read, mark_notification_read
from conversations.snapshots import mention_snapshot, note_snapshot, notification_snapshot
from conversations.workflow_apis import valid_data

MentionOut = inline_serializer(
    "Mention",
    fields={
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "username": serializers.CharField(help_text='what follows "@" in a note'),
    },
)

NoteOut = inline_serializer(
    "Note",
    fields={
        "id": serializers.IntegerField(),
        "conversation_id": serializers.IntegerField(),
        "author": PersonOut,
        "body": serializers.CharField(),
        "mentions": MentionOut.__class__(many=True, help_text="the members of the number the note mentions"),
        "created_at": serializers.DateTimeField(),
    },
)

NotificationOut = inline_serializer(
    "Notification",
    fields={
        "id": serializers.IntegerField(),
        "kind": serializers.ChoiceField(choices=NotificationKind.values),
        "conversation_id": serializers.IntegerField(allow_null=True, help_text="null for a number alert"),
        "number_id": serializers.IntegerField(),
        "note_id": serializers.IntegerField(allow_null=True),
        "actor": PersonOut,
        "title": serializers.CharField(help_text='e.g. "Ana mentioned you"'),
        "text": serializers.CharField(allow_blank=True, help_text="the start of the note"),
        "contact_name": serializers.CharField(allow_blank=True),
        "url": serializers.CharField(help_text="the inbox page of the conversation, at the note"),
        "created_at": serializers.DateTimeField(),
        "read_at": serializers.DateTimeField(allow_null=True),
    },
)

UnreadCountOut = inline_serializer("NotificationUnreadCount", fields={"unread_count": serializers.IntegerField()})


class NoteCursor(CursorPagination):
    ordering = ("created_at", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class ConversationNotesApi(APIView):
    """``GET``: the conversation's private notes, oldest first. ``POST {"body"}``: a new note (``@username``
    mentions a member of the number, who is notified). Notes are never sent to WhatsApp: nothing else in the
    body is read."""

    class ConversationNoteInput(serializers.Serializer):
        # Blank and over-long bodies are the service's to refuse, with its words.
        body = serializers.CharField(allow_blank=True, trim_whitespace=False)

    @extend_schema(
        parameters=CURSOR_PARAMETERS,
        responses={200: cursor_page("NotePage", NoteOut), 401: ErrorOut, 404: ErrorOut},
    )
    def get(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        paginator = NoteCursor()
        page = paginator.paginate_queryset(selectors.conversation_notes(conversation=conversation), request, view=self)
        return paginator.get_paginated_response([note_snapshot(note) for note in page])

    @extend_schema(request=ConversationNoteInput, responses={201: NoteOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut})
    def post(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        body = valid_data(self.ConversationNoteInput, request)["body"]
        note = create_note(user=request.user, conversation=conversation, body=body)
        return Response(note_snapshot(note), status=201)


class ConversationMentionableApi(APIView):
    """``GET``: the members a note in this conversation may mention (the composer offers them on "@")."""

    @extend_schema(
        responses={
            200: inline_serializer("MentionableList", fields={"results": MentionOut.__class__(many=True)}),
            401: ErrorOut,
            404: ErrorOut,
        }
    )
    def get(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        members = selectors.mentionable_members(number=conversation.number)
        return Response({"results": [mention_snapshot(user) for user in members]})


class NotificationCursor(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class NotificationListApi(APIView):
    """``GET``: your notifications, newest first (only of the numbers you see now)."""

    @extend_schema(
        parameters=CURSOR_PARAMETERS,
        responses={200: cursor_page("NotificationPage", NotificationOut), 401: ErrorOut, 404: ErrorOut},
    )
    def get(self, request):
        paginator = NotificationCursor()
        page = paginator.paginate_queryset(selectors.notifications_for(user=request.user), request, view=self)
        return paginator.get_paginated_response([notification_snapshot(n) for n in page])


class NotificationUnreadCountApi(APIView):
    """``GET``: how many of your notifications are unread (the inbox's bell)."""

    @extend_schema(responses={200: UnreadCountOut, 401: ErrorOut})
    def get(self, request):
        return Response({"unread_count": selectors.unread_notification_count(user=request.user)})


class NotificationReadApi(APIView):
    """``POST``: mark one of your notifications read; the notification. Anyone else's is a 404."""

    @extend_schema(request=None, responses={200: NotificationOut, 401: ErrorOut, 404: ErrorOut})
    def post(self, request, notification_id: int):
        notification = mark_notification_read(user=request.user, notification_id=notification_id)
        return Response(notification_snapshot(notification))


class NotificationReadAllApi(APIView):
    """``POST``: mark all your notifications read; how many were unread, and the unread count (0)."""

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "NotificationsMarkedRead",
                fields={"marked": serializers.IntegerField(), "unread_count": serializers.IntegerField()},
            ),
            401: ErrorOut,
        },
    )
    def post(self, request):
        marked = mark_all_notifications_read(user=request.user)
        return Response({"marked": marked, "unread_count": selectors.unread_notification_count(user=request.user)})

"""The REST API over the team's work on conversations: status, assignee, the activity log, a number's members and
its assignment settings. Thin views over ``services/workflow.py``, whose ``WorkflowRefused`` the API's exception
handler (``config.api``) answers in the project's error shape."""

from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth import get_user_model
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import CURSOR_PARAMETERS, ActivityOut, ConversationOut, ErrorOut, cursor_page
from conversations import selectors
from conversations.apis import conversation_item, conversation_or_404
from conversations.models import AutoAssignment, ConversationStatus
from conversations.services import workflow
from conversations.services.errors import WorkflowRefused
from conversations.snapshots import activity_snapshot

# A snooze to a date alone ends at this hour of it, in the request's time zone.
SNOOZE_DATE_HOUR = time(9, 0)


def as_listed(request, conversation) -> Response:
    """The conversation as the list gives it (with this user's unread count), after a change."""
    return Response(conversation_item(selectors.conversation_list(user=request.user).get(pk=conversation.pk)))


def valid_data(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


CHANGED = {200: ConversationOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}


class ConversationStatusApi(APIView):
    """``POST {"status": "open" | "pending" | "snoozed" | "resolved", "snooze_until"?}``: ``snooze_until`` (needed
    for ``snoozed``, in the future) is a date-time with its offset, or a date, which means 09:00 that day in
    ``time_zone`` (an IANA name; default the server's)."""

    class StatusInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=ConversationStatus.values)
        snooze_until = serializers.CharField(required=False, allow_null=True, default=None)
        time_zone = serializers.CharField(required=False, default="")

        def validate_time_zone(self, value: str):
            try:
                return ZoneInfo(value) if value else timezone.get_current_timezone()
            except (ZoneInfoNotFoundError, ValueError) as error:
                raise serializers.ValidationError("Not a time zone name (e.g. Europe/Lisbon).") from error

        def validate(self, data):
            raw = data.get("snooze_until")
            if raw in (None, ""):
                data["snooze_until"] = None
                return data
            moment = _parse_moment(raw, zone=data["time_zone"])
            if moment is None:
                raise serializers.ValidationError({"snooze_until": ["A date-time with its offset, or a date."]})
            data["snooze_until"] = moment
            return data

    @extend_schema(request=StatusInput, responses=CHANGED)
    def post(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        data = valid_data(self.StatusInput, request)
        changed = workflow.change_conversation_status(
            user=request.user, conversation=conversation, status=data["status"], snooze_until=data["snooze_until"]
        )
        return as_listed(request, changed)


def _parse_moment(raw: str, *, zone) -> datetime | None:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if len(raw) <= len("2026-01-31"):  # a date alone
        return datetime.combine(moment.date(), SNOOZE_DATE_HOUR, tzinfo=zone)
    if timezone.is_naive(moment):
        return None
    return moment


class ConversationAssigneeApi(APIView):
    """``POST {"assignee": <user id> | null}``: a supervisor assigns to any member of the number, or to nobody; an
    agent may only take an unassigned conversation (their own id) or hand back theirs (null)."""

    class AssigneeInput(serializers.Serializer):
        assignee = serializers.IntegerField(allow_null=True)

    @extend_schema(request=AssigneeInput, responses=CHANGED)
    def post(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        wanted = valid_data(self.AssigneeInput, request)["assignee"]
        assignee = None
        if wanted is not None:
            assignee = get_user_model().objects.filter(pk=wanted).first()
            if assignee is None:
                raise WorkflowRefused(
                    "not_a_member", "The assignee must be a member of the conversation's number.", field="assignee"
                )
        changed = workflow.assign_conversation(user=request.user, conversation=conversation, assignee=assignee)
        return as_listed(request, changed)


class _OwnAssignmentApi(APIView):
    """A ``POST`` with no body that changes whether the conversation is the requesting user's."""

    change = None  # the workflow service: (user, conversation) -> conversation

    @extend_schema(request=None, responses=CHANGED)
    def post(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        changed = type(self).change(user=request.user, conversation=conversation)
        return as_listed(request, changed)


class ConversationTakeApi(_OwnAssignmentApi):
    """``POST``: take an unassigned conversation (409 ``already_assigned`` when someone has it)."""

    change = staticmethod(workflow.take_conversation)


class ConversationHandBackApi(_OwnAssignmentApi):
    """``POST``: hand back your conversation, which waits unassigned (409 ``not_yours`` if it is not yours)."""

    change = staticmethod(workflow.hand_back_conversation)


class ActivityCursor(CursorPagination):
    ordering = ("created_at", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class ConversationActivityApi(APIView):
    """``GET``: the conversation's activity lines (status and assignee changes), oldest first."""

    @extend_schema(
        parameters=CURSOR_PARAMETERS,
        responses={200: cursor_page("ActivityPage", ActivityOut), 401: ErrorOut, 404: ErrorOut},
    )
    def get(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        paginator = ActivityCursor()
        page = paginator.paginate_queryset(
            selectors.conversation_activities(conversation=conversation), request, view=self
        )
        return paginator.get_paginated_response([activity_snapshot(a) for a in page])


def number_or_404(request, number_id: int):
    number = selectors.visible_numbers(user=request.user).filter(pk=number_id).first()
    if number is None:
        raise Http404
    return number


def supervised_number_or_404(request, number_id: int, *, to: str):
    """The number if the user may see it (else 404) and supervises it (else 403 "Only a supervisor ... <to>")."""
    number = number_or_404(request, number_id)
    workflow.require_supervisor(user=request.user, number=number, to=to)
    return number


NumberSettingsOut = inline_serializer(
    "NumberAssignmentSettings",
    fields={
        "auto_assignment": serializers.ChoiceField(choices=AutoAssignment.values),
        "assign_on_reply": serializers.BooleanField(),
        "unassign_on_resolve": serializers.BooleanField(),
    },
)


def _settings_of(number) -> dict:
    return {
        "auto_assignment": number.auto_assignment,
        "assign_on_reply": number.assign_on_reply,
        "unassign_on_resolve": number.unassign_on_resolve,
    }


class NumberSettingsApi(APIView):
    """``GET`` the number's assignment settings; ``PATCH`` them (its supervisors only: 403 otherwise)."""

    class SettingsInput(serializers.Serializer):
        auto_assignment = serializers.ChoiceField(choices=AutoAssignment.values, required=False)
        assign_on_reply = serializers.BooleanField(required=False)
        unassign_on_resolve = serializers.BooleanField(required=False)

    @extend_schema(responses={200: NumberSettingsOut, 401: ErrorOut, 404: ErrorOut})
    def get(self, request, number_id: int):
        return Response(_settings_of(number_or_404(request, number_id)))

    @extend_schema(
        request=SettingsInput,
        responses={200: NumberSettingsOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    )
    def patch(self, request, number_id: int):
        number = number_or_404(request, number_id)
        changes = valid_data(self.SettingsInput, request)
        number = workflow.change_number_settings(user=request.user, number=number, **changes)
        return Response(_settings_of(number))


MemberOut = inline_serializer(
    "NumberMember",
    fields={
        "id": serializers.IntegerField(help_text="the user's id"),
        "name": serializers.CharField(),
        "role": serializers.ChoiceField(choices=["agent", "supervisor"]),
        "max_open": serializers.IntegerField(),
        "away": serializers.BooleanField(),
        "online": serializers.BooleanField(),
        "open_count": serializers.IntegerField(help_text="open and pending conversations assigned to them here"),
    },
)


class NumberMembersApi(APIView):
    """``GET``: the number's members, who may be assigned its conversations (the assignee picker)."""

    @extend_schema(
        responses={
            200: inline_serializer("NumberMemberList", fields={"results": MemberOut.__class__(many=True)}),
            401: ErrorOut,
            404: ErrorOut,
        }
    )
    def get(self, request, number_id: int):
        number = number_or_404(request, number_id)
        return Response({"results": selectors.number_members(number=number)})


class NumberAwayApi(APIView):
    """``PUT {"away": true | false}``: you are away on this number (auto-assignment passes you by) or back."""

    class AwayInput(serializers.Serializer):
        away = serializers.BooleanField()

    @extend_schema(
        request=AwayInput,
        responses={
            200: inline_serializer("Away", fields={"away": serializers.BooleanField()}),
            400: ErrorOut,
            401: ErrorOut,
            404: ErrorOut,
        },
    )
    def put(self, request, number_id: int):
        number = number_or_404(request, number_id)
        away = valid_data(self.AwayInput, request)["away"]
        workflow.set_member_away(user=request.user, number=number, away=away)
        return Response({"away": away})

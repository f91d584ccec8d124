"""The team's work on conversations: status (open, pending, snoozed until a time, resolved), the assignee (a
member of the number, or nobody), auto-assignment, and an activity record of every change.

Who may do what: anyone who sees the conversation changes its status; an agent takes an unassigned conversation
and hands back their own; a supervisor of the number (``NumberMembership.role``; superusers always) assigns
anyone's, to any member or to nobody.

Races: each change reads the conversation's row locked, so of two people taking one conversation one has it and
the other hears 409. Auto-assignment of a number runs holding the locks of the number's membership rows: two
workers assigning at once take turns, each counts what the other assigned, and no member goes past their
``max_open``; the conversations it hands out are locked too (``SKIP LOCKED``), so none gets two owners.

Every change is a ``ConversationActivity`` row and a ``conversation.activity`` event carrying the conversation as
it is now (clients apply it as a ``conversation.updated``).
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from conversations import jobs
from conversations.models import (
    ACTIVE_STATUSES,
    ActivityKind,
    AutoAssignment,
    BusinessNumber,
    Conversation,
    ConversationActivity,
    ConversationStatus,
    MemberRole,
    NumberMembership,
)
from conversations.selectors import labels_by_conversation, open_counts
from conversations.services.errors import WorkflowRefused
from conversations.snapshots import activity_snapshot, conversation_snapshot, person_snapshot
from database.bulk import insert_rows, update_rows
from realtime import events
from realtime.events import LabelPayload
from realtime.presence import forget_stale_sockets, online_user_ids
from realtime.publish import publish_events

# Snoozes reopened per transaction by the sweep, oldest first; it goes on until none is due.
SNOOZE_BATCH = 500


def member_role(*, user, number: BusinessNumber) -> str | None:
    """The user's role on the number: superusers are supervisors of every number; ``None`` for a non-member."""
    if user.is_superuser:
        return MemberRole.SUPERVISOR
    return NumberMembership.objects.filter(number=number, user=user).values_list("role", flat=True).first()


def require_supervisor(*, user, number: BusinessNumber, to: str) -> None:
    """A 403 ``not_allowed`` ("Only a supervisor of this number can <to>.") unless the user supervises it."""
    if member_role(user=user, number=number) != MemberRole.SUPERVISOR:
        raise WorkflowRefused("not_allowed", f"Only a supervisor of this number can {to}.", status=403)


def _is_member(*, user, number: BusinessNumber) -> bool:
    return user.is_active and NumberMembership.objects.filter(number=number, user=user).exists()


def locked_conversation(conversation: Conversation) -> Conversation:
    """The conversation's row read again, locked, with what its snapshot and activities need."""
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "number", "assignee")
        .get(pk=conversation.pk)
    )


def _activity(*, conversation: Conversation, kind: str, actor, details: dict, at: datetime | None = None):
    return ConversationActivity(
        conversation=conversation, kind=kind, actor=actor, details=details, created_at=at or timezone.now()
    )


def _assignment_activity(*, conversation: Conversation, actor, previous, reason: str, at=None):
    details = {
        "assignee": person_snapshot(conversation.assignee) if conversation.assignee_id else None,
        "previous": person_snapshot(previous),
        "reason": reason,
    }
    return _activity(conversation=conversation, kind=ActivityKind.ASSIGNMENT, actor=actor, details=details, at=at)


def status_activity(*, conversation: Conversation, actor, before: str, reason: str | None = None, at=None):
    """The activity of a status change already made on ``conversation`` (in memory), from ``before``."""
    details: dict = {"from": before, "to": conversation.status}
    if conversation.snoozed_until is not None:
        details["snoozed_until"] = conversation.snoozed_until.isoformat()
    if reason:
        details["reason"] = reason
    return _activity(conversation=conversation, kind=ActivityKind.STATUS, actor=actor, details=details, at=at)


def activity_events(
    activities: list[ConversationActivity], *, labels: dict[int, list[LabelPayload]] | None = None
) -> list[tuple[str, dict]]:
    """The ``conversation.activity`` events of saved activities; each conversation as it is now (in memory,
    with ``contact`` and ``assignee`` loaded). ``labels``: theirs, if the caller has read them; else one query."""
    if labels is None:
        labels = labels_by_conversation({activity.conversation_id for activity in activities})
    return [
        (
            events.CONVERSATION_ACTIVITY,
            {
                "activity": activity_snapshot(activity),
                "conversation": conversation_snapshot(activity.conversation, labels=labels[activity.conversation_id]),
            },
        )
        for activity in activities
    ]


def _save_and_publish(activities: list[ConversationActivity]) -> None:
    insert_rows(objects=activities)
    by_number: dict[int, list[ConversationActivity]] = {}
    for activity in activities:
        by_number.setdefault(activity.conversation.number_id, []).append(activity)
    for number_id, batch in by_number.items():
        publish_events(number_id=number_id, events=activity_events(batch))


def record_activity(*, conversation: Conversation, kind: str, actor, details: dict) -> ConversationActivity:
    """Record one change of another kind (a label) the way status and assignee changes are: an activity row and its
    ``conversation.activity`` event. ``conversation`` has ``contact`` and ``assignee`` loaded."""
    activity = _activity(conversation=conversation, kind=kind, actor=actor, details=details)
    _save_and_publish([activity])
    return activity


def request_auto_assignment(*, number: BusinessNumber) -> None:
    """After commit, have a worker hand the number's waiting conversations to members with room."""
    if number.auto_assignment != AutoAssignment.OFF:
        jobs.enqueue(jobs.ASSIGN_WAITING_CONVERSATIONS, number.pk)


# --- status -----------------------------------------------------------------------------------------------


@transaction.atomic
def change_conversation_status(
    *, user, conversation: Conversation, status: str, snooze_until: datetime | None = None
) -> Conversation:
    """Set the status; a snooze needs a time in the future (``snooze_until``), which any other status drops.
    Resolving unassigns when the number says so (``unassign_on_resolve``). The same status again changes
    nothing and records nothing."""
    if status not in ConversationStatus.values:
        raise WorkflowRefused("unknown_status", "Status must be open, pending, snoozed or resolved.", field="status")
    now = timezone.now()
    snoozed_until = snooze_until if status == ConversationStatus.SNOOZED else None
    if status == ConversationStatus.SNOOZED:
        if snooze_until is None:
            raise WorkflowRefused("snooze_needs_time", "Say until when to snooze.", field="snooze_until")
        if snooze_until <= now:
            raise WorkflowRefused("snooze_in_past", "A snooze must end in the future.", field="snooze_until")
    current = locked_conversation(conversation)
    if current.status == status and current.snoozed_until == snoozed_until:
        return current
    before, holder = current.status, current.assignee
    current.status, current.snoozed_until = status, snoozed_until
    activities = [status_activity(conversation=current, actor=user, before=before, at=now)]
    fields = ["status", "snoozed_until"]
    if status == ConversationStatus.RESOLVED and current.number.unassign_on_resolve and holder is not None:
        current.assignee = None
        fields.append("assignee")
        activities.append(_assignment_activity(conversation=current, actor=user, previous=holder, reason="resolved"))
    current.save(update_fields=fields)
    _save_and_publish(activities)
    # A member's slot freed, or a conversation back to waiting: auto-assignment may have work.
    freed = holder is not None and before in ACTIVE_STATUSES and status not in ACTIVE_STATUSES
    waiting = current.assignee_id is None and status == ConversationStatus.OPEN
    if freed or waiting:
        request_auto_assignment(number=current.number)
    return current


def reopen_due_snoozes(*, now: datetime | None = None) -> int:
    """Reopen every conversation whose snooze has ended; how many. Each batch locks its rows (``SKIP LOCKED``)
    and reopens them with an UPDATE conditional on the snooze, so two sweeps at once reopen each only once."""
    now = now or timezone.now()
    reopened = 0
    while True:
        with transaction.atomic():
            due = list(
                Conversation.objects.select_for_update(of=("self",), skip_locked=True)
                .filter(status=ConversationStatus.SNOOZED, snoozed_until__lte=now)
                .select_related("contact", "number", "assignee")
                .order_by("snoozed_until", "pk")[:SNOOZE_BATCH]
            )
            if not due:
                return reopened
            Conversation.objects.filter(
                pk__in=[c.pk for c in due], status=ConversationStatus.SNOOZED, snoozed_until__lte=now
            ).update(status=ConversationStatus.OPEN, snoozed_until=None)
            activities = []
            for conversation in due:
                conversation.status, conversation.snoozed_until = ConversationStatus.OPEN, None
                activities.append(
                    status_activity(
                        conversation=conversation,
                        actor=None,
                        before=ConversationStatus.SNOOZED,
                        reason="snooze_ended",
                        at=now,
                    )
                )
            _save_and_publish(activities)
            for number in {c.number_id: c.number for c in due if c.assignee_id is None}.values():
                request_auto_assignment(number=number)
        reopened += len(due)
        if len(due) < SNOOZE_BATCH:
            return reopened


# --- assignment -------------------------------------------------------------------------------------------


@transaction.atomic
def assign_conversation(*, user, conversation: Conversation, assignee) -> Conversation:
    """Give the conversation to ``assignee`` (a member of its number) or to nobody (``None``).

    A supervisor may do either with any conversation; an agent only take an unassigned one (``assignee`` is
    themselves) or hand back their own (``None``): anything else is 403."""
    current = locked_conversation(conversation)
    number = current.number
    if assignee is not None and not _is_member(user=assignee, number=number):
        raise WorkflowRefused(
            "not_a_member", "The assignee must be a member of the conversation's number.", field="assignee"
        )
    wanted = assignee.pk if assignee is not None else None
    if current.assignee_id == wanted:
        return current
    taking = current.assignee_id is None and wanted == user.pk
    handing_back = current.assignee_id == user.pk and wanted is None
    if member_role(user=user, number=number) != MemberRole.SUPERVISOR and not (taking or handing_back):
        raise WorkflowRefused(
            "not_allowed",
            "Only a supervisor of this number can assign conversations to others or take them from others.",
            status=403,
        )
    reason = "took" if taking else "handed_back" if handing_back else "assigned"
    return _reassign(conversation=current, actor=user, assignee=assignee, reason=reason)


@transaction.atomic
def take_conversation(*, user, conversation: Conversation) -> Conversation:
    """The user takes an unassigned conversation: 409 if someone has it (someone else was first)."""
    current = locked_conversation(conversation)
    if current.assignee_id == user.pk:
        return current
    if current.assignee_id is not None:
        raise WorkflowRefused(
            "already_assigned", f"{person_snapshot(current.assignee)['name']} has this conversation.", status=409
        )
    if not _is_member(user=user, number=current.number):
        raise WorkflowRefused(
            "not_a_member", "Only a member of the number can take its conversations.", field="assignee"
        )
    return _reassign(conversation=current, actor=user, assignee=user, reason="took")


@transaction.atomic
def hand_back_conversation(*, user, conversation: Conversation) -> Conversation:
    """The user hands back their own conversation (it waits unassigned): 409 if it is not theirs."""
    current = locked_conversation(conversation)
    if current.assignee_id != user.pk:
        raise WorkflowRefused("not_yours", "Only the conversation's assignee can hand it back.", status=409)
    return _reassign(conversation=current, actor=user, assignee=None, reason="handed_back")


def _reassign(*, conversation: Conversation, actor, assignee, reason: str) -> Conversation:
    """Set the assignee of a conversation read locked, record and publish it."""
    previous = conversation.assignee
    conversation.assignee = assignee
    conversation.save(update_fields=["assignee"])
    _save_and_publish([_assignment_activity(conversation=conversation, actor=actor, previous=previous, reason=reason)])
    if assignee is None or previous is not None:
        request_auto_assignment(number=conversation.number)
    return conversation


@transaction.atomic
def release_member_conversations(*, number_id: int, user_id: int, reason: str = "left") -> int:
    """Someone who is no longer a member of the number (``reason`` "left") or whose account was deactivated
    ("deactivated") has none of its conversations: each is unassigned (and waits for auto-assignment). How many."""
    held = list(
        Conversation.objects.select_for_update(of=("self",))
        .filter(number_id=number_id, assignee_id=user_id)
        .select_related("contact", "number", "assignee")
        .order_by("pk")
    )
    if not held:
        return 0
    Conversation.objects.filter(pk__in=[c.pk for c in held], assignee_id=user_id).update(assignee=None)
    activities = []
    for conversation in held:
        previous, conversation.assignee = conversation.assignee, None
        activities.append(_assignment_activity(conversation=conversation, actor=None, previous=previous, reason=reason))
    _save_and_publish(activities)
    request_auto_assignment(number=held[0].number)
    return len(held)


def release_deactivated_user_conversations(*, user_id: int) -> int:
    """A deactivated account can answer no one: its conversations on every number wait for someone else. How
    many."""
    number_ids = (
        Conversation.objects.filter(assignee_id=user_id).values_list("number_id", flat=True).distinct().order_by()
    )
    return sum(
        release_member_conversations(number_id=number_id, user_id=user_id, reason="deactivated")
        for number_id in list(number_ids)
    )


def assign_replier(*, user, conversation: Conversation) -> None:
    """A reply to an unassigned conversation assigns it to whoever replied, a member of the number, when the
    number says so (``assign_on_reply``). One conditional UPDATE: of two replies at once, the first has it.
    ``conversation`` (with ``contact`` and ``number`` loaded) learns its assignee."""
    if not conversation.number.assign_on_reply or conversation.assignee_id is not None:
        return
    taken = Conversation.objects.filter(
        pk=conversation.pk,
        assignee__isnull=True,
        number__memberships__user=user,
        number__memberships__user__is_active=True,
    ).update(assignee=user)
    if not taken:
        return
    conversation.assignee = user
    _save_and_publish([_assignment_activity(conversation=conversation, actor=user, previous=None, reason="replied")])


# --- auto-assignment --------------------------------------------------------------------------------------


def assign_waiting_conversations(*, number_id: int, now: datetime | None = None) -> int:
    """Hand the number's waiting conversations (open, unassigned), longest waiting first, to its members who
    are online, not away and under their ``max_open``: round robin (the one assigned longest ago) or fewest
    open first, as the number says. How many were assigned; the rest wait for a member to come online or
    free a slot."""
    now = now or timezone.now()
    with transaction.atomic():
        number = BusinessNumber.objects.filter(pk=number_id).first()
        if number is None or number.auto_assignment == AutoAssignment.OFF:
            return 0
        # The number's auto-assignments take turns here: what one assigns, the next one counts.
        memberships = list(
            NumberMembership.objects.select_for_update(of=("self",))
            .filter(number_id=number_id)
            .select_related("user")
            .order_by("pk")
        )
        online = online_user_ids(user_ids=[m.user_id for m in memberships], now=now)
        eligible = [m for m in memberships if m.user_id in online and not m.away and m.user.is_active]
        if not eligible:
            return 0
        active = open_counts(number_id=number_id, user_ids=[m.user_id for m in eligible])
        room = sum(max(m.max_open - active.get(m.user_id, 0), 0) for m in eligible)
        if room == 0:
            return 0
        waiting = list(
            Conversation.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(number_id=number_id, assignee__isnull=True, status=ConversationStatus.OPEN)
            .select_related("contact")
            .order_by("last_message_at", "pk")[:room]
        )
        never = datetime.min.replace(tzinfo=now.tzinfo)
        fewest_open = number.auto_assignment == AutoAssignment.FEWEST_OPEN

        def order(m):  # fewest open first if so set, then the one assigned longest ago
            return (active.get(m.user_id, 0) if fewest_open else 0, m.last_assigned_at or never, m.pk)

        activities, picked = [], {}
        for step, conversation in enumerate(waiting):
            candidates = [m for m in eligible if active.get(m.user_id, 0) < m.max_open]
            if not candidates:
                break
            member = min(candidates, key=order)
            member.last_assigned_at = now + timedelta(microseconds=step)
            active[member.user_id] = active.get(member.user_id, 0) + 1
            picked[member.pk] = member
            conversation.assignee = member.user
            activities.append(
                _assignment_activity(conversation=conversation, actor=None, previous=None, reason="auto", at=now)
            )
        assigned = [activity.conversation for activity in activities]
        update_rows(objects=assigned, fields=["assignee"])
        update_rows(objects=list(picked.values()), fields=["last_assigned_at"])
        _save_and_publish(activities)
        return len(assigned)


@transaction.atomic
def change_number_settings(*, user, number: BusinessNumber, **changes) -> BusinessNumber:
    """Change the number's assignment settings (``auto_assignment``, ``assign_on_reply``,
    ``unassign_on_resolve``): its supervisors only. Turning auto-assignment on hands out what waits."""
    require_supervisor(user=user, number=number, to="change its settings")
    allowed = {"auto_assignment", "assign_on_reply", "unassign_on_resolve"}
    if set(changes) - allowed:
        raise ValueError(f"not a number setting: {sorted(set(changes) - allowed)}")
    if changes:
        BusinessNumber.objects.filter(pk=number.pk).update(**changes)
        for name, value in changes.items():
            setattr(number, name, value)
        request_auto_assignment(number=number)
    return number


@transaction.atomic
def set_member_away(*, user, number: BusinessNumber, away: bool) -> None:
    """The member is away on the number (auto-assignment passes them by) or back (it may have work for them)."""
    if not NumberMembership.objects.filter(number=number, user=user).update(away=away):
        raise WorkflowRefused("not_a_member", "Only a member of the number can be away from it.")
    if not away:
        request_auto_assignment(number=number)


def member_came_online(*, user) -> None:
    """A socket of the user opened: their numbers with auto-assignment may have work for them."""
    numbers = BusinessNumber.objects.filter(memberships__user=user, memberships__away=False).exclude(
        auto_assignment=AutoAssignment.OFF
    )
    for number in numbers:
        request_auto_assignment(number=number)


def sweep_conversations(*, now: datetime | None = None) -> dict[str, int]:
    """Celery beat's periodic work: reopen ended snoozes, forget sockets whose Daphne died, and hand waiting
    conversations to members with room (a task lost with the broker, a member whose limit was raised)."""
    now = now or timezone.now()
    reopened = reopen_due_snoozes(now=now)
    stale = forget_stale_sockets(now=now)
    assigned = 0
    auto = BusinessNumber.objects.exclude(auto_assignment=AutoAssignment.OFF).values_list("pk", flat=True)
    for number_id in auto:
        assigned += assign_waiting_conversations(number_id=number_id, now=now)
    return {"reopened": reopened, "stale_sockets": stale, "assigned": assigned}

"""Reads shared by the inbox pages and the REST API; membership rules live here and only here."""

import functools
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import phonenumbers
from django.contrib.auth import get_user_model
from django.db.models import (
    Count,
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from contacts.models import Contact
from contacts.selectors import contact_matches
from conversations.account_events import limit_of
from conversations.alerts import alert_snapshot
from conversations.models import (
    ACTIVE_STATUSES,
    AccountChange,
    AddressBookEntry,
    BusinessAccount,
    BusinessNumber,
    CannedReply,
    ContactNote,
    Conversation,
    ConversationActivity,
    ConversationLabel,
    ConversationNote,
    Direction,
    Label,
    MarketingPreference,
    MediaFile,
    MediaState,
    MemberRole,
    Message,
    MessageStatus,
    MessageTemplate,
    Notification,
    NumberAlert,
    NumberMembership,
    RateCardEntry,
    Reaction,
)
from conversations.search import body_matches
from conversations.snapshots import label_order, person_snapshot
from database.replica import read_replica
from realtime.events import LabelPayload
from realtime.presence import online_user_ids

VIEW_MINE = "mine"
VIEW_UNASSIGNED = "unassigned"
VIEW_ALL = "all"
VIEWS = (VIEW_MINE, VIEW_UNASSIGNED, VIEW_ALL)
# How many recently active conversations a search's first page is looked for in before all of them.
RECENT_SEARCH_CONVERSATIONS = 1000
# ... and then among the messages this many times as far back (words frequent once, not lately).
SEARCH_REACH_FURTHER = 20


def visible_numbers(*, user) -> QuerySet[BusinessNumber]:
    """Superusers see every number; staff only the numbers they are members of."""
    numbers = BusinessNumber.objects.order_by("name", "display_phone_number")
    if user.is_superuser:
        return numbers
    return numbers.filter(members=user)


def visible_contacts(*, user, contacts: QuerySet[Contact] | None = None) -> QuerySet[Contact]:
    """Those of ``contacts`` (default: all) who wrote to, or were written from, a number the user may see;
    superusers see all. The API and the admin list the same people."""
    contacts = Contact.objects.all() if contacts is None else contacts
    if user.is_superuser:
        return contacts
    talks = Conversation.objects.filter(contact=OuterRef("pk"), number__in=visible_numbers(user=user))
    return contacts.filter(Exists(talks))


def contact_list(*, user, search: str = "", may_lag: bool = False) -> QuerySet[Contact]:
    """Contacts who wrote to (or were written from) a number the user may see, newest first.

    ``may_lag``: a search may be answered by the read replica, seconds behind the primary (the API's ``q``)."""
    contacts = visible_contacts(user=user, contacts=Contact.objects.order_by("-updated_at", "-id"))
    if search.strip():
        contacts = contacts.filter(contact_matches(search.strip()))
        if may_lag:
            contacts = contacts.using(read_replica())
    return contacts


def contact_for_user(*, user, contact_id: int) -> Contact | None:
    return contact_list(user=user).filter(pk=contact_id).first()


def can_change_contact(*, user, contact: Contact) -> bool:
    """May this user rename the contact or merge it with another? One contact is one person to every number
    it talks to: a new name, or a conversation moved by a merge, changes it for each of those numbers' teams.
    So only someone who may see every number the contact has a conversation on (or a superuser) may."""
    if user.is_superuser:
        return True
    talks = Conversation.objects.filter(contact=contact).aggregate(
        total=Count("pk"), hidden=Count("pk", filter=~Q(number__in=visible_numbers(user=user)))
    )
    return talks["total"] > 0 and talks["hidden"] == 0


def conversation_list(
    *,
    user,
    numbers: list[BusinessNumber] | None = None,
    phone_number_id: str | None = None,
    unread_only: bool = False,
    search: str = "",
    may_lag: bool = False,
    view: str = VIEW_ALL,
    status: str | None = None,
    assignee_id: int | None = None,
) -> QuerySet[Conversation]:
    """Conversations the user may see, newest activity first, each with this user's ``unread_count``.

    ``view``: ``mine`` (assigned to the user), ``unassigned`` or ``all``; ``status``: only that status (``None``:
    any); ``assignee_id``: only those assigned to that user.

    ``numbers`` are the user's ``visible_numbers`` when the caller has them already (the inbox page lists
    them anyway); otherwise they are read here, one query. ``may_lag``: a search may be answered by the read
    replica, seconds behind the primary: the API's ``q``, not the inbox page, which replays the event log from
    the head it read on the primary and would miss what the replica had not replayed yet."""
    if numbers is None:
        numbers = list(visible_numbers(user=user))
    if phone_number_id:
        numbers = [n for n in numbers if n.phone_number_id == phone_number_id]
    conversations = (
        _with_unread_count(user=user, numbers=numbers)
        .select_related("contact", "number", "assignee")
        # Clients count an event's message as unread only when it is newer than this (so replaying
        # an event the page already reflects never counts it twice).
        .annotate(last_message_id=_last_message_id())
        .order_by("-last_message_at", "-id")
    )
    conversations = conversations.filter(_workflow_filter(user=user, view=view, status=status, assignee_id=assignee_id))
    if unread_only:
        conversations = conversations.filter(unread_count__gt=0)
    if search.strip():
        conversations = conversations.filter(contact_matches(search.strip(), prefix="contact__"))
        if may_lag:
            conversations = conversations.using(read_replica())
    return conversations


def _view_condition(*, user, view: str) -> Q:
    """Which conversations a view of the list holds (an unknown view is ``all``)."""
    if view == VIEW_MINE:
        return Q(assignee_id=user.pk)
    if view == VIEW_UNASSIGNED:
        return Q(assignee__isnull=True)
    return Q()


def _workflow_filter(*, user, view: str, status: str | None, assignee_id: int | None) -> Q:
    """The list's view, status and assignee as one condition."""
    condition = _view_condition(user=user, view=view)
    if status:
        condition &= Q(status=status)
    if assignee_id is not None:
        condition &= Q(assignee_id=assignee_id)
    return condition


def view_counts(
    *, user, numbers: list[BusinessNumber] | None = None, phone_number_id: str | None = None, status: str | None = None
) -> dict[str, int]:
    """How many conversations each view holds (``mine``, ``unassigned``, ``all``) under the same number and
    status as the list: one query."""
    counts = inbox_totals(user=user, numbers=numbers, phone_number_id=phone_number_id, status=status)
    counts.pop("unread_total")
    return counts


def inbox_totals(
    *, user, numbers: list[BusinessNumber] | None = None, phone_number_id: str | None = None, status: str | None = None
) -> dict[str, int]:
    """``view_counts`` and the user's ``unread_total`` (every number, every status) together, in one query."""
    if numbers is None:
        numbers = list(visible_numbers(user=user))
    listed = Q(number_id__in=[n.pk for n in numbers if not phone_number_id or n.phone_number_id == phone_number_id])
    if status:
        listed &= Q(status=status)
    totals = _with_unread_count(user=user, numbers=numbers).aggregate(
        unread_total=Coalesce(Sum("unread_count"), Value(0)),
        **{view: Count("pk", filter=listed & _view_condition(user=user, view=view)) for view in VIEWS},
    )
    return totals


def team_of(*, numbers: list[BusinessNumber], user=None, number: BusinessNumber | None = None):
    """The active members of these numbers, once each, by name, and ``user``'s role on ``number`` (``None``: not a
    member; superusers are supervisors), in one query."""
    memberships = (
        NumberMembership.objects.filter(number__in=[n.pk for n in numbers], user__is_active=True)
        .select_related("user")
        .order_by("user__first_name", "user__last_name", "user__username", "number_id")
    )
    members: dict[int, dict] = {}
    role = MemberRole.SUPERVISOR if user is not None and user.is_superuser else None
    for membership in memberships:
        members.setdefault(membership.user_id, person_snapshot(membership.user))
        if (
            user is not None
            and number is not None
            and (membership.user_id, membership.number_id) == (user.pk, number.pk)
        ):
            role = role or membership.role
    return list(members.values()), role


def _newest_message_id(direction: str) -> Subquery:
    return Subquery(
        Message.objects.filter(conversation=OuterRef("pk"), direction=direction).order_by("-id").values("id")[:1]
    )


def _last_message_id() -> Greatest:
    """The conversation's newest message id (0 if none), from two one-row backward scans of
    message_unread_scan (conversation, direction, id): ordering all its messages by id read every one."""
    return Greatest(
        Coalesce(_newest_message_id(Direction.INBOUND), Value(0)),
        Coalesce(_newest_message_id(Direction.OUTBOUND), Value(0)),
    )


def last_message_id(*, conversation: Conversation) -> int:
    """The id of the conversation's newest message (0 if none), in one query."""
    return Conversation.objects.filter(pk=conversation.pk).values_list(_last_message_id(), flat=True).first() or 0


def _with_unread_count(*, user, numbers: list[BusinessNumber]) -> QuerySet[Conversation]:
    """Conversations of these numbers annotated with this user's ``unread_count``: customer messages the
    conversation holds minus those it held when the user last read it (a counter on each row, no COUNT
    over the messages table).

    The numbers' ids go into the query as values, not as a subquery: with one number the newest
    conversations come straight off the conversation_activity index (number, last_message_at, id), where a
    subquery made PostgreSQL join and sort every conversation first (10,000: ~15 ms, growing with them)."""
    return (
        Conversation.objects.filter(number_id__in=[number.pk for number in numbers])
        .annotate(my_read=FilteredRelation("read_states", condition=Q(read_states__user=user)))
        .annotate(
            unread_count=Greatest(F("inbound_count") - Coalesce(F("my_read__read_inbound_count"), Value(0)), Value(0))
        )
    )


def unread_total(*, user, numbers: list[BusinessNumber] | None = None) -> int:
    """All of the user's unread messages, across every conversation (not only a loaded page)."""
    if numbers is None:
        numbers = list(visible_numbers(user=user))
    return _with_unread_count(user=user, numbers=numbers).aggregate(total=Sum("unread_count"))["total"] or 0


def conversation_for_user(*, user, conversation_id: int) -> Conversation | None:
    """The conversation if this user may see it, else ``None`` (callers answer 404, not 403)."""
    return (
        Conversation.objects.filter(pk=conversation_id, number__in=visible_numbers(user=user))
        .select_related("contact", "number", "assignee")
        .first()
    )


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    """The thread in Meta's order (its timestamps), arrival order breaking ties."""
    return thread_messages(conversation=conversation).order_by("timestamp", "id")


def thread_messages(*, conversation: Conversation) -> QuerySet[Message]:
    """What the thread shows: every message but the business's own reactions (shown under their target)."""
    return conversation.messages.exclude(direction=Direction.OUTBOUND, type="reaction").select_related(
        "media", "sent_by"
    )


def messages_before(
    *, conversation: Conversation, before: Message | None = None, limit: int = 50
) -> tuple[list[Message], bool]:
    """The ``limit`` messages just before ``before`` (or the newest ones) in thread order, and whether
    older ones remain: the page the thread loads upward on scroll."""
    messages = thread_messages(conversation=conversation)
    if before is not None:
        messages = messages.filter(Q(timestamp__lt=before.timestamp) | Q(timestamp=before.timestamp, id__lt=before.pk))
    page = list(messages.order_by("-timestamp", "-id")[: limit + 1])
    return list(reversed(page[:limit])), len(page) > limit


def messages_after(*, conversation: Conversation, after: Message, limit: int = 50) -> tuple[list[Message], bool]:
    """The ``limit`` messages just after ``after`` in thread order, and whether newer ones remain: the page the
    thread loads downward when it was opened at an older message."""
    messages = thread_messages(conversation=conversation).filter(
        Q(timestamp__gt=after.timestamp) | Q(timestamp=after.timestamp, id__gt=after.pk)
    )
    page = list(messages.order_by("timestamp", "id")[: limit + 1])
    return page[:limit], len(page) > limit


def thread_message(*, conversation: Conversation, message_id: int) -> Message | None:
    """One message of the thread (not a business reaction), with what its snapshot needs."""
    return thread_messages(conversation=conversation).filter(pk=message_id).first()


def messages_around(
    *, conversation: Conversation, message: Message, limit: int = 50
) -> tuple[list[Message], bool, bool]:
    """The page of the thread with ``message`` in its middle (a search hit opened), whether older messages remain
    and whether newer ones do: one query (the older and the newer half, each one row longer to tell)."""
    half = limit // 2
    messages = thread_messages(conversation=conversation)
    at = Q(timestamp=message.timestamp)
    older = messages.filter(Q(timestamp__lt=message.timestamp) | at & Q(id__lt=message.pk))
    newer = messages.filter(Q(timestamp__gt=message.timestamp) | at & Q(id__gt=message.pk))
    rows = older.order_by("-timestamp", "-id")[: half + 1].union(
        newer.order_by("timestamp", "id")[: limit - half], all=True
    )
    key = (message.timestamp, message.pk)
    before = sorted((m for m in rows if (m.timestamp, m.pk) < key), key=lambda m: (m.timestamp, m.pk))
    after = sorted((m for m in rows if (m.timestamp, m.pk) > key), key=lambda m: (m.timestamp, m.pk))
    return [*before[-half:], message, *after[: limit - half - 1]], len(before) > half, len(after) > limit - half - 1


def contact_conversations(*, user, conversation: Conversation) -> QuerySet[Conversation]:
    """The contact's other conversations the user may see (one a number: on the other numbers they are a member
    of), newest first, for the contact panel."""
    return (
        Conversation.objects.filter(contact_id=conversation.contact_id, number__in=visible_numbers(user=user))
        .exclude(pk=conversation.pk)
        .select_related("number", "assignee")
        .order_by("-last_message_at", "-id")
    )


def contact_notes(*, conversation: Conversation) -> QuerySet[ContactNote]:
    """The notes of the conversation's number about its contact, oldest first (never another number's)."""
    return (
        ContactNote.objects.filter(number_id=conversation.number_id, contact_id=conversation.contact_id)
        .select_related("author")
        .order_by("created_at", "id")
    )


def saved_name(*, conversation: Conversation) -> str:
    """The contact's name in the phone app's contacts of the conversation's number (Coexistence), else ""."""
    entry = (
        AddressBookEntry.objects.filter(number_id=conversation.number_id, contact_id=conversation.contact_id)
        .exclude(removed=True)
        .values_list("full_name", "first_name")
        .first()
    )
    return (entry[0] or entry[1]) if entry else ""


def contact_note_for(*, conversation: Conversation, note_id: int) -> ContactNote | None:
    """One of ``contact_notes``, else ``None`` (callers answer 404)."""
    return contact_notes(conversation=conversation).filter(pk=note_id).first()


def searched_numbers(
    *, user, numbers: list[BusinessNumber] | None = None, phone_number_id: str | None = None
) -> list[BusinessNumber]:
    """The numbers a message search looks in: ``numbers`` (default: those the user may see), narrowed to one."""
    if numbers is None:
        numbers = list(visible_numbers(user=user))
    if phone_number_id:
        numbers = [n for n in numbers if n.phone_number_id == phone_number_id]
    return numbers


def message_search(
    *,
    user,
    search: str,
    numbers: list[BusinessNumber] | None = None,
    phone_number_id: str | None = None,
    since: datetime | None = None,
    may_lag: bool = False,
) -> QuerySet[Message]:
    """Messages whose text holds the search's words (``conversations.search``), in conversations of the numbers the
    user may see, newest first, with their conversation's contact and number; never a revoked one. ``since``: only
    messages from then on (a first page's look among the recent ones, ``recent_search_starts``).

    ``may_lag``: the read replica may answer, seconds behind the primary (a hit is a link, not kept live)."""
    numbers = searched_numbers(user=user, numbers=numbers, phone_number_id=phone_number_id)
    using = read_replica() if may_lag else "default"
    condition = body_matches(search, using=using)
    if condition is None or not numbers:
        return Message.objects.none()
    hits = Message.objects.using(using).filter(condition, conversation__number_id__in=[n.pk for n in numbers])
    if since is not None:
        hits = hits.filter(timestamp__gte=since)
    return (
        # A revoked message keeps its words for the audit trail, never for a search.
        hits.exclude(content__has_key="revoked")
        .select_related("conversation__contact", "conversation__number")
        .order_by("-timestamp", "-id")
    )


def recent_search_starts(*, numbers: list[BusinessNumber], may_lag: bool = False) -> list[datetime]:
    """Where a search's first page is looked for before all messages, nearest first (``conversations.search``):
    since the numbers' ``RECENT_SEARCH_CONVERSATIONS`` most recently active conversations have all been active
    (about as many messages: a conversation's last activity is its newest message), then ``SEARCH_REACH_FURTHER``
    times as far back. None for fewer conversations: all their messages are searched at once."""
    using = read_replica() if may_lag else "default"
    last_active = (
        Conversation.objects.using(using)
        .filter(number_id__in=[n.pk for n in numbers])
        .order_by("-last_message_at", "-id")
        .values_list("last_message_at", flat=True)
    )
    nearest = last_active[RECENT_SEARCH_CONVERSATIONS - 1 : RECENT_SEARCH_CONVERSATIONS].first()
    if nearest is None:
        return []
    now = timezone.now()
    return [nearest, now - max(now - nearest, timedelta(minutes=1)) * SEARCH_REACH_FURTHER]


def reactions_by_wamid(*, wamids: Iterable[str]) -> dict[str, list[Reaction]]:
    """One query for the reactions of a page of messages."""
    grouped: dict[str, list[Reaction]] = defaultdict(list)
    wamids = [w for w in wamids if w]
    if wamids:
        for reaction in Reaction.objects.filter(message_wamid__in=wamids).exclude(emoji="").select_related("contact"):
            grouped[reaction.message_wamid].append(reaction)
    return grouped


def templates_for(*, conversation: Conversation) -> QuerySet[MessageTemplate]:
    """The templates this conversation may be sent: approved ones of its number's WhatsApp Business Account whose
    components are known (one a webhook announced waits for the sync), without the marketing ones once the
    customer stopped marketing from this number (Meta refuses them)."""
    templates = MessageTemplate.objects.filter(waba_id=conversation.number.waba_id, status__iexact="APPROVED")
    templates = templates.exclude(components=[])
    if marketing_opted_out(conversation=conversation):
        templates = templates.exclude(category__iexact="MARKETING")
    return templates.order_by("name", "language")


def number_template(*, number: BusinessNumber, template_id: int) -> MessageTemplate | None:
    """One template of the number's WhatsApp Business Account, whatever its status."""
    return MessageTemplate.objects.filter(waba_id=number.waba_id, pk=template_id).first() if number.waba_id else None


def marketing_opted_out(*, conversation: Conversation) -> bool:
    return MarketingPreference.objects.filter(
        number_id=conversation.number_id, contact_id=conversation.contact_id, opted_out=True
    ).exists()


def media_for_user(*, user, message_id: int):
    """A stored media file the user may see (via the conversation's number), else ``None``."""
    return (
        MediaFile.objects.filter(
            message_id=message_id, state=MediaState.READY, message__conversation__number__in=visible_numbers(user=user)
        )
        .exclude(file="")
        .first()
    )


def conversation_activities(*, conversation: Conversation, since=None) -> QuerySet[ConversationActivity]:
    """The conversation's activity lines, oldest first, with who made each; ``since``: none older (the lines
    beside a page of the thread)."""
    activities = conversation.activities.select_related("actor").order_by("created_at", "id")
    return activities if since is None else activities.filter(created_at__gte=since)


def number_members(*, number: BusinessNumber) -> list[dict]:
    """The number's members as the assignee picker shows them: role, limit, away, online, open conversations.
    Three queries whatever their number."""
    memberships = list(NumberMembership.objects.filter(number=number).select_related("user").order_by("user__username"))
    user_ids = [m.user_id for m in memberships]
    online = online_user_ids(user_ids=user_ids)
    active = open_counts(number_id=number.pk, user_ids=user_ids)
    return [
        {
            **person_snapshot(m.user),
            "role": m.role,
            "max_open": m.max_open,
            "away": m.away,
            "online": m.user_id in online,
            "open_count": active.get(m.user_id, 0),
        }
        for m in memberships
        if m.user.is_active
    ]


def open_counts(*, number_id: int, user_ids: list[int]) -> dict[int, int]:
    """How many open or pending conversations of the number each of these users has (absent: none)."""
    return dict(
        Conversation.objects.filter(number_id=number_id, assignee_id__in=user_ids, status__in=ACTIVE_STATUSES)
        .values("assignee_id")
        .annotate(count=Count("pk"))
        .values_list("assignee_id", "count")
    )


def labelled(conversations: QuerySet[Conversation], *, label_id: int | None = None) -> QuerySet[Conversation]:
    """The conversations with their labels (one query more, for ``snapshots.conversation_labels``); ``label_id``:
    only those with that label. The inbox page's list and the API's ``?label=`` both filter here."""
    if label_id is not None:
        conversations = conversations.filter(
            Exists(ConversationLabel.objects.filter(conversation=OuterRef("pk"), label_id=label_id))
        )
    return conversations.prefetch_related(_label_links())


def labels_by_conversation(conversation_ids: Iterable[int]) -> dict[int, list[LabelPayload]]:
    """Each conversation's labels by name, for conversations already in hand (the events' snapshots): one query
    of rows, not model instances, which a drain's round of hundreds of conversations notices (a prefetch costs
    about a tenth of a drained message's instructions)."""
    ids = list(conversation_ids)
    found: dict[int, list[LabelPayload]] = defaultdict(list)
    if not ids:
        return found
    rows = ConversationLabel.objects.filter(conversation_id__any=ids).values_list(
        "conversation_id", "label_id", "label__name", "label__colour"
    )
    for conversation_id, label_id, name, colour in rows:
        found[conversation_id].append({"id": label_id, "name": name, "colour": colour})
    for labels in found.values():
        labels.sort(key=label_order)
    return found


def _label_links() -> Prefetch:
    return Prefetch("label_links", queryset=ConversationLabel.objects.select_related("label"))


def number_labels(*, numbers: Iterable[BusinessNumber]) -> QuerySet[Label]:
    """The labels of these numbers (the ones a user sees), by name."""
    return Label.objects.filter(number__in=[number.pk for number in numbers]).order_by("name", "pk")


def canned_replies_for(*, user, conversation: Conversation, search: str = "") -> QuerySet[CannedReply]:
    """What the composer offers in this conversation: the user's own canned replies and its number's, by
    shortcut (the user's own first when both have one); ``search``: shortcuts starting with it."""
    replies = CannedReply.objects.filter(Q(owner=user) | Q(number_id=conversation.number_id))
    search = search.strip().lstrip("/").lower()
    if search:
        replies = replies.filter(shortcut__startswith=search)
    return replies.order_by("shortcut", F("number_id").asc(nulls_first=True), "pk")


def manageable_canned_replies(*, user) -> QuerySet[CannedReply]:
    """The canned replies the user looks after: their own, and those of the numbers they see (a supervisor edits
    those, an agent reads them), with the number, by scope and shortcut."""
    replies = CannedReply.objects.filter(Q(owner=user) | Q(number__in=visible_numbers(user=user)))
    return replies.select_related("number").order_by(F("number_id").asc(nulls_first=True), "shortcut", "pk")


def mentionable_members(*, number: BusinessNumber) -> QuerySet:
    """Who a note in the number's conversations may mention (``@username``): its active members, by username."""
    return (
        get_user_model()
        .objects.filter(number_memberships__number=number, is_active=True)
        .order_by("username")
        .distinct()
    )


def conversation_notes(*, conversation: Conversation) -> QuerySet[ConversationNote]:
    """The thread's private notes, oldest first, with their authors and mentions (``snapshots.note_snapshot``)."""
    return conversation.notes.select_related("author").prefetch_related("mentions").order_by("created_at", "id")


def notifications_for(*, user) -> QuerySet[Notification]:
    """The user's notifications, newest first, of the numbers they may see now: someone who left a number no
    longer sees what was said there."""
    numbers = visible_numbers(user=user)
    return (
        Notification.objects.filter(Q(conversation__number__in=numbers) | Q(alert__number__in=numbers), recipient=user)
        .select_related("actor", "note", "conversation__contact", "alert__template")
        .order_by("-created_at", "-id")
    )


def unread_notification_count(*, user) -> int:
    return notifications_for(user=user).filter(read_at__isnull=True).count()


# --- the Numbers page: a number's health --------------------------------------------------------------

# Quality as a number, for the chart and /metrics: higher is better; 0 when Meta has not rated it. A legacy
# FLAGGED quality event means the rating dropped to low, UNFLAGGED that it left low.
QUALITY_SCORE = {"GREEN": 3, "YELLOW": 2, "RED": 1, "FLAGGED": 1, "UNFLAGGED": 2}
# Template statuses after which the template cannot be sent.
STOPPED_TEMPLATE_STATUSES = ("PAUSED", "DISABLED", "REJECTED")
QUALITY_HISTORY_DAYS = 30
QUALITY_HISTORY_POINTS = 60


def _supervises(user) -> Exists:
    """The user is a supervisor of the number (``OuterRef("pk")``)."""
    return Exists(NumberMembership.objects.filter(number=OuterRef("pk"), user=user, role=MemberRole.SUPERVISOR))


def supervised_numbers(*, user) -> QuerySet[BusinessNumber]:
    """The numbers whose health the user may see: those they supervise (superusers: every number)."""
    numbers = visible_numbers(user=user)
    if user.is_superuser:
        return numbers
    return numbers.filter(_supervises(user))


def with_supervision(numbers: QuerySet[BusinessNumber], *, user) -> QuerySet[BusinessNumber]:
    """``numbers`` with ``supervised`` (the user supervises it) and ``alerted`` (it has an open alert), in the same
    query: the inbox links the Numbers page and reads banners only when there are some."""
    numbers = numbers.annotate(
        alerted=Exists(NumberAlert.objects.filter(number=OuterRef("pk"), resolved_at__isnull=True))
    )
    if user.is_superuser:
        return numbers.annotate(supervised=Value(True))
    return numbers.annotate(supervised=_supervises(user))


def open_alerts(*, numbers: QuerySet[BusinessNumber] | Iterable[int]) -> QuerySet[NumberAlert]:
    """The numbers' alerts still open, oldest first: one query (the inbox's banners)."""
    return (
        NumberAlert.objects.filter(number__in=numbers, resolved_at__isnull=True)
        .select_related("template")
        .order_by("raised_at", "id")
    )


def _quality_value(change: AccountChange) -> str:
    values = change.values
    return str(values.get("quality_rating") or values.get("event") or "")


def number_health(*, numbers: QuerySet[BusinessNumber], now=None) -> list[dict]:
    """Each number's health, as the Numbers page and ``GET /api/numbers/<id>/health/`` show it, in six queries
    whatever the count: the numbers with their backlog and last messages, then their accounts, templates,
    quality history, open alerts and the portfolios' use of their messaging limit.

    The limit's use is the limit's own count (``portfolio_usage``)."""
    now = now or timezone.now()
    # conversations/ never imports webhooks/ (layers run the other way): the model through the history's link.
    webhook_events = AccountChange._meta.get_field("webhook_event").related_model
    backlog = (
        webhook_events.objects.filter(state="pending", phone_number_id=OuterRef("phone_number_id"))
        .order_by()
        .values("phone_number_id")
        .annotate(count=Count("pk"))
        .values("count")
    )
    rows = list(
        numbers.annotate(
            webhook_backlog=Coalesce(Subquery(backlog), 0),
            last_inbound=Subquery(
                Conversation.objects.filter(number=OuterRef("pk"), last_inbound_at__isnull=False)
                .order_by("-last_inbound_at")
                .values("last_inbound_at")[:1]
            ),
            last_outbound=Subquery(
                Message.objects.filter(conversation__number=OuterRef("pk"), direction=Direction.OUTBOUND)
                .order_by("-timestamp")
                .values("timestamp")[:1]
            ),
        )
    )
    ids = [number.pk for number in rows]
    wabas = sorted({number.waba_id for number in rows if number.waba_id})
    accounts = {account.waba_id: account for account in BusinessAccount.objects.filter(waba_id__in=wabas)}
    templates: dict[str, list[MessageTemplate]] = defaultdict(list)
    for template in MessageTemplate.objects.filter(waba_id__in=wabas).order_by("name", "language", "id"):
        templates[template.waba_id].append(template)
    history: dict[int, list[dict]] = defaultdict(list)
    changes = AccountChange.objects.filter(
        Q(field="phone_number_quality_update") | Q(values__has_key="quality_rating"),
        number__in=ids,
        applied=True,
        created_at__gte=now - timedelta(days=QUALITY_HISTORY_DAYS),
    ).order_by("created_at", "id")
    for change in changes.only("number_id", "values", "occurred_at", "created_at"):
        value = _quality_value(change)
        if value in QUALITY_SCORE:
            at = change.occurred_at or change.created_at
            history[change.number_id].append({"at": at.isoformat(), "quality": value, "score": QUALITY_SCORE[value]})
    alerts: dict[int, list] = defaultdict(list)
    for alert in open_alerts(numbers=ids):
        alerts[alert.number_id].append(alert_snapshot(alert))
    used = portfolio_usage(waba_ids=wabas, now=now)
    return [
        _health_of(
            number,
            account=accounts.get(number.waba_id),
            templates=templates.get(number.waba_id, []),
            history=history[number.pk][-QUALITY_HISTORY_POINTS:],
            alerts=alerts[number.pk],
            used=used.get(number.waba_id, 0),
        )
        for number in rows
    ]


def messaging_limit_tier(*, account: BusinessAccount | None, number: BusinessNumber) -> str:
    """The messaging limit a number's sends count against: the portfolio's, else what the number last said (the
    poll of Graph API v23 and older, and the legacy quality events, know only the number's ``messaging_limit_tier``)."""
    return (account.messaging_limit if account else "") or number.messaging_limit_tier


def phone_app_text(number: BusinessNumber) -> str:
    """Whether the WhatsApp Business app answers on the number too (Coexistence), as the Numbers page says it."""
    if not number.on_business_app:
        return "No: the API only"
    # Meta holds a Coexistence number to 20 messages a second, whatever its throughput level (docs/meta.md §3.7).
    return "Yes: the WhatsApp Business app answers too (20 messages a second at most)"


def history_import_text(number: BusinessNumber) -> str:
    """Where the import of the phone app's past chats stands, as the Numbers page says it."""
    if number.history_declined:
        return f"Declined by the business (Meta: {number.history_declined})"
    if number.history_progress is None:
        return "None" if not number.on_business_app else "Not started"
    state = "Imported" if number.history_progress >= 100 else "Importing"
    return f"{state}: {number.history_progress} % ({number.history_messages} messages)"


def _health_of(number, *, account, templates, history, alerts, used) -> dict:
    tier = messaging_limit_tier(account=account, number=number)
    counts: dict[str, int] = defaultdict(int)
    for template in templates:
        counts[template.status or "UNKNOWN"] += 1
    restrictions = account.restrictions if account else []
    return {
        "id": number.pk,
        "phone_number_id": number.phone_number_id,
        "name": number.name,
        "display_phone_number": number.display_phone_number,
        "verified_name": number.verified_name,
        "meta_status": number.meta_status,
        "name_status": number.name_status,
        "quality": {
            "rating": number.quality_rating,
            "event": number.quality_event,
            "score": QUALITY_SCORE.get(number.quality_rating, 0),
            "updated_at": number.health_updated_at.isoformat() if number.health_updated_at else None,
            "history": history,
        },
        "messaging_limit": {
            "tier": tier,
            "limit": limit_of(tier),
            "used_24h": used,
        },
        "throughput_level": number.throughput_level,
        "phone_app": phone_app_text(number),
        "history": history_import_text(number),
        "account": {
            "waba_id": number.waba_id,
            "status_event": account.status_event if account else "",
            "restricted": bool(restrictions),
            "ban_state": account.ban_state if account else "",
            "review_decision": account.review_decision if account else "",
        },
        "webhook_backlog": number.webhook_backlog,
        "last_inbound_at": number.last_inbound.isoformat() if number.last_inbound else None,
        "last_outbound_at": number.last_outbound.isoformat() if number.last_outbound else None,
        "templates": {
            "counts": dict(sorted(counts.items())),
            "items": [
                {
                    "id": template.pk,
                    "name": template.name,
                    "language": template.language,
                    "status": template.status,
                    "category": template.category,
                    "quality_score": template.quality_score,
                    "stopped": template.status.upper() in STOPPED_TEMPLATE_STATUSES,
                }
                for template in templates
            ],
        },
        "alerts": alerts,
    }


# --- the portfolio's messaging limit ------------------------------------------------------------------

PORTFOLIO_USAGE_WINDOW = timedelta(hours=24)


def portfolio_usage(*, waba_ids: Iterable[str], now=None) -> dict[str, int]:
    """The use of each account's (portfolio's) messaging limit: the distinct customers reached in the rolling
    24 hours by business-initiated messages of any of its numbers (templates sent while the customer service
    window was closed: Meta's rule, docs/meta.md §10.6), failed sends left out. One query; an account with none
    is absent."""
    since = (now or timezone.now()) - PORTFOLIO_USAGE_WINDOW
    return dict(
        Message.objects.filter(
            business_initiated=True, timestamp__gte=since, conversation__number__waba_id__in=list(waba_ids)
        )
        .exclude(status=MessageStatus.FAILED)
        .order_by()
        .values("conversation__number__waba_id")
        .annotate(customers=Count("conversation__contact_id", distinct=True))
        .values_list("conversation__number__waba_id", "customers")
    )


def number_templates(*, number: BusinessNumber) -> QuerySet[MessageTemplate]:
    """Every template of the number's account, any status, by name then language (none without an account)."""
    if not number.waba_id:
        return MessageTemplate.objects.none()
    return MessageTemplate.objects.filter(waba_id=number.waba_id).order_by("name", "language")


# --- costs -------------------------------------------------------------------------------------------


def _markets(phone: str) -> tuple[str, str]:
    """The customer's ISO country and calling code (``("BR", "+55")``) from their number; empty when unknown."""
    try:
        parsed = phonenumbers.parse("+" + phone.lstrip("+"))
    except phonenumbers.NumberParseException:
        return "", ""
    return phonenumbers.region_code_for_number(parsed) or "", f"+{parsed.country_code}"


def number_costs(*, number: BusinessNumber, month: date) -> dict:
    """The number's billable messages of the month (UTC) priced with the rate card: by category and by day, each
    with its count and amount, and those without a rate for their country and category counted apart, never
    priced at 0. Two queries however many messages: the messages, then the rates of the month."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    rows = Message.objects.filter(
        conversation__number=number, direction=Direction.OUTBOUND, timestamp__gte=start, timestamp__lt=end
    ).filter(Q(pricing_type__iexact="regular") | Q(pricing_type="", pricing_billable=True))
    rows = rows.values_list(
        "timestamp", "pricing_category", "conversation__contact__phone", "conversation__contact__wa_id"
    )
    # Each market's and category's rates, the newest first: a message takes the first valid on its day.
    rates: dict[tuple[str, str], list[RateCardEntry]] = defaultdict(list)
    for rate in (
        RateCardEntry.objects.filter(valid_from__lt=end.date())
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=start.date()))
        .order_by("-valid_from")
    ):
        rates[rate.market, rate.category].append(rate)
    markets_of = functools.cache(_markets)  # a customer's number parsed once, however many messages

    def rate_for(market: str, category: str, day: date) -> RateCardEntry | None:
        return next(
            (
                r
                for r in rates.get((market, category), ())
                if r.valid_from <= day and (r.valid_until is None or day < r.valid_until)
            ),
            None,
        )

    cells: dict[tuple[date, str], dict] = {}
    unpriced: dict[str, int] = defaultdict(int)
    currencies: set[str] = set()
    for timestamp, category, phone, wa_id in rows:
        category = (category or "").lower() or "unknown"
        day = timestamp.astimezone(UTC).date()
        country, code = markets_of(phone or wa_id or "")
        rate = (rate_for(country, category, day) if country else None) or (
            rate_for(code, category, day) if code else None
        )
        if rate is None:
            unpriced[category] += 1
            continue
        currencies.add(rate.currency)
        cell = cells.setdefault((day, category), {"day": day, "category": category, "count": 0, "amount": Decimal(0)})
        cell["count"] += 1
        cell["amount"] += rate.price
    by_category: dict[str, dict] = {}
    by_day: dict[date, dict] = {}
    for (day, category), cell in sorted(cells.items()):
        for key, group in ((category, by_category), (day, by_day)):
            total = group.setdefault(key, {"count": 0, "amount": Decimal(0)})
            total["count"] += cell["count"]
            total["amount"] += cell["amount"]
    return {
        "number_id": number.pk,
        "month": f"{month.year:04d}-{month.month:02d}",
        "currency": ", ".join(sorted(currencies)),
        "total": {
            "count": sum(c["count"] for c in cells.values()),
            "amount": sum((c["amount"] for c in cells.values()), Decimal(0)),
        },
        "by_category": [{"category": k, **v} for k, v in sorted(by_category.items())],
        "by_day": [{"day": k, **v} for k, v in sorted(by_day.items())],
        "rows": [cells[k] for k in sorted(cells)],
        "no_rate": [{"category": k, "count": v} for k, v in sorted(unpriced.items())],
    }


def marketing_preference(*, conversation: Conversation) -> MarketingPreference | None:
    """The conversation's contact's marketing choice on its number, with who marked it (none: never said)."""
    return (
        MarketingPreference.objects.filter(number_id=conversation.number_id, contact_id=conversation.contact_id)
        .select_related("changed_by")
        .first()
    )

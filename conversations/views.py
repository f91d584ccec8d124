"""The inbox pages: server-rendered shells carrying their initial data; static/js keeps them live."""

from urllib.parse import parse_qs, urlparse

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from rest_framework.request import Request

from conversations import apis, selectors
from conversations.alerts import alert_snapshot
from conversations.apis import ConversationCursor, conversation_item
from conversations.models import ConversationStatus, MemberRole
from conversations.search import message_hit, search_terms
from conversations.search_apis import hits_page
from conversations.services.media import INLINE_MEDIA_TYPES, base_mime_type
from conversations.services.template_management import EDITABLE_STATUSES
from conversations.services.workflow import member_role
from conversations.snapshots import activity_snapshot, label_snapshot, message_snapshot, number_snapshot
from conversations.template_apis import managed_item
from realtime.selectors import latest_event_id

INBOX_PAGE_SIZE = 100
UNAVAILABLE_CONVERSATION = (
    "That conversation is not available: it was merged into another, or you no longer see its number."
)


@login_required
def inbox_view(request, conversation_id: int | None = None):
    workflow_filters = apis.workflow_filters(request.GET)
    status = request.GET.get("status", ConversationStatus.OPEN)  # open unless asked otherwise; "any": every status
    filters = {
        "filter": "unread" if request.GET.get("filter") == "unread" else "all",
        "number": request.GET.get("number", ""),
        "q": request.GET.get("q", "").strip()[:100],
        "view": workflow_filters["view"],
        "status": status if status in ConversationStatus.values else ANY_STATUS,
        "assignee": workflow_filters["assignee_id"],
        "label": apis.label_filter(request.GET),
    }
    status_filter = None if filters["status"] == ANY_STATUS else filters["status"]
    # Read the event log's head before the data: events after it are replayed over the socket, so
    # nothing that happens while the page renders is lost (re-applying an event is harmless).
    last_event_id = latest_event_id()
    conversation = None
    messages: list = []
    activities: list = []
    has_more = has_newer = False
    hit = None
    if conversation_id is not None:
        conversation = selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)
        if conversation is None:
            # Merged into another, on a number this user no longer sees (the open tab reloads when access
            # changes), or never there: the inbox, saying so, rather than an error page. Nothing tells which.
            flash.info(request, UNAVAILABLE_CONVERSATION)
            query = request.GET.urlencode()
            return redirect(f"{reverse('inbox:list')}{'?' + query if query else ''}")
        # A GET changes nothing (a link from another site could trigger it): the page marks the
        # conversation read with a POST once it shows it (static/js/app.js), which also sends the receipt.
        hit = _message_to_open(request, conversation)
        if hit is None:
            page, has_more = selectors.messages_before(conversation=conversation)
        else:
            page, has_more, has_newer = selectors.messages_around(conversation=conversation, message=hit)
        reactions = selectors.reactions_by_wamid(wamids=[m.wamid for m in page])
        messages = [message_snapshot(m, reactions.get(m.wamid, ())) for m in page]
        activities = [
            activity_snapshot(a)
            for a in selectors.conversation_activities(
                conversation=conversation, since=page[0].timestamp if has_more and page else None
            )
        ]
    numbers = list(selectors.with_supervision(selectors.visible_numbers(user=request.user), user=request.user))
    # Who the list may be filtered by, and the reader's role on the open conversation's number (supervisors
    # assign anyone's): one query.
    members, role = selectors.team_of(
        numbers=numbers, user=request.user, number=conversation.number if conversation else None
    )
    labels = list(selectors.number_labels(numbers=numbers))
    conversations = selectors.conversation_list(
        user=request.user,
        numbers=numbers,
        phone_number_id=filters["number"] or None,
        unread_only=filters["filter"] == "unread",
        search=filters["q"],
        view=filters["view"],
        status=status_filter,
        assignee_id=filters["assignee"],
    )
    conversations = selectors.labelled(conversations, label_id=filters["label"])
    # The API's cursor pagination, so the list loads further pages from /api/conversations/ on scroll.
    paginator = ConversationCursor()
    paginator.page_size = INBOX_PAGE_SIZE
    page = paginator.paginate_queryset(conversations, Request(request))
    next_link = paginator.get_next_link()
    conversation_items = [conversation_item(c) for c in page]
    message_hits, message_hits_next = _message_hits(request, numbers=numbers, filters=filters)
    view_counts = selectors.inbox_totals(
        user=request.user, numbers=numbers, phone_number_id=filters["number"] or None, status=status_filter
    )
    # Meta's news that puts a number at risk, for every member: one query, only when there is some.
    alerted = [n.pk for n in numbers if n.alerted]
    alerts = [alert_snapshot(alert) for alert in selectors.open_alerts(numbers=alerted)] if alerted else []
    data = {
        "user": {"id": request.user.pk, "name": request.user.get_full_name() or request.user.get_username()},
        "lastEventId": last_event_id,
        "filters": filters,
        "numbers": [number_snapshot(n) for n in numbers],
        "conversations": conversation_items,
        "unreadTotal": view_counts.pop("unread_total"),
        "nextCursor": parse_qs(urlparse(next_link).query).get("cursor", [None])[0] if next_link else None,
        "conversation": open_conversation_item(
            user=request.user, numbers=numbers, conversation=conversation, listed=conversation_items
        ),
        "messages": messages,
        "activities": activities,
        "hasMore": has_more,
        "hasNewer": has_newer,
        "focusMessageId": hit.pk if hit is not None else None,
        "messageHits": message_hits,
        "messageHitsNext": message_hits_next,
        "labels": [{**label_snapshot(label), "number_id": label.number_id} for label in labels],
        "role": role,
        "viewCounts": view_counts,
        "alerts": alerts,
    }
    return render(
        request,
        "conversations/inbox.html",
        {
            "alerts": alerts,
            "supervises": request.user.is_superuser or any(number.supervised for number in numbers),
            "data": data,
            "numbers": numbers,
            "filters": filters,
            "conversation": conversation,
            "labels": labels,
            "views": [(v, VIEW_LABELS[v], data["viewCounts"][v], _view_query(request, v)) for v in selectors.VIEWS],
            "statuses": [(ConversationStatus.OPEN, "Open"), *STATUS_FILTERS],
            "members": members,
        },
    )


def _message_to_open(request, conversation):
    """The message of ``?message=<id>`` (a search hit) when the conversation holds it, else ``None``."""
    message_id = request.GET.get("message", "")
    if not message_id.isdigit() or len(message_id) > 18:
        return None
    return selectors.thread_message(conversation=conversation, message_id=int(message_id))


def _message_hits(request, *, numbers, filters) -> tuple[list[dict], str | None]:
    """The first page of the messages the list's search finds (none without a search), and the API's cursor for the
    next: one query."""
    terms = search_terms(filters["q"])
    if not terms:
        return [], None
    page, paginator = hits_page(
        Request(request),
        user=request.user,
        search=filters["q"],
        numbers=numbers,
        phone_number_id=filters["number"] or None,
    )
    next_link = paginator.get_next_link()
    cursor = parse_qs(urlparse(next_link).query).get("cursor", [None])[0] if next_link else None
    return [message_hit(m, terms) for m in page], cursor


VIEW_LABELS = {selectors.VIEW_MINE: "Mine", selectors.VIEW_UNASSIGNED: "Unassigned", selectors.VIEW_ALL: "All"}
ANY_STATUS = "any"
STATUS_FILTERS = [
    (ConversationStatus.PENDING, "Pending"),
    (ConversationStatus.SNOOZED, "Snoozed"),
    (ConversationStatus.RESOLVED, "Resolved"),
    (ANY_STATUS, "Any status"),
]


def _view_query(request, view: str) -> str:
    """The list's address for another view, keeping its other filters (not the open conversation)."""
    query = request.GET.copy()
    query.pop("view", None)
    if view != selectors.VIEW_ALL:
        query["view"] = view
    return f"{reverse('inbox:list')}{'?' + query.urlencode() if query else ''}"


def open_conversation_item(*, user, numbers, conversation, listed: list[dict]) -> dict | None:
    """The open conversation as the list gives it (this user's unread count and its newest message id),
    before the page marks it read: its row in ``listed`` when the list's page holds it, else read again."""
    if conversation is None:
        return None
    for item in listed:
        if item["id"] == conversation.pk:
            return item
    listed = selectors.conversation_list(user=user, numbers=numbers).filter(pk=conversation.pk)
    listed = selectors.labelled(listed).first()
    return conversation_item(listed) if listed is not None else None


@login_required
def media_file_view(request, message_id: int):
    """A message's media, for staff who may see its conversation only; never a public URL."""
    media = selectors.media_for_user(user=request.user, message_id=message_id)
    if media is None:
        raise Http404
    # The type is the customer's word: only allow-listed raster, audio and video types show in the page.
    inline = base_mime_type(media.mime_type) in INLINE_MEDIA_TYPES
    response = FileResponse(
        media.file.open("rb"),
        content_type=base_mime_type(media.mime_type) if inline else media.mime_type or "application/octet-stream",
        as_attachment=not inline,
        filename=media.filename or media.file.name.rsplit("/", 1)[-1],
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@login_required
def numbers_view(request):
    """The Numbers page: the health of each number the user supervises; static/js/numbers.js keeps it live."""
    last_event_id = latest_event_id()
    if not (request.user.is_superuser or selectors.supervised_numbers(user=request.user).exists()):
        raise PermissionDenied
    health = selectors.number_health(numbers=selectors.supervised_numbers(user=request.user))
    for card in health:
        card["chart"] = quality_chart(card["quality"]["history"])
    return render(
        request,
        "conversations/numbers.html",
        {"cards": health, "data": {"numbers": health, "lastEventId": last_event_id}},
    )


# The quality chart's box (static/js/numbers.js draws the same from the API's history).
CHART_WIDTH, CHART_HEIGHT = 160, 40


def quality_chart(history: list[dict]) -> str:
    """The history as an SVG polyline's points: time left to right, GREEN at the top, RED at the bottom."""
    if not history:
        return ""
    step = CHART_WIDTH / max(1, len(history) - 1)
    return " ".join(
        f"{round(i * step, 1)},{round(CHART_HEIGHT - (point['score'] - 1) / 2 * (CHART_HEIGHT - 8) - 4, 1)}"
        for i, point in enumerate(history)
    )


@login_required
@ensure_csrf_cookie  # the page writes through the API, which takes Django's CSRF token from the cookie
def number_templates_view(request, number_id: int):
    """A number's Templates page for its supervisors (another number's: 404); static/js/templates-page.js
    lists, creates, edits and deletes through the templates API and keeps the rows live."""
    last_event_id = latest_event_id()
    number = selectors.visible_numbers(user=request.user).filter(pk=number_id).first()
    if number is None:
        raise Http404
    if member_role(user=request.user, number=number) != MemberRole.SUPERVISOR:
        raise PermissionDenied
    templates = [managed_item(t) for t in selectors.number_templates(number=number)]
    return render(
        request,
        "conversations/number_templates.html",
        {
            "number": number,
            "templates": templates,
            "data": {
                "numberId": number.pk,
                "templates": templates,
                "editable": sorted(EDITABLE_STATUSES),
                "lastEventId": last_event_id,
            },
        },
    )

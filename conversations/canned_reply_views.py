"""The Canned replies page: each member's own ready answers and their numbers' (which the numbers' supervisors
write), listed, added, changed and deleted with plain forms. A thin view over ``services/canned_replies.py``; the
composer offers what is kept here when "/" is typed."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render

from conversations import selectors
from conversations.services.canned_replies import create_canned_reply, delete_canned_reply, update_canned_reply
from conversations.services.errors import WorkflowRefused

ACTIONS = ("create", "update", "delete")


@login_required
def canned_replies_view(request):
    """``GET``: the page. ``POST`` (``action``: create, update or delete): the change, then the page again
    (303), or the page with the refusal beside its form (its status: 400, or 403 for a number's reply an agent
    tried to change)."""
    if request.method == "POST":
        try:
            done = _change(request)
        except WorkflowRefused as refusal:
            return _page(request, refused=refusal, status=refusal.status)
        flash.success(request, done)
        return redirect("canned_replies_page", permanent=False)
    return _page(request)


def _change(request) -> str:
    """Carry out the form's action; what the page says it did."""
    action = request.POST.get("action")
    if action not in ACTIONS:
        raise WorkflowRefused("invalid", "Unknown action.", field="action")
    shortcut, text = request.POST.get("shortcut", ""), request.POST.get("text", "")
    if action == "create":
        scope = request.POST.get("scope", "")
        number = None
        if scope:
            number = selectors.visible_numbers(user=request.user).filter(pk=_id_of(scope)).first()
            if number is None:
                raise WorkflowRefused("unknown_number", "No such number.", field="scope")
        reply = create_canned_reply(user=request.user, shortcut=shortcut, text=text, number=number)
        return f"Canned reply /{reply.shortcut} added."
    reply = selectors.manageable_canned_replies(user=request.user).filter(pk=_id_of(request.POST.get("reply", "")))
    reply = reply.first()
    if reply is None:
        raise Http404
    if action == "delete":
        delete_canned_reply(user=request.user, canned_reply=reply)
        return f"Canned reply /{reply.shortcut} deleted."
    update_canned_reply(user=request.user, canned_reply=reply, shortcut=shortcut, text=text)
    return f"Canned reply /{reply.shortcut} saved."


def _id_of(text: str) -> int:
    """A posted id, or 0 (no row) for anything that is not one a bigint holds."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else 0


def _page(request, *, refused: WorkflowRefused | None = None, status: int = 200):
    numbers = list(selectors.with_supervision(selectors.visible_numbers(user=request.user), user=request.user))
    replies = list(selectors.manageable_canned_replies(user=request.user))
    sections = [{"number": None, "editable": True, "replies": [r for r in replies if r.number_id is None]}]
    sections += [
        {"number": number, "editable": number.supervised, "replies": [r for r in replies if r.number_id == number.pk]}
        for number in numbers
    ]
    # The form a refusal came from shows it, with what was typed.
    failed = None
    if refused is not None:
        failed = {
            "reply": request.POST.get("reply", ""),
            "action": request.POST.get("action", ""),
            "field": refused.field,
            "detail": refused.detail,
            "shortcut": request.POST.get("shortcut", ""),
            "text": request.POST.get("text", ""),
            "scope": request.POST.get("scope", ""),
        }
    context = {
        "sections": sections,
        "scopes": [number for number in numbers if number.supervised],
        "supervises": any(number.supervised for number in numbers),
        "failed": failed,
    }
    return render(request, "conversations/canned_replies.html", context, status=status)

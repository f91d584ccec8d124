"""Canned replies: a number's ready answers and each person's own, and the one rule that fills in their
placeholders, used by the composer (through the API) and by anything else that sends one."""

import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from conversations.models import SHORTCUT_PATTERN, BusinessNumber, CannedReply, Conversation
from conversations.services.errors import WorkflowRefused
from conversations.services.workflow import require_supervisor
from conversations.snapshots import person_snapshot

PLACEHOLDER = re.compile(r"\{\{\s*(contact_name|agent_name)\s*\}\}")


def render_canned_reply(*, canned_reply: CannedReply, conversation: Conversation, user) -> str:
    """The reply's text for this conversation, written by ``user``: ``{{contact_name}}`` is the contact's name
    (their phone when they gave none), ``{{agent_name}}`` the user's. Needs ``conversation.contact`` loaded."""
    contact = conversation.contact
    values = {
        "contact_name": contact.display_name,
        "agent_name": person_snapshot(user)["name"],
    }
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], canned_reply.text)


@transaction.atomic
def create_canned_reply(*, user, shortcut: str, text: str, number: BusinessNumber | None = None) -> CannedReply:
    """A personal canned reply (no ``number``), or the number's (its supervisors only: 403). A shortcut taken in
    that scope is a 400 on ``shortcut`` (the unique constraints decide)."""
    if number is not None:
        require_supervisor(user=user, number=number, to="create its canned replies")
    reply = CannedReply(number=number, owner=None if number is not None else user)
    return _save(reply, shortcut=shortcut, text=text)


@transaction.atomic
def update_canned_reply(*, user, canned_reply: CannedReply, shortcut: str, text: str) -> CannedReply:
    """A new shortcut and text for one of the user's own canned replies, or a number's (its supervisors only)."""
    require_may_manage(user=user, canned_reply=canned_reply)
    return _save(canned_reply, shortcut=shortcut, text=text)


@transaction.atomic
def delete_canned_reply(*, user, canned_reply: CannedReply) -> None:
    require_may_manage(user=user, canned_reply=canned_reply)
    canned_reply.delete()


def require_may_manage(*, user, canned_reply: CannedReply) -> None:
    """Its owner manages a personal canned reply, a supervisor of its number a number's (403 otherwise). Who may
    not even see it never reaches here: ``selectors.manageable_canned_replies`` answers them 404."""
    if canned_reply.number_id is not None:
        require_supervisor(user=user, number=canned_reply.number, to="change its canned replies")
    elif canned_reply.owner_id != user.pk:
        raise WorkflowRefused("not_allowed", "Only its owner can change a personal canned reply.", status=403)


def _save(reply: CannedReply, *, shortcut: str, text: str) -> CannedReply:
    """The reply with this shortcut and text, validated and saved; a shortcut taken in its scope is a 400."""
    shortcut = shortcut.strip().lstrip("/").lower()
    if not re.match(SHORTCUT_PATTERN, shortcut):
        raise WorkflowRefused(
            "invalid_shortcut", "A shortcut is lower-case letters, digits, - and _ (at most 32).", field="shortcut"
        )
    if not text.strip():
        raise WorkflowRefused("blank_text", "A canned reply needs a text.", field="text")
    reply.shortcut, reply.text = shortcut, text
    try:
        reply.full_clean(validate_unique=False, validate_constraints=False)
        with transaction.atomic():
            reply.save()
    except ValidationError as error:
        raise WorkflowRefused("invalid", "; ".join(error.messages), field="text") from error
    except IntegrityError as error:
        scope = "this number" if reply.number_id is not None else "your own"
        raise WorkflowRefused(
            "shortcut_taken", f"There is a canned reply /{shortcut} of {scope} already.", field="shortcut"
        ) from error
    return reply

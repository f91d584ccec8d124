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
    shortcut = shortcut.strip().lstrip("/").lower()
    if not re.match(SHORTCUT_PATTERN, shortcut):
        raise WorkflowRefused(
            "invalid_shortcut", "A shortcut is lower-case letters, digits, - and _ (at most 32).", field="shortcut"
        )
    if not text.strip():
        raise WorkflowRefused("blank_text", "A canned reply needs a text.", field="text")
    reply = CannedReply(number=number, owner=None if number is not None else user, shortcut=shortcut, text=text)
    try:
        reply.full_clean(validate_unique=False, validate_constraints=False)
        with transaction.atomic():
            reply.save()
    except ValidationError as error:
        raise WorkflowRefused("invalid", "; ".join(error.messages), field="text") from error
    except IntegrityError as error:
        scope = "this number" if number is not None else "your own"
        raise WorkflowRefused(
            "shortcut_taken", f"There is a canned reply /{shortcut} of {scope} already.", field="shortcut"
        ) from error
    return reply

"""Private notes: a member's words to the team in a conversation's thread, never sent to the customer. A note is
a ``ConversationNote`` row, not a ``Message``: what sends takes a message id, and no note has one.

``@username`` in a note mentions that member of the conversation's number: each one mentioned (but the author)
is notified (``notifications.notify_mentioned``). An ``@word`` that names nobody on the number stays plain text,
as an e-mail address or a handle of someone else's does: a note is not refused for it, and nobody outside the
number is told anything."""

import re

from django.db import transaction

from conversations.models import NOTE_MAX_LENGTH, Conversation, ConversationNote
from conversations.selectors import mentionable_members
from conversations.services.errors import WorkflowRefused
from conversations.services.notifications import notify_mentioned
from conversations.snapshots import note_snapshot
from realtime import events
from realtime.publish import publish_events

# "@" not inside a word or an e-mail address, then what a Django username may hold.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.@+-]+)")
# Punctuation that ends a sentence after a mention ("thanks @ana.") rather than being part of the name.
TRAILING = ".,;:!?-"


def mentioned_usernames(body: str) -> set[str]:
    """The names written after "@" in the text, lower-cased, each also without the punctuation that may follow it."""
    names = set()
    for match in MENTION.finditer(body):
        name = match.group(1).lower()
        names.add(name)
        names.add(name.rstrip(TRAILING))
    return names - {""}


def _mentioned_members(*, conversation: Conversation, body: str) -> list:
    wanted = mentioned_usernames(body)
    if not wanted:
        return []
    return [user for user in mentionable_members(number=conversation.number) if user.get_username().lower() in wanted]


def note_body(body: str, *, max_length: int) -> str:
    """A note's text without its surrounding blanks; a blank one, or one over ``max_length`` characters, is a
    400 on ``body`` (notes in a thread and notes about a contact alike)."""
    body = body.strip()
    if not body:
        raise WorkflowRefused("blank_note", "A note needs some text.", field="body")
    if len(body) > max_length:
        raise WorkflowRefused(
            "note_too_long", f"A note is at most {max_length} characters ({len(body)} given).", field="body"
        )
    return body


@transaction.atomic
def create_note(*, user, conversation: Conversation, body: str) -> ConversationNote:
    """A private note by ``user`` (who sees the conversation) in its thread, and a notification for each member it
    mentions. An empty note, or one over ``NOTE_MAX_LENGTH`` characters, is a 400 on ``body``."""
    body = note_body(body, max_length=NOTE_MAX_LENGTH)
    note = ConversationNote.objects.create(conversation=conversation, author=user, body=body)
    mentioned = _mentioned_members(conversation=conversation, body=body)
    note.mentions.set(mentioned)
    # Read back as its snapshot needs it (author, mentions), for the event and the caller.
    note = ConversationNote.objects.select_related("author").prefetch_related("mentions").get(pk=note.pk)
    publish_events(
        number_id=conversation.number_id, events=[(events.CONVERSATION_NOTE_CREATED, {"note": note_snapshot(note)})]
    )
    notify_mentioned(note=note, conversation=conversation, recipients=[u for u in mentioned if u.pk != user.pk])
    return note

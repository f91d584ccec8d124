"""Contact notes: what a number's team writes down about a contact, beside every conversation with them. Anyone who
sees the conversation writes one; its author or a supervisor of the number edits or deletes it. Each change is a
``contact.notes_changed`` event to the number's team only, carrying the number's notes about that contact as they
are now, so every open contact panel shows the same list."""

from django.db import transaction
from django.utils import timezone

from conversations.models import CONTACT_NOTE_MAX_LENGTH, ContactNote, Conversation, MemberRole
from conversations.selectors import contact_notes
from conversations.services.errors import WorkflowRefused
from conversations.services.notes import note_body
from conversations.services.workflow import member_role
from conversations.snapshots import contact_note_snapshot
from realtime import events
from realtime.publish import publish_event


def _publish_notes(conversation: Conversation) -> None:
    payload = {
        "number_id": conversation.number_id,
        "contact_id": conversation.contact_id,
        "notes": [contact_note_snapshot(note) for note in contact_notes(conversation=conversation)],
    }
    publish_event(number_id=conversation.number_id, type=events.CONTACT_NOTES_CHANGED, payload=payload)


def _require_author_or_supervisor(*, user, conversation: Conversation, note: ContactNote, to: str) -> None:
    if note.author_id == user.pk:
        return
    if member_role(user=user, number=conversation.number) != MemberRole.SUPERVISOR:
        raise WorkflowRefused("not_allowed", f"Only its author or a supervisor of this number can {to}.", status=403)


@transaction.atomic
def add_contact_note(*, user, conversation: Conversation, body: str) -> ContactNote:
    """A note of the conversation's number about its contact (the caller checked that the user sees it)."""
    note = ContactNote.objects.create(
        number_id=conversation.number_id,
        contact_id=conversation.contact_id,
        author=user,
        body=note_body(body, max_length=CONTACT_NOTE_MAX_LENGTH),
    )
    _publish_notes(conversation)
    return note


@transaction.atomic
def edit_contact_note(*, user, conversation: Conversation, note: ContactNote, body: str) -> ContactNote:
    """A new text for one of the conversation's contact's notes (its author's or a supervisor's)."""
    _require_author_or_supervisor(user=user, conversation=conversation, note=note, to="edit this note")
    note.body = note_body(body, max_length=CONTACT_NOTE_MAX_LENGTH)
    note.updated_at = timezone.now()
    note.save(update_fields=["body", "updated_at"])
    _publish_notes(conversation)
    return note


@transaction.atomic
def delete_contact_note(*, user, conversation: Conversation, note: ContactNote) -> None:
    _require_author_or_supervisor(user=user, conversation=conversation, note=note, to="delete this note")
    note.delete()
    _publish_notes(conversation)

"""The REST API behind the contact panel: the open conversation's contact, their other conversations the reader may
see, and the notes the conversation's number keeps about them (write, edit, delete). Thin views over
``selectors`` and ``services/contact_notes.py``; refusals in the project's error shape, and a member of another
number gets 404 for the conversation as for everything of it."""

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import ContactOut, ErrorOut, NumberOut, PersonOut
from conversations import selectors
from conversations.apis import conversation_or_404
from conversations.models import CONTACT_NOTE_MAX_LENGTH, ConversationStatus
from conversations.services.contact_notes import add_contact_note, delete_contact_note, edit_contact_note
from conversations.snapshots import (
    contact_note_snapshot,
    contact_snapshot,
    conversation_state,
    conversation_summary,
    number_snapshot,
)
from conversations.workflow_apis import valid_data

ContactNoteOut = inline_serializer(
    "ContactNote",
    fields={
        "id": serializers.IntegerField(),
        "contact_id": serializers.IntegerField(),
        "author": PersonOut,
        "body": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
    },
)

ContactPanelOut = inline_serializer(
    "ContactPanel",
    fields={
        "contact": ContactOut,
        # The name the business saved them under in the phone app of this number (Coexistence), else "".
        "saved_as": serializers.CharField(allow_blank=True),
        "conversations": inline_serializer(
            "ContactConversation",
            fields={
                "id": serializers.IntegerField(),
                "number": NumberOut,
                "status": serializers.ChoiceField(choices=ConversationStatus.values),
                "snoozed_until": serializers.DateTimeField(allow_null=True),
                "assignee": PersonOut,
                "last_message_at": serializers.DateTimeField(),
                "last_message": serializers.CharField(allow_blank=True),
                "last_message_direction": serializers.CharField(allow_blank=True),
                "last_inbound_at": serializers.DateTimeField(allow_null=True),
            },
            many=True,
        ),
        "notes": ContactNoteOut.__class__(many=True),
    },
)


class ContactNoteInput(serializers.Serializer):
    body = serializers.CharField(max_length=CONTACT_NOTE_MAX_LENGTH)


class ContactPanelApi(APIView):
    """``GET``: the conversation's contact (and the name the phone app saved them under), their other conversations you may see (on your other numbers), newest
    first, and the notes of this conversation's number about them, oldest first."""

    @extend_schema(responses={200: ContactPanelOut, 401: ErrorOut, 404: ErrorOut})
    def get(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        others = selectors.contact_conversations(user=request.user, conversation=conversation)
        return Response(
            {
                "contact": contact_snapshot(conversation.contact),
                "saved_as": selectors.saved_name(conversation=conversation),
                "conversations": [
                    {
                        "id": other.pk,
                        "number": number_snapshot(other.number),
                        **conversation_state(other),
                        **conversation_summary(other),
                    }
                    for other in others
                ],
                "notes": [contact_note_snapshot(n) for n in selectors.contact_notes(conversation=conversation)],
            }
        )


class ContactNotesApi(APIView):
    """``POST {"body"}``: a note of the conversation's number about its contact."""

    @extend_schema(
        request=ContactNoteInput, responses={201: ContactNoteOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut}
    )
    def post(self, request, conversation_id: int):
        conversation = conversation_or_404(request, conversation_id)
        note = add_contact_note(
            user=request.user, conversation=conversation, body=valid_data(ContactNoteInput, request)["body"]
        )
        return Response(contact_note_snapshot(note), status=201)


class ContactNoteApi(APIView):
    """``PATCH {"body"}``: a new text; ``DELETE``: the note goes. Its author's or a supervisor's (else 403)."""

    def _note(self, request, conversation_id: int, note_id: int):
        conversation = conversation_or_404(request, conversation_id)
        note = selectors.contact_note_for(conversation=conversation, note_id=note_id)
        if note is None:
            raise Http404
        return conversation, note

    @extend_schema(
        request=ContactNoteInput,
        responses={200: ContactNoteOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    )
    def patch(self, request, conversation_id: int, note_id: int):
        conversation, note = self._note(request, conversation_id, note_id)
        body = valid_data(ContactNoteInput, request)["body"]
        note = edit_contact_note(user=request.user, conversation=conversation, note=note, body=body)
        return Response(contact_note_snapshot(note))

    @extend_schema(responses={204: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut})
    def delete(self, request, conversation_id: int, note_id: int):
        conversation, note = self._note(request, conversation_id, note_id)
        delete_contact_note(user=request.user, conversation=conversation, note=note)
        return Response(status=204)

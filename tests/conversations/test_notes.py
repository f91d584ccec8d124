"""Private notes: written by anyone who sees the conversation, shown in its thread, never sent to WhatsApp;
``@username`` mentions a member of the number, who is notified."""

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from conversations.models import NOTE_MAX_LENGTH, ConversationNote, Message, Notification
from conversations.services.notes import create_note, mentioned_usernames
from realtime.models import Event
from tests.conversations.conftest import graph_requests
from tests.conversations.team import as_user
from tests.factories import ContactFactory, ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(number):
    """The customer wrote a minute ago: a reply could be sent now."""
    contact = ContactFactory(wa_id="447700900462")
    return ConversationFactory(number=number, contact=contact, last_inbound_at=timezone.now() - timedelta(minutes=1))


def notes_url(conversation) -> str:
    return f"/api/conversations/{conversation.pk}/notes/"


def test_a_note_is_in_the_thread_with_its_author_and_a_live_event(team, conversation):
    note = create_note(user=team["ana"], conversation=conversation, body="  Customer is a reseller, see CRM.  ")
    assert note.body == "Customer is a reseller, see CRM."
    listed = as_user(team["sue"]).get(notes_url(conversation)).json()["results"]
    assert [(n["body"], n["author"]["name"], n["mentions"]) for n in listed] == [
        ("Customer is a reseller, see CRM.", "Ana", [])
    ]
    [event] = Event.objects.filter(type="conversation.note_created")
    assert (event.number_id, event.user_id, event.payload["note"]["id"]) == (conversation.number_id, None, note.pk)


@pytest.mark.parametrize(
    ("body", "code"), [("", "blank_note"), ("   \n ", "blank_note"), ("x" * (NOTE_MAX_LENGTH + 1), "note_too_long")]
)
def test_an_empty_or_over_long_note_is_a_400_naming_the_body(team, conversation, body, code):
    response = as_user(team["ana"]).post(notes_url(conversation), {"body": body}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and list(error["fields"]) == ["body"]
    assert not ConversationNote.objects.exists()


def test_a_note_without_a_body_is_a_400_naming_the_body(team, conversation):
    response = as_user(team["ana"]).post(notes_url(conversation), {"text": "hello"}, format="json")
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["body"]


def test_a_note_of_the_longest_length_is_kept(team, conversation):
    response = as_user(team["ana"]).post(notes_url(conversation), {"body": "x" * NOTE_MAX_LENGTH}, format="json")
    assert response.status_code == 201


def test_the_database_refuses_an_over_long_note(conversation):
    with pytest.raises(IntegrityError):
        ConversationNote.objects.create(conversation=conversation, body="x" * (NOTE_MAX_LENGTH + 1))


def test_the_database_refuses_a_blank_note(conversation):
    with pytest.raises(IntegrityError):
        ConversationNote.objects.create(conversation=conversation, body="   ")


def test_a_member_of_another_number_neither_reads_nor_writes_notes(team, conversation):
    create_note(user=team["ana"], conversation=conversation, body="internal")
    olga = as_user(team["olga"])
    assert olga.get(notes_url(conversation)).status_code == 404
    assert olga.post(notes_url(conversation), {"body": "hi"}, format="json").status_code == 404
    assert olga.get(f"/api/conversations/{conversation.pk}/mentionable/").status_code == 404
    assert ConversationNote.objects.count() == 1


def test_a_superuser_writes_notes_on_any_number(conversation):
    boss = UserFactory(username="boss", is_superuser=True, is_staff=True)
    response = as_user(boss).post(notes_url(conversation), {"body": "checked"}, format="json")
    assert response.status_code == 201


# Everything a reply to the customer takes (text, media caption, reaction, template, the recipient): a note reads
# its body and nothing else.
EVERY_REPLY_FIELD = {
    "body": "Do not tell the customer: refund approved",
    "type": "text",
    "text": "Refund approved",
    "to": "447700900462",
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "reply_to": "wamid.abc",
    "caption": "a caption",
    "message": "wamid.abc",
    "emoji": "👍",
    "template": 1,
    "params": ["x"],
    "language": "en",
    "preview_url": True,
}


def test_no_note_reaches_the_graph_api_whatever_the_request_holds(
    meta_sandbox, team, conversation, django_capture_on_commit_callbacks
):
    client = as_user(team["ana"])
    with django_capture_on_commit_callbacks(execute=True):
        as_json = client.post(notes_url(conversation), EVERY_REPLY_FIELD, format="json")
        as_form = client.post(notes_url(conversation), {**EVERY_REPLY_FIELD, "params": "x"}, format="multipart")
    assert (as_json.status_code, as_form.status_code) == (201, 201)
    assert ConversationNote.objects.count() == 2
    assert not Message.objects.exists()
    assert graph_requests(meta_sandbox) == []
    # The same client's reply does reach Meta: the sandbox hears what the app sends.
    with django_capture_on_commit_callbacks(execute=True):
        reply = client.post(
            f"/api/conversations/{conversation.pk}/messages/", {"type": "text", "text": "Hi"}, format="json"
        )
    assert reply.status_code == 202
    assert len(graph_requests(meta_sandbox)) == 1


def test_mentions_name_members_by_username_and_ignore_everyone_else(team, number, conversation):
    ben = UserFactory(username="ben.k", first_name="Ben")
    number.members.add(ben)
    body = "@sue can you check? thanks @Ben.K. cc @olga, @nobody and support@ana.example"
    note = create_note(user=team["ana"], conversation=conversation, body=body)
    assert sorted(u.username for u in note.mentions.all()) == ["ben.k", "sue"]
    notified = Notification.objects.filter(note=note).values_list("recipient__username", "kind", "actor__username")
    assert sorted(notified) == [("ben.k", "mention", "ana"), ("sue", "mention", "ana")]


def test_mentioning_yourself_or_someone_twice_notifies_once_and_never_the_author(team, conversation):
    note = create_note(user=team["ana"], conversation=conversation, body="@ana @sue @sue @SUE")
    assert sorted(u.username for u in note.mentions.all()) == ["ana", "sue"]
    assert list(Notification.objects.values_list("recipient__username", flat=True)) == ["sue"]


def test_a_deactivated_member_is_not_mentioned(team, conversation):
    team["sue"].is_active = False
    team["sue"].save()
    note = create_note(user=team["ana"], conversation=conversation, body="@sue")
    assert not note.mentions.exists() and not Notification.objects.exists()


def test_the_mention_syntax():
    assert mentioned_usernames("hi @ana, and @Bob.") == {"ana", "bob", "bob."}
    assert mentioned_usernames("mail ana@example.com or @ alone") == set()


def test_the_composer_offers_the_numbers_active_members(team, conversation):
    response = as_user(team["ana"]).get(f"/api/conversations/{conversation.pk}/mentionable/")
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"id": team["ana"].pk, "name": "Ana", "username": "ana"},
        {"id": team["sue"].pk, "name": "Sue", "username": "sue"},
    ]


def test_the_api_answers_a_new_note_with_its_mentions(team, conversation):
    response = as_user(team["ana"]).post(notes_url(conversation), {"body": "@sue look"}, format="json")
    assert response.status_code == 201
    assert response.json()["mentions"] == [{"id": team["sue"].pk, "name": "Sue", "username": "sue"}]


def test_a_note_is_no_message_of_the_thread(team, conversation):
    create_note(user=team["ana"], conversation=conversation, body="internal")
    messages = as_user(team["ana"]).get(f"/api/conversations/{conversation.pk}/messages/").json()["results"]
    assert messages == []
    conversation.refresh_from_db()
    assert conversation.last_message_preview != "internal"

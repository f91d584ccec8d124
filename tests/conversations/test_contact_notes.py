"""The contact panel: the open conversation's contact, their other conversations the reader sees, and the notes a
number's team keeps about them (each number its own), written, edited and deleted live for the whole team."""

import pytest

from contacts.models import Contact
from conversations.models import ContactNote
from conversations.services.contact_notes import add_contact_note, delete_contact_note, edit_contact_note
from conversations.services.contacts import merge_contacts
from conversations.services.errors import WorkflowRefused
from realtime.models import Event
from tests.conversations.team import as_user, make_team
from tests.factories import BusinessNumberFactory, ContactFactory, ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(number):
    return make_team(number)


@pytest.fixture
def amara():
    return ContactFactory(profile_name="Amara Okafor", username="amara")


@pytest.fixture
def conversation(number, amara):
    return ConversationFactory(number=number, contact=amara)


def notes_on(client, conversation) -> list[str]:
    return [n["body"] for n in client.get(f"/api/conversations/{conversation.pk}/contact/").json()["notes"]]


def test_a_note_is_written_edited_and_deleted_each_a_live_event_to_the_numbers_team(people, conversation, number):
    ana = people["ana"]
    note = add_contact_note(user=ana, conversation=conversation, body="  Prefers calls after 5pm ")
    edit_contact_note(user=ana, conversation=conversation, note=note, body="Prefers calls after 6pm")
    delete_contact_note(user=people["sue"], conversation=conversation, note=note)  # a supervisor may
    changes = Event.objects.filter(type="contact.notes_changed").order_by("pk")
    assert {e.number_id for e in changes} == {number.pk}
    assert [[n["body"] for n in e.payload["notes"]] for e in changes] == [
        ["Prefers calls after 5pm"],
        ["Prefers calls after 6pm"],
        [],
    ]
    assert changes[0].payload["notes"][0]["author"] == {"id": ana.pk, "name": "Ana"}
    assert changes[0].payload["contact_id"] == conversation.contact_id


def test_only_its_author_or_a_supervisor_changes_a_note_and_a_blank_one_is_refused(people, conversation, number):
    note = add_contact_note(user=people["sue"], conversation=conversation, body="VIP")
    colleague = UserFactory(username="ben")
    number.members.add(colleague)
    with pytest.raises(WorkflowRefused) as refused:
        edit_contact_note(user=colleague, conversation=conversation, note=note, body="not VIP")
    assert refused.value.status == 403
    with pytest.raises(WorkflowRefused) as refused:
        add_contact_note(user=colleague, conversation=conversation, body="   ")
    assert (refused.value.code, refused.value.field) == ("blank_note", "body")
    assert list(ContactNote.objects.values_list("body", flat=True)) == ["VIP"]


def test_one_numbers_notes_are_never_shown_to_another_numbers_team(people, conversation, amara):
    elsewhere = BusinessNumberFactory()
    elsewhere.members.add(people["olga"])
    olgas = ConversationFactory(number=elsewhere, contact=amara)
    api = as_user(people["ana"])
    assert (
        api.post(f"/api/conversations/{conversation.pk}/contact/notes/", {"body": "Allergic to nuts"}).status_code
        == 201
    )
    assert notes_on(api, conversation) == ["Allergic to nuts"]
    olga = as_user(people["olga"])
    assert notes_on(olga, olgas) == []  # the same person, another number: not its notes
    note = ContactNote.objects.get()
    assert olga.get(f"/api/conversations/{conversation.pk}/contact/").status_code == 404
    assert olga.post(f"/api/conversations/{conversation.pk}/contact/notes/", {"body": "x"}).status_code == 404
    assert olga.patch(f"/api/conversations/{olgas.pk}/contact/notes/{note.pk}/", {"body": "x"}).status_code == 404
    assert olga.delete(f"/api/conversations/{olgas.pk}/contact/notes/{note.pk}/").status_code == 404
    assert ContactNote.objects.get().body == "Allergic to nuts"


def test_the_panel_lists_the_contacts_other_conversations_on_the_readers_numbers(people, conversation, amara):
    second = BusinessNumberFactory(display_phone_number="15550001111")
    second.members.add(people["ana"])
    other = ConversationFactory(number=second, contact=amara, status="resolved")
    ConversationFactory(number=BusinessNumberFactory(), contact=amara)  # a number Ana does not see
    ConversationFactory(number=conversation.number)  # someone else
    body = as_user(people["ana"]).get(f"/api/conversations/{conversation.pk}/contact/").json()
    assert body["contact"]["name"] == "Amara Okafor" and body["contact"]["username"] == "amara"
    assert [(c["id"], c["status"], c["number"]["display_phone_number"]) for c in body["conversations"]] == [
        (other.pk, "resolved", "15550001111")
    ]
    root = as_user(UserFactory(username="root", is_superuser=True))
    assert len(root.get(f"/api/conversations/{conversation.pk}/contact/").json()["conversations"]) == 2


def test_the_api_edits_and_deletes_in_the_error_shape(people, conversation):
    api = as_user(people["ana"])
    created = api.post(f"/api/conversations/{conversation.pk}/contact/notes/", {"body": "Speaks Yoruba"}).json()
    url = f"/api/conversations/{conversation.pk}/contact/notes/{created['id']}/"
    assert api.patch(url, {"body": "Speaks Yoruba and English"}).json()["body"] == "Speaks Yoruba and English"
    blank = api.patch(url, {"body": " "}, format="json")
    assert blank.status_code == 400 and blank.json()["error"]["fields"]["body"]
    assert as_user(people["sue"]).delete(url).status_code == 204
    assert api.delete(url).status_code == 404
    assert notes_on(api, conversation) == []


def test_a_merge_keeps_each_numbers_notes_on_the_kept_contact(people, conversation, amara, number):
    duplicate = ContactFactory(wa_id=None, user_id="US.1", profile_name="Amara")
    elsewhere = BusinessNumberFactory()
    theirs = ConversationFactory(number=elsewhere, contact=duplicate)
    add_contact_note(user=people["ana"], conversation=conversation, body="Ours")
    add_contact_note(user=UserFactory(is_superuser=True), conversation=theirs, body="Theirs")
    merge_contacts(keep=amara, duplicate=duplicate)
    assert not Contact.objects.filter(pk=duplicate.pk).exists()
    assert set(ContactNote.objects.values_list("contact_id", "number_id", "body")) == {
        (amara.pk, number.pk, "Ours"),
        (amara.pk, elsewhere.pk, "Theirs"),
    }

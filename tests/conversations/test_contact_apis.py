"""The contacts API: search by name or phone in any format, rename, merge duplicates."""

import pytest

from contacts.models import Contact
from conversations.models import Conversation, Message
from tests.factories import ContactFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def amara(number):
    contact = ContactFactory(wa_id="447700900461", phone="+447700900461", profile_name="Amara Okafor")
    ConversationFactory(number=number, contact=contact)
    return contact


@pytest.mark.parametrize(
    "query", ["amara", "OKAFOR", "+44 7700 900461", "07700 900461", "447700900461", "(0)7700-900461"]
)
def test_search_by_name_or_phone_in_any_format(api, amara, number, query):
    ConversationFactory(
        number=number, contact=ContactFactory(wa_id="5511987650042", phone="+5511987650042", profile_name="Bruno")
    )
    results = api.get("/api/contacts/", {"q": query}).json()["results"]
    assert [c["id"] for c in results] == [amara.pk]


def test_rename_and_back_to_the_whatsapp_name(api, amara):
    renamed = api.patch(f"/api/contacts/{amara.pk}/", {"name": "Amara (VIP)"}, format="json").json()
    assert renamed["name"] == "Amara (VIP)" and renamed["profile_name"] == "Amara Okafor"
    assert api.patch(f"/api/contacts/{amara.pk}/", {"name": ""}, format="json").json()["name"] == "Amara Okafor"


def test_merge_moves_the_duplicates_messages_into_one_conversation(api, amara, number):
    duplicate = ContactFactory(wa_id="4407700900461", phone="+4407700900461", profile_name="Amara O.")
    kept_conversation = Conversation.objects.get(contact=amara)
    MessageFactory(conversation=kept_conversation)
    MessageFactory.create_batch(2, conversation=ConversationFactory(number=number, contact=duplicate))
    response = api.post(f"/api/contacts/{amara.pk}/merge/", {"duplicate": duplicate.pk}, format="json")
    assert response.status_code == 200 and response.json()["id"] == amara.pk
    assert not Contact.objects.filter(pk=duplicate.pk).exists()
    assert Conversation.objects.filter(number=number).count() == 1
    assert Message.objects.filter(conversation=kept_conversation).count() == 3


def test_a_merge_tells_open_inboxes_which_conversation_went_into_which(api, staff, amara, number):
    from realtime.models import Event

    duplicate = ContactFactory(wa_id="4407700900461", phone="+4407700900461", profile_name="Amara O.")
    kept_conversation = Conversation.objects.get(contact=amara)
    gone = ConversationFactory(number=number, contact=duplicate)
    MessageFactory(conversation=gone)
    elsewhere = ConversationFactory(contact=duplicate)  # another number: only the duplicate talks there
    elsewhere.number.members.add(staff)  # merging needs every number either contact talks to
    after = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    assert api.post(f"/api/contacts/{amara.pk}/merge/", {"duplicate": duplicate.pk}, format="json").status_code == 200
    logged = {(e.type, e.number_id): e.payload for e in Event.objects.filter(id__gt=after)}
    assert logged.keys() == {("conversation.merged", number.pk), ("conversation.updated", elsewhere.number_id)}
    merged = logged[("conversation.merged", number.pk)]
    assert merged["conversation_id"] == gone.pk
    assert merged["into"]["id"] == kept_conversation.pk and merged["into"]["contact"]["id"] == amara.pk
    updated = logged[("conversation.updated", elsewhere.number_id)]["conversation"]
    assert updated["id"] == elsewhere.pk and updated["contact"]["id"] == amara.pk

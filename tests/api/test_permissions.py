"""Every API endpoint against every kind of caller: a member of the number, a staff member of another
number, a superuser, and an anonymous client. Members and superusers get the data; others get 404 for
objects (their existence is not revealed) or empty lists; anonymous callers get 401 in the stable shape."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.models import MessageTemplate
from tests.factories import BusinessNumberFactory, ContactFactory, ConversationFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(monkeypatch):
    monkeypatch.setattr("conversations.tasks.deliver_outbound_message_task.delay", lambda *args: None)
    monkeypatch.setattr("conversations.tasks.send_read_receipt_task.delay", lambda *args: None)
    number = BusinessNumberFactory()
    member = UserFactory(username="member")
    number.members.add(member)
    outsider = UserFactory(username="outsider")
    BusinessNumberFactory().members.add(outsider)
    conversation = ConversationFactory(
        number=number, contact=ContactFactory(), last_inbound_at=timezone.now() - timedelta(minutes=5)
    )
    message = MessageFactory(conversation=conversation)
    duplicate = ContactFactory()
    ConversationFactory(number=number, contact=duplicate)
    template = MessageTemplate.objects.create(
        waba_id=number.waba_id,
        name="hello",
        language="en_US",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Hi"}],
    )
    return {
        "number": number,
        "conversation": conversation,
        "message": message,
        "contact": conversation.contact,
        "duplicate": duplicate,
        "template": template,
        "users": {"member": member, "outsider": outsider, "superuser": UserFactory(username="root", is_superuser=True)},
    }


def endpoints(w):
    c, contact = w["conversation"].pk, w["contact"].pk
    return [
        # (method, url, body, is a list endpoint)
        ("get", "/api/numbers/", None, True),
        ("get", "/api/conversations/", None, True),
        ("get", f"/api/conversations/?number={w['number'].phone_number_id}", None, True),
        ("get", f"/api/conversations/{c}/messages/", None, False),
        ("get", f"/api/conversations/{c}/messages/?before={w['message'].pk}", None, False),
        ("post", f"/api/conversations/{c}/messages/", {"type": "text", "text": "hello"}, False),
        (
            "post",
            f"/api/conversations/{c}/messages/",
            {"type": "template", "template": w["template"].pk, "params": []},
            False,
        ),
        (
            "post",
            f"/api/conversations/{c}/messages/",
            {"type": "reaction", "message": w["message"].wamid, "emoji": "👍"},
            False,
        ),
        ("get", f"/api/conversations/{c}/templates/", None, False),
        ("post", f"/api/conversations/{c}/read/", None, False),
        ("get", "/api/contacts/", None, True),
        ("get", f"/api/contacts/{contact}/", None, False),
        ("patch", f"/api/contacts/{contact}/", {"name": "Renamed"}, False),
        # Last: the duplicate is gone after it.
        ("post", f"/api/contacts/{contact}/merge/", {"duplicate": w["duplicate"].pk}, False),
    ]


def call(user, method, url, body):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return getattr(client, method)(url, body, format="json") if body is not None else getattr(client, method)(url)


@pytest.mark.parametrize("role", ["member", "superuser"])
def test_members_and_superusers_are_served(world, role):
    for method, url, body, _is_list in endpoints(world):
        response = call(world["users"][role], method, url, body)
        assert response.status_code in (200, 202), (method, url, response.status_code, response.content)
        if _is_list and "number=" not in url:
            assert response.json()["results"], (url, "sees the data")


def test_staff_of_another_number_see_nothing(world):
    for method, url, body, is_list in endpoints(world):
        response = call(world["users"]["outsider"], method, url, body)
        if is_list:
            assert response.status_code == 200, url
            listed = response.json()["results"]
            hidden = {
                "numbers": world["number"].pk,
                "conversations": world["conversation"].pk,
                "contacts": world["contact"].pk,
            }[url.split("/")[2]]
            assert hidden not in [item["id"] for item in listed], url
        else:
            assert response.status_code == 404, (method, url, response.status_code)
            assert response.json()["error"]["code"] == "not_found"


def test_anonymous_callers_get_401_in_the_error_shape(world):
    for method, url, body, _is_list in endpoints(world):
        response = call(None, method, url, body)
        assert response.status_code == 401, (method, url)
        assert response.json()["error"]["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_merge_needs_both_contacts_visible(world):
    url = f"/api/contacts/{world['contact'].pk}/merge/"
    outsider_contact = ConversationFactory().contact  # on a number the member may not see
    response = call(world["users"]["member"], "post", url, {"duplicate": outsider_contact.pk})
    assert response.status_code == 404
    assert call(world["users"]["outsider"], "post", url, {"duplicate": world["duplicate"].pk}).status_code == 404
    assert call(None, "post", url, {"duplicate": world["duplicate"].pk}).status_code == 401
    same = call(world["users"]["member"], "post", url, {"duplicate": world["contact"].pk})
    assert same.status_code == 400 and same.json()["error"]["code"] == "same_contact"


def test_a_members_own_conversation_reaches_no_other_numbers_messages_or_templates(world):
    """What a send refers to (the message replied or reacted to, the template) must be the conversation's own."""
    other = BusinessNumberFactory(waba_id="999888777")
    theirs = MessageFactory(conversation=ConversationFactory(number=other, contact=world["contact"]))
    their_template = MessageTemplate.objects.create(
        waba_id=other.waba_id, name="theirs", language="en_US", status="APPROVED", components=[]
    )
    url = f"/api/conversations/{world['conversation'].pk}/messages/"
    sends = {
        "unknown_message": [
            {"type": "reaction", "message": theirs.wamid, "emoji": "👍"},
            {"type": "text", "text": "hello", "reply_to": theirs.wamid},
        ],
        "template_unavailable": [{"type": "template", "template": their_template.pk, "params": []}],
    }
    for code, bodies in sends.items():
        for body in bodies:
            response = call(world["users"]["member"], "post", url, body)
            assert response.status_code == 400 and response.json()["error"]["code"] == code, body
    assert not world["conversation"].messages.exclude(pk=world["message"].pk).exists()


@pytest.fixture
def shared_contact(world):
    """A customer who writes to the member's number and to another one."""
    contact = ContactFactory(profile_name="Noor")
    ConversationFactory(number=world["number"], contact=contact)
    elsewhere = ConversationFactory(contact=contact)
    return contact, elsewhere


def test_a_contact_shared_with_another_number_is_not_renamed_or_merged_by_a_member_of_one(world, shared_contact):
    contact, elsewhere = shared_contact
    member, kept = world["users"]["member"], world["contact"]
    refusals = [
        call(member, "patch", f"/api/contacts/{contact.pk}/", {"name": "Noor (our VIP)"}),
        call(member, "post", f"/api/contacts/{kept.pk}/merge/", {"duplicate": contact.pk}),
        call(member, "post", f"/api/contacts/{contact.pk}/merge/", {"duplicate": kept.pk}),
    ]
    for response in refusals:
        assert response.status_code == 403, response.content
        error = response.json()["error"]
        assert error["code"] == "contact_on_other_numbers" and error["detail"]
    contact.refresh_from_db()
    assert contact.custom_name == ""
    # The other number's team still writes to the same person.
    elsewhere.refresh_from_db()
    assert elsewhere.contact_id == contact.pk


def test_who_sees_every_number_of_a_shared_contact_may_rename_and_merge_it(world, shared_contact):
    contact, elsewhere = shared_contact
    root = world["users"]["superuser"]
    assert call(root, "patch", f"/api/contacts/{contact.pk}/", {"name": "Noor"}).status_code == 200
    member = world["users"]["member"]
    elsewhere.number.members.add(member)
    response = call(member, "post", f"/api/contacts/{world['contact'].pk}/merge/", {"duplicate": contact.pk})
    assert response.status_code == 200, response.content
    elsewhere.refresh_from_db()
    assert elsewhere.contact_id == world["contact"].pk


def test_validation_errors_share_the_shape(world):
    response = call(world["users"]["member"], "patch", f"/api/contacts/{world['contact'].pk}/", {"name": "x" * 300})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and "name" in error["fields"]

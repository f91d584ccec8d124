"""Canned replies: the number's and each person's own, a shortcut unique in its scope (the database's
constraints), placeholders filled in by one rule that the API serves."""

import pytest
from django.db import IntegrityError

from conversations.models import CannedReply
from conversations.selectors import canned_replies_for
from conversations.services.canned_replies import create_canned_reply, render_canned_reply
from conversations.services.errors import WorkflowRefused
from tests.conversations.team import as_user, make_team
from tests.factories import BusinessNumberFactory, CannedReplyFactory, ContactFactory, ConversationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(number):
    return make_team(number)


@pytest.fixture
def conversation(number):
    return ConversationFactory(number=number, contact=ContactFactory(profile_name="Amara Okafor"))


def test_placeholders_are_filled_in_with_the_contacts_and_the_agents_names(people, conversation):
    reply = CannedReplyFactory(number=conversation.number, text="Hi {{contact_name}}! {{ agent_name }} here. {{other}}")
    text = render_canned_reply(canned_reply=reply, conversation=conversation, user=people["ana"])
    assert text == "Hi Amara Okafor! Ana here. {{other}}"


def test_a_canned_reply_is_the_numbers_or_ones_own_never_both_nor_neither(people, number):
    with pytest.raises(IntegrityError):
        CannedReply.objects.create(number=number, owner=people["ana"], shortcut="both", text="x")


def test_neither_scope_is_refused_by_the_database(number):
    with pytest.raises(IntegrityError):
        CannedReply.objects.create(number=None, owner=None, shortcut="neither", text="x")


def test_a_shortcut_is_unique_in_its_scope(people, number):
    create_canned_reply(user=people["sue"], number=number, shortcut="/Thanks", text="Thank you!")
    create_canned_reply(user=people["ana"], shortcut="thanks", text="Thanks, {{contact_name}}")  # her own
    for user, scope in ((people["sue"], number), (people["ana"], None)):
        with pytest.raises(WorkflowRefused) as refused:
            create_canned_reply(user=user, number=scope, shortcut="thanks", text="again")
        assert (refused.value.code, refused.value.field) == ("shortcut_taken", "shortcut")
    with pytest.raises(WorkflowRefused) as refused:
        create_canned_reply(user=people["ana"], shortcut="no spaces", text="x")
    assert refused.value.field == "shortcut"
    with pytest.raises(WorkflowRefused) as refused:
        create_canned_reply(user=people["ana"], number=number, shortcut="team", text="x")
    assert refused.value.status == 403


def test_the_composer_is_offered_ones_own_and_the_numbers_replies_only(people, number, conversation):
    CannedReplyFactory(number=number, shortcut="hours")
    CannedReplyFactory(number=None, owner=people["ana"], shortcut="hello")
    CannedReplyFactory(number=None, owner=people["sue"], shortcut="hi-sue")
    CannedReplyFactory(number=BusinessNumberFactory(), shortcut="elsewhere")
    offered = canned_replies_for(user=people["ana"], conversation=conversation)
    assert [r.shortcut for r in offered] == ["hello", "hours"]
    assert [r.shortcut for r in canned_replies_for(user=people["ana"], conversation=conversation, search="/ho")] == [
        "hours"
    ]


def test_the_api_offers_them_filled_in_and_refuses_an_unknown_one(people, number, conversation):
    team = CannedReplyFactory(
        number=number, shortcut="hours", text="Dear {{contact_name}}, we open at 9. {{agent_name}}"
    )
    sues = CannedReplyFactory(number=None, owner=people["sue"], shortcut="mine")
    url = f"/api/conversations/{conversation.pk}/canned-replies/"
    body = as_user(people["ana"]).get(url, {"q": "ho"}).json()
    assert body["results"] == [
        {
            "id": team.pk,
            "shortcut": "hours",
            "scope": "number",
            "template": team.text,
            "text": "Dear Amara Okafor, we open at 9. Ana",
        }
    ]
    one = as_user(people["ana"]).get(f"{url}{team.pk}/")
    assert one.status_code == 200 and one.json()["text"] == "Dear Amara Okafor, we open at 9. Ana"
    unknown = as_user(people["ana"]).get(f"{url}{sues.pk}/")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_canned_reply"
    assert as_user(people["olga"]).get(url).status_code == 404
    assert as_user(people["olga"]).get(f"{url}{team.pk}/").status_code == 404


def test_the_api_creates_personal_and_number_replies(people, number):
    created = as_user(people["ana"]).post("/api/canned-replies/", {"shortcut": "bye", "text": "Bye!"}, format="json")
    assert created.status_code == 201 and created.json()["scope"] == "personal"
    again = as_user(people["ana"]).post("/api/canned-replies/", {"shortcut": "bye", "text": "Bye"}, format="json")
    assert again.status_code == 400 and list(again.json()["error"]["fields"]) == ["shortcut"]
    team = {"shortcut": "bye", "text": "Goodbye", "number": number.pk}
    assert as_user(people["sue"]).post("/api/canned-replies/", team, format="json").status_code == 201
    assert as_user(people["ana"]).post("/api/canned-replies/", team, format="json").status_code == 403
    assert as_user(people["olga"]).post("/api/canned-replies/", team, format="json").status_code == 404

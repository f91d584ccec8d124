"""Canned replies: the number's and each person's own, a shortcut unique in its scope (the database's
constraints), placeholders filled in by one rule that the API serves."""

import pytest
from django.db import IntegrityError

from conversations.models import CannedReply
from conversations.selectors import canned_replies_for
from conversations.services.canned_replies import (
    create_canned_reply,
    delete_canned_reply,
    render_canned_reply,
    update_canned_reply,
)
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
            "number": number.pk,
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


def test_its_owner_changes_and_deletes_a_personal_reply_and_nobody_else(people, number):
    mine = create_canned_reply(user=people["ana"], shortcut="bye", text="Bye!")
    update_canned_reply(user=people["ana"], canned_reply=mine, shortcut="/Ciao", text="Ciao {{contact_name}}")
    mine.refresh_from_db()
    assert (mine.shortcut, mine.text) == ("ciao", "Ciao {{contact_name}}")
    # A supervisor of her number manages the number's replies, not her own.
    with pytest.raises(WorkflowRefused) as refused:
        update_canned_reply(user=people["sue"], canned_reply=mine, shortcut="x", text="x")
    assert refused.value.status == 403
    with pytest.raises(WorkflowRefused):
        delete_canned_reply(user=people["sue"], canned_reply=mine)
    delete_canned_reply(user=people["ana"], canned_reply=mine)
    assert not CannedReply.objects.exists()


def test_a_numbers_reply_is_changed_by_its_supervisors_only_and_keeps_its_shortcut_unique(people, number):
    hours = create_canned_reply(user=people["sue"], number=number, shortcut="hours", text="9 to 5")
    create_canned_reply(user=people["sue"], number=number, shortcut="thanks", text="Thanks!")
    with pytest.raises(WorkflowRefused) as refused:
        update_canned_reply(user=people["ana"], canned_reply=hours, shortcut="hours", text="Always open")
    assert refused.value.status == 403
    with pytest.raises(WorkflowRefused) as refused:
        update_canned_reply(user=people["sue"], canned_reply=hours, shortcut="thanks", text="9 to 5")
    assert (refused.value.code, refused.value.field) == ("shortcut_taken", "shortcut")
    with pytest.raises(WorkflowRefused) as refused:
        update_canned_reply(user=people["sue"], canned_reply=hours, shortcut="hours", text="  ")
    assert refused.value.field == "text"
    hours.refresh_from_db()
    assert (hours.shortcut, hours.text) == ("hours", "9 to 5")  # nothing half saved
    with pytest.raises(WorkflowRefused):
        delete_canned_reply(user=people["ana"], canned_reply=hours)
    delete_canned_reply(user=people["sue"], canned_reply=hours)
    assert list(CannedReply.objects.values_list("shortcut", flat=True)) == ["thanks"]


def test_the_api_lists_changes_and_deletes_what_one_looks_after(people, number):
    theirs = CannedReplyFactory(number=BusinessNumberFactory(), shortcut="elsewhere")
    olgas = CannedReplyFactory(number=None, owner=people["olga"], shortcut="olga")
    team = CannedReplyFactory(number=number, shortcut="hours", text="9 to 5")
    mine = CannedReplyFactory(number=None, owner=people["ana"], shortcut="bye", text="Bye!")
    listed = as_user(people["ana"]).get("/api/canned-replies/").json()["results"]
    assert [(r["shortcut"], r["scope"], r["number"]) for r in listed] == [
        ("bye", "personal", None),
        ("hours", "number", number.pk),
    ]
    changed = as_user(people["ana"]).patch(f"/api/canned-replies/{mine.pk}/", {"text": "See you!"}, format="json")
    assert changed.status_code == 200 and changed.json()["template"] == "See you!"
    assert changed.json()["shortcut"] == "bye"
    refused = as_user(people["ana"]).patch(f"/api/canned-replies/{team.pk}/", {"text": "x"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_allowed"
    assert (
        as_user(people["sue"]).patch(f"/api/canned-replies/{team.pk}/", {"text": "8 to 6"}, format="json").status_code
        == 200
    )
    # What a member of another number, or another person, owns is not found at all.
    for reply in (theirs, olgas):
        for call in (as_user(people["ana"]).delete, as_user(people["sue"]).delete):
            gone = call(f"/api/canned-replies/{reply.pk}/")
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_canned_reply"
    assert as_user(people["olga"]).delete(f"/api/canned-replies/{team.pk}/").status_code == 404
    assert as_user(people["ana"]).delete(f"/api/canned-replies/{mine.pk}/").status_code == 204
    assert as_user(people["sue"]).delete(f"/api/canned-replies/{team.pk}/").status_code == 204
    assert set(CannedReply.objects.values_list("shortcut", flat=True)) == {"elsewhere", "olga"}


def page_text(response) -> str:
    return " ".join(response.content.decode().split())


def test_the_page_adds_changes_and_deletes_ones_own_and_shows_the_teams(client, people, number):
    CannedReplyFactory(number=number, shortcut="hours", text="We open at 9")
    client.force_login(people["ana"])
    page = client.get("/canned-replies/")
    assert page.status_code == 200
    assert "We open at 9" in page_text(page) and "Its supervisors write these." in page_text(page)
    added = client.post("/canned-replies/", {"action": "create", "shortcut": "/Bye", "text": "Bye {{contact_name}}"})
    assert added.status_code == 302
    mine = CannedReply.objects.get(owner=people["ana"])
    assert mine.shortcut == "bye" and "Canned reply /bye added." in page_text(client.get("/canned-replies/"))
    taken = client.post("/canned-replies/", {"action": "create", "shortcut": "bye", "text": "Again"})
    assert taken.status_code == 400
    assert "There is a canned reply /bye of your own already." in page_text(taken)
    assert ">Again</textarea>" in taken.content.decode()  # what was typed stays
    client.post("/canned-replies/", {"action": "update", "reply": mine.pk, "shortcut": "ciao", "text": "Ciao!"})
    mine.refresh_from_db()
    assert (mine.shortcut, mine.text) == ("ciao", "Ciao!")
    # An agent cannot write for the team, nor change the team's replies.
    team = client.post("/canned-replies/", {"action": "create", "scope": number.pk, "shortcut": "x", "text": "x"})
    assert team.status_code == 403
    hours = CannedReply.objects.get(shortcut="hours")
    changed = client.post("/canned-replies/", {"action": "update", "reply": hours.pk, "shortcut": "h", "text": "x"})
    assert changed.status_code == 403 and CannedReply.objects.get(pk=hours.pk).text == "We open at 9"
    client.post("/canned-replies/", {"action": "delete", "reply": mine.pk})
    assert not CannedReply.objects.filter(owner=people["ana"]).exists()


def test_a_supervisor_writes_the_teams_replies_on_the_page_and_a_stranger_never_sees_them(client, people, number):
    client.force_login(people["sue"])
    client.post("/canned-replies/", {"action": "create", "scope": number.pk, "shortcut": "hours", "text": "9 to 5"})
    hours = CannedReply.objects.get(number=number)
    assert hours.shortcut == "hours"
    client.post("/canned-replies/", {"action": "update", "reply": hours.pk, "shortcut": "hours", "text": "8 to 6"})
    assert CannedReply.objects.get(pk=hours.pk).text == "8 to 6"
    client.force_login(people["olga"])
    assert "8 to 6" not in page_text(client.get("/canned-replies/"))
    for action in ("update", "delete"):
        data = {"action": action, "reply": hours.pk, "shortcut": "mine", "text": "taken"}
        assert client.post("/canned-replies/", data).status_code == 404
    stranger = client.post("/canned-replies/", {"action": "create", "scope": number.pk, "shortcut": "x", "text": "x"})
    assert stranger.status_code == 400 and "No such number." in page_text(stranger)
    for odd in ("²", "9" * 30, "-1"):
        assert client.post("/canned-replies/", {"action": "delete", "reply": odd}).status_code == 404
        made = client.post("/canned-replies/", {"action": "create", "scope": odd, "shortcut": "x", "text": "x"})
        assert made.status_code == 400
    assert client.post("/canned-replies/", {"action": "rename"}).status_code == 400
    assert CannedReply.objects.get(pk=hours.pk).text == "8 to 6"
    client.logout()
    assert client.get("/canned-replies/").status_code == 302  # to the sign-in page

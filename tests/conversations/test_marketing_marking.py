from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.models import MarketingPreference
from realtime.models import Event
from tests.factories import (
    BusinessNumberFactory,
    ContactFactory,
    ConversationFactory,
    MessageTemplateFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(number):
    contact = ContactFactory(wa_id="447700900461")
    return ConversationFactory(number=number, contact=contact, last_inbound_at=timezone.now() - timedelta(days=2))


def test_staff_marking_a_stop_makes_marketing_templates_refused_and_says_who(api, staff, conversation):
    sale = MessageTemplateFactory(name="big_sale", category="MARKETING")
    url = f"/api/conversations/{conversation.pk}/marketing/"
    assert api.get(url).json() == {"opted_out": None, "changed_at": None, "changed_by": None, "source": None}

    marked = api.put(url, {"opted_out": True}, format="json").json()

    assert marked["opted_out"] is True
    assert marked["source"] == "staff"
    assert marked["changed_by"]["id"] == staff.pk
    assert api.get(url).json() == marked
    (event,) = Event.objects.filter(type="contact.marketing_changed")
    assert event.payload["opted_out"] is True
    assert event.payload["contact_id"] == conversation.contact_id
    refused = api.post(
        f"/api/conversations/{conversation.pk}/messages/", {"type": "template", "template": sale.pk}, format="json"
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "marketing_opted_out"

    assert api.put(url, {"opted_out": False}, format="json").json()["opted_out"] is False
    assert not MarketingPreference.objects.get(contact=conversation.contact).opted_out


def test_a_member_of_another_number_gets_404_and_a_bad_body_400(api, conversation):
    outsider = UserFactory(username="olga")
    BusinessNumberFactory().members.add(outsider)
    other = APIClient()
    other.force_authenticate(outsider)
    url = f"/api/conversations/{conversation.pk}/marketing/"
    assert other.get(url).status_code == 404
    assert other.put(url, {"opted_out": True}, format="json").status_code == 404
    assert not MarketingPreference.objects.exists()
    bad = api.put(url, {"opted_out": "maybe"}, format="json")
    assert bad.status_code == 400
    assert "opted_out" in bad.json()["error"]["fields"]

"""The Templates page of a number: for its supervisors only, listing the account's templates with Meta's
reason for a rejection, as text."""

import pytest

from conversations.models import MemberRole, MessageTemplate, NumberMembership
from tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db


def page_url(number) -> str:
    return f"/numbers/{number.pk}/templates/"


def test_only_the_numbers_supervisors_open_it_an_agent_is_refused_another_number_is_not_found(number, team, client):
    client.force_login(team["ana"])
    assert client.get(page_url(number)).status_code == 403
    other = BusinessNumberFactory()
    NumberMembership.objects.create(number=other, user=team["olga"], role=MemberRole.SUPERVISOR)
    client.force_login(team["olga"])
    assert client.get(page_url(number)).status_code == 404
    assert client.get(page_url(other)).status_code == 200
    client.force_login(team["sue"])
    assert client.get(page_url(number)).status_code == 200


def test_the_numbers_page_links_each_card_to_its_templates(number, team, client):
    client.force_login(team["sue"])
    assert f'href="{page_url(number)}"' in client.get("/numbers/").content.decode()


def test_a_rejected_template_shows_metas_reason_as_text_and_another_accounts_templates_stay_off(number, team, client):
    MessageTemplate.objects.create(
        waba_id=number.waba_id, name="winter_sale", language="en_US", status="REJECTED", category="MARKETING",
        status_reason="INVALID_FORMAT", status_detail="<script>alert(1)</script> uses a banned word",
    )  # fmt: skip
    MessageTemplate.objects.create(
        waba_id=number.waba_id, name="order_ready", language="en_US", status="APPROVED", category="UTILITY",
        status_reason="NONE", quality_score="GREEN",
    )  # fmt: skip
    MessageTemplate.objects.create(waba_id="another-account", name="not_ours", language="en", status="APPROVED")
    client.force_login(team["sue"])
    page = client.get(page_url(number)).content.decode()
    assert "winter_sale" in page and "order_ready" in page and "GREEN" in page
    assert "INVALID_FORMAT: &lt;script&gt;alert(1)&lt;/script&gt; uses a banned word" in page
    assert "<script>alert(1)" not in page
    assert "not_ours" not in page
    # An approved one's "NONE" is not shown as a reason.
    assert ">NONE<" not in page

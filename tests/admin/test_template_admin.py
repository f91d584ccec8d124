"""Templates in Django admin: deleted at Meta through the same service as the API, a refusal shown with the
template kept; each row links to its number's Templates page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import MessageTemplateFactory, UserFactory

pytestmark = pytest.mark.django_db


def deletes_at_meta(sandbox) -> list[dict]:
    with sandbox.lock:
        return [r for r in sandbox.state.requests if r["method"] == "DELETE"]


def test_a_superuser_deletes_a_template_at_meta_and_the_list_links_to_the_templates_page(client, number, meta_sandbox):
    template = MessageTemplateFactory(waba_id=number.waba_id, name="old_offer", language="en", status="APPROVED")
    meta_sandbox.configure({"waba_id": number.waba_id, "templates": [
        {"id": template.meta_template_id or "771", "name": "old_offer", "language": "en", "status": "APPROVED",
         "category": "MARKETING", "components": []},
    ]})  # fmt: skip
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    listed = client.get("/admin/conversations/messagetemplate/").content.decode()
    assert f'href="/numbers/{number.pk}/templates/"' in listed
    response = client.post(
        "/admin/conversations/messagetemplate/",
        {"action": "delete_selected", "_selected_action": [template.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert [
        r["path"].split("?")[0].endswith(f"/{number.waba_id}/message_templates") for r in deletes_at_meta(meta_sandbox)
    ] == [True]
    assert not type(template).objects.filter(pk=template.pk).exists()


def test_the_template_list_links_every_row_in_a_fixed_number_of_queries(client, number, django_assert_max_num_queries):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    MessageTemplateFactory(waba_id=number.waba_id, name="first")
    with CaptureQueriesContext(connection) as one_row:
        client.get("/admin/conversations/messagetemplate/")
    for n in range(20):
        MessageTemplateFactory(waba_id=number.waba_id, name=f"offer_{n}")

    with django_assert_max_num_queries(len(one_row)):
        listed = client.get("/admin/conversations/messagetemplate/").content.decode()
    assert listed.count(f'href="/numbers/{number.pk}/templates/"') == 21

"""/api/schema/ describes the API truthfully: schemathesis generates requests from it, and every
response must be a non-5xx with a documented status, content type and body shape. The schema and its
docs page are for signed-in staff only."""

import json
from datetime import timedelta

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.views import SpectacularAPIView
from hypothesis import HealthCheck, settings
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework_simplejwt.tokens import AccessToken
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from conversations.models import ContactNote, MessageTemplate
from tests.factories import (
    CannedReplyFactory,
    ContactFactory,
    ConversationFactory,
    LabelFactory,
    MessageFactory,
    OutboundMessageFactory,
    UserFactory,
)


def _schema_as_staff_get_it() -> dict:
    """/api/schema/ as a signed-in staff member gets it, at import time (no database yet: an unsaved user)."""
    request = APIRequestFactory().get("/api/schema/", {"format": "json"})
    force_authenticate(request, user=get_user_model()(username="schema-reader", is_staff=True))
    response = SpectacularAPIView.as_view()(request)
    assert response.status_code == 200
    return json.loads(response.render().content)


schema = schemathesis.openapi.from_dict(_schema_as_staff_get_it())
schema.app = get_wsgi_application()


@pytest.mark.django_db
def test_schema_and_docs_are_served_to_staff(client):
    client.force_login(UserFactory(username="docs-reader", is_staff=True))
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/schema/?format=json", "/api/docs/"])
def test_schema_and_docs_are_closed_to_anonymous_and_non_staff_users(client, path):
    assert client.get(path).status_code == 401
    client.force_login(UserFactory(username="agent", is_staff=False))
    assert client.get(path).status_code == 403
    if path.startswith("/api/schema/"):
        assert client.get(path).json() == {
            "error": {"code": "permission_denied", "detail": "You do not have permission to perform this action."}
        }


@pytest.mark.django_db
def test_a_body_without_a_content_type_gets_the_documented_415(client):
    # Found by schemathesis: DRF answers 415 when it cannot tell the body's type; the schema now says so.
    refresh = _schema_as_staff_get_it()["paths"]["/api/auth/token/refresh/"]["post"]
    assert refresh["responses"]["415"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    response = client.generic("POST", "/api/auth/token/refresh/", b'{"refresh": "x"}', content_type="")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@pytest.fixture
def keep_test_connection():
    """The WSGI app would close the database connection after each request, and with it the test's
    transaction; Django's own test client disconnects the same signals."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(db, number, monkeypatch, keep_test_connection):
    monkeypatch.setattr("conversations.tasks.deliver_outbound_message_task.delay", lambda *args: None)
    monkeypatch.setattr("conversations.tasks.send_read_receipt_task.delay", lambda *args: None)
    user = UserFactory(username="schema-user")
    number.members.add(user)
    conversation = ConversationFactory(
        number=number, contact=ContactFactory(), last_inbound_at=timezone.now() - timedelta(minutes=5)
    )
    MessageFactory(conversation=conversation)
    OutboundMessageFactory(
        conversation=conversation, wamid="wamid.OUT1", status="failed", error_code=131026, error_title="x"
    )
    MessageTemplate.objects.create(
        waba_id=number.waba_id,
        name="hello",
        language="en_US",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Hello from the shop"}],
    )
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_every_operation_answers_as_documented(case, bearer):
    case.call_and_validate(
        headers=bearer,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )


@pytest.mark.django_db
def test_real_objects_answer_as_documented(bearer, number):
    """Generated ids mostly miss; these calls hit real rows, so the 200/202 bodies are checked too."""
    from contacts.models import Contact
    from conversations.models import Conversation, Message

    conversation = Conversation.objects.get(number=number)
    inbound = Message.objects.get(conversation=conversation, direction="in")
    contact = Contact.objects.get(pk=conversation.contact_id)
    template = MessageTemplate.objects.get()
    label = LabelFactory(number=number)
    canned = CannedReplyFactory(number=number)
    author = get_user_model().objects.get(username="schema-user")
    note = ContactNote.objects.create(number=number, contact=contact, author=author, body="Prefers mornings")
    own_reply = CannedReplyFactory(number=None, owner=author, shortcut="own")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    on_conversation = {"conversation_id": conversation.pk}
    calls = [
        ("/api/numbers/{number_id}/labels/", "GET", {"number_id": number.pk}, None, None),
        ("/api/conversations/{conversation_id}/labels/", "POST", on_conversation, None, {"label": label.pk}),
        ("/api/conversations/{conversation_id}/", "GET", on_conversation, None, None),
        (
            "/api/conversations/{conversation_id}/labels/{label_id}/",
            "DELETE",
            {**on_conversation, "label_id": label.pk},
            None,
            None,
        ),
        ("/api/conversations/{conversation_id}/canned-replies/", "GET", on_conversation, {"q": "re"}, None),
        (
            "/api/conversations/{conversation_id}/canned-replies/{canned_reply_id}/",
            "GET",
            {**on_conversation, "canned_reply_id": canned.pk},
            None,
            None,
        ),
        ("/api/canned-replies/", "POST", {}, None, {"shortcut": "mine", "text": "Hi {{contact_name}}"}),
        ("/api/canned-replies/", "GET", {}, None, None),
        ("/api/canned-replies/{canned_reply_id}/", "PATCH", {"canned_reply_id": own_reply.pk}, None, {"text": "Hi"}),
        ("/api/conversations/{conversation_id}/messages/", "GET", {"conversation_id": conversation.pk}, None, None),
        (
            "/api/conversations/{conversation_id}/messages/",
            "GET",
            {"conversation_id": conversation.pk},
            {"before": inbound.pk + 1},
            None,
        ),
        ("/api/conversations/{conversation_id}/templates/", "GET", {"conversation_id": conversation.pk}, None, None),
        ("/api/conversations/{conversation_id}/read/", "POST", {"conversation_id": conversation.pk}, None, None),
        (
            "/api/conversations/{conversation_id}/messages/",
            "POST",
            {"conversation_id": conversation.pk},
            None,
            {"type": "text", "text": "hello", "reply_to": inbound.wamid},
        ),
        (
            "/api/conversations/{conversation_id}/messages/",
            "POST",
            {"conversation_id": conversation.pk},
            None,
            {"type": "template", "template": template.pk, "params": []},
        ),
        ("/api/contacts/{contact_id}/", "GET", {"contact_id": contact.pk}, None, None),
        ("/api/contacts/{contact_id}/", "PATCH", {"contact_id": contact.pk}, None, {"name": "Renamed"}),
        ("/api/conversations/{conversation_id}/take/", "POST", {"conversation_id": conversation.pk}, None, None),
        (
            "/api/conversations/{conversation_id}/status/",
            "POST",
            {"conversation_id": conversation.pk},
            None,
            {"status": "snoozed", "snooze_until": "2999-01-01"},
        ),
        ("/api/conversations/{conversation_id}/activity/", "GET", {"conversation_id": conversation.pk}, None, None),
        ("/api/numbers/{number_id}/settings/", "GET", {"number_id": number.pk}, None, None),
        ("/api/numbers/{number_id}/members/", "GET", {"number_id": number.pk}, None, None),
        ("/api/messages/search/", "GET", {}, {"q": inbound.body.split()[0]}, None),
        (
            "/api/conversations/{conversation_id}/messages/",
            "GET",
            on_conversation,
            {"after": inbound.pk},
            None,
        ),
        ("/api/conversations/{conversation_id}/contact/", "GET", on_conversation, None, None),
        ("/api/conversations/{conversation_id}/contact/notes/", "POST", on_conversation, None, {"body": "VIP"}),
        (
            "/api/conversations/{conversation_id}/contact/notes/{note_id}/",
            "PATCH",
            {**on_conversation, "note_id": note.pk},
            None,
            {"body": "Still VIP"},
        ),
    ]
    for path, method, path_parameters, query, body in calls:
        operation = schema[path][method]
        kwargs = {"path_parameters": path_parameters, "query": query or {}}
        if body is not None:
            kwargs.update(body=body, media_type="application/json")
        response = operation.Case(**kwargs).call_and_validate(headers=bearer, checks=checks)
        assert response.status_code in (200, 201, 202), (path, method, response.text)

"""The admin as staff who are not superusers see it: Django's model permissions say what kind of row they may
view or change, membership of a business number says which rows. A member of one number with every view,
change and delete permission sees, changes and acts on that number's rows only; superusers see all."""

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from contacts.models import Contact
from conversations.models import BusinessNumber, Conversation, MessageStatusEvent, MessageTemplate, Reaction
from tests.e2e.conftest import ROOT, SandboxControl, free_port, stop_process, wait_for
from tests.factories import BusinessNumberFactory, ContactFactory, ConversationFactory, MessageFactory, UserFactory
from webhooks.models import WebhookEvent, WebhookEventState

pytestmark = pytest.mark.django_db

MODELS = {
    "number": "conversations.businessnumber",
    "conversation": "conversations.conversation",
    "message": "conversations.message",
    "status": "conversations.messagestatusevent",
    "reaction": "conversations.reaction",
    "template": "conversations.messagetemplate",
    "contact": "contacts.contact",
    "event": "webhooks.webhookevent",
}


def rows_of(number: BusinessNumber, *, waba_id: str) -> dict:
    contact = ContactFactory(profile_name=f"Customer of {number.name}")
    conversation = ConversationFactory(number=number, contact=contact)
    message = MessageFactory(conversation=conversation)
    return {
        "number": number,
        "conversation": conversation,
        "message": message,
        "status": MessageStatusEvent.objects.create(
            wamid=message.wamid, status="read", timestamp=datetime(2026, 1, 1, tzinfo=UTC), number=number
        ),
        "reaction": Reaction.objects.create(
            message_wamid=message.wamid,
            contact=contact,
            emoji="👍",
            reaction_wamid=f"{message.wamid}.r",
            reacted_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        "template": MessageTemplate.objects.create(
            waba_id=waba_id, name=f"hello_{waba_id}", language="en_US", status="APPROVED"
        ),
        "contact": contact,
        "event": WebhookEvent.objects.create(
            raw_body="{}", phone_number_id=number.phone_number_id, state=WebhookEventState.PROCESSED, attempts=1
        ),
    }


@pytest.fixture
def sales():
    return rows_of(BusinessNumberFactory(name="Sales line", waba_id="111222333"), waba_id="111222333")


@pytest.fixture
def support():
    return rows_of(BusinessNumberFactory(name="Support line", waba_id="444555666"), waba_id="444555666")


def staff_with(*actions: str, member_of: BusinessNumber, username: str = "sam"):
    user = UserFactory(username=username)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=["conversations", "contacts", "webhooks"],
            codename__regex=rf"^({'|'.join(actions)})_",
        )
    )
    member_of.members.add(user)
    return user


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def changelist(model: str) -> str:
    app, name = model.split(".")
    return reverse(f"admin:{app}_{name}_changelist")


def flashed(response) -> str:
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


def test_a_member_lists_and_opens_only_the_rows_of_their_numbers(client, sales, support):
    client.force_login(staff_with("view", member_of=sales["number"]))
    for kind, model in MODELS.items():
        page = client.get(changelist(model))
        assert page.status_code == 200, model
        assert change_url(sales[kind]) in page.content.decode(), model
        assert change_url(support[kind]) not in page.content.decode(), model
        assert client.get(change_url(sales[kind])).status_code == 200, model
        # As for a row that does not exist: back to the admin's index.
        assert client.get(change_url(support[kind])).status_code == 302, model


def test_filters_offer_only_the_members_numbers(client, sales, support):
    client.force_login(staff_with("view", member_of=sales["number"]))
    conversations = client.get(changelist(MODELS["conversation"])).content.decode()
    assert "Sales line" in conversations and "Support line" not in conversations
    events = client.get(changelist(MODELS["event"])).content.decode()
    assert support["number"].phone_number_id not in events


def test_superusers_list_every_number(client, sales, support):
    client.force_login(UserFactory(username="root", is_superuser=True))
    for kind, model in MODELS.items():
        page = client.get(changelist(model)).content.decode()
        assert change_url(sales[kind]) in page and change_url(support[kind]) in page, model


def test_actions_reach_only_the_members_rows(client, sales, support, django_capture_on_commit_callbacks):
    client.force_login(staff_with("view", "change", "delete", member_of=sales["number"]))
    for action in ("check_connection", "sync_message_templates"):
        response = client.post(
            changelist(MODELS["number"]), {"action": action, "_selected_action": [support["number"].pk]}, follow=True
        )
        assert "Support line" not in flashed(response), action
    with django_capture_on_commit_callbacks(execute=True):
        client.post(changelist(MODELS["event"]), {"action": "replay", "_selected_action": [support["event"].pk]})
    assert WebhookEvent.objects.get(pk=support["event"].pk).attempts == 1
    client.post(
        changelist(MODELS["conversation"]),
        {"action": "delete_selected", "_selected_action": [support["conversation"].pk], "post": "yes"},
    )
    assert Conversation.objects.filter(pk=support["conversation"].pk).exists()


@pytest.fixture
def shared_contact(sales, support):
    """A customer who writes to both numbers."""
    contact = ContactFactory(profile_name="Noor")
    for number in (sales["number"], support["number"]):
        MessageFactory(conversation=ConversationFactory(number=number, contact=contact))
    return contact


def test_a_member_of_one_number_cannot_merge_rename_or_delete_a_shared_contact(client, sales, support, shared_contact):
    client.force_login(staff_with("view", "change", "delete", member_of=sales["number"]))
    url = changelist(MODELS["contact"])

    merge = client.post(
        url, {"action": "merge_selected", "_selected_action": [sales["contact"].pk, shared_contact.pk]}, follow=True
    )
    assert "Nothing merged" in flashed(merge)
    assert Contact.objects.filter(pk__in=[sales["contact"].pk, shared_contact.pk]).count() == 2
    assert Conversation.objects.get(number=support["number"], contact=shared_contact)

    page = client.get(change_url(shared_contact))
    assert page.status_code == 200 and 'name="custom_name"' not in page.content.decode()
    assert client.post(change_url(shared_contact), {"custom_name": "Noor (Sales VIP)"}).status_code == 403
    assert Contact.objects.get(pk=shared_contact.pk).custom_name == ""

    delete_url = reverse("admin:contacts_contact_delete", args=[shared_contact.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    confirm = client.post(url, {"action": "delete_selected", "_selected_action": [shared_contact.pk]})
    assert "business numbers you are not a member of" in confirm.content.decode()
    bulk = client.post(url, {"action": "delete_selected", "_selected_action": [shared_contact.pk], "post": "yes"})
    assert bulk.status_code == 403
    assert Contact.objects.filter(pk=shared_contact.pk).exists()

    # The contacts of their own number are theirs to rename.
    assert client.post(change_url(sales["contact"]), {"custom_name": "Our customer"}).status_code == 302
    assert Contact.objects.get(pk=sales["contact"].pk).custom_name == "Our customer"


def test_a_member_of_every_number_of_the_contact_may_merge_it(client, sales, support, shared_contact):
    user = staff_with("view", "change", member_of=sales["number"])
    support["number"].members.add(user)
    client.force_login(user)
    response = client.post(
        changelist(MODELS["contact"]),
        {"action": "merge_selected", "_selected_action": [sales["contact"].pk, shared_contact.pk]},
        follow=True,
    )
    assert "Merged 1 contact(s)" in flashed(response)
    assert Contact.objects.filter(pk__in=[sales["contact"].pk, shared_contact.pk]).count() == 1


def test_view_permission_alone_runs_no_writing_action(client, sales):
    other = ConversationFactory(number=sales["number"]).contact
    client.force_login(staff_with("view", member_of=sales["number"]))
    client.post(
        changelist(MODELS["contact"]), {"action": "merge_selected", "_selected_action": [sales["contact"].pk, other.pk]}
    )
    assert Contact.objects.filter(pk__in=[sales["contact"].pk, other.pk]).count() == 2
    BusinessNumber.objects.filter(pk=sales["number"].pk).update(needs_reauthorization=True)
    for action in ("check_connection", "sync_message_templates"):
        response = client.post(
            changelist(MODELS["number"]), {"action": action, "_selected_action": [sales["number"].pk]}, follow=True
        )
        assert "Sales line" not in flashed(response), action


# --- templates of a WhatsApp Business Account two teams' numbers share ------------------------------------

SANDBOX_TOKEN = "sales-line-token-for-the-sandbox"
SHARED_WABA = "318273645502211"


@pytest.fixture(scope="module")
def sandbox_url():
    """``manage.py meta_sandbox`` on a free port, accepting only the sales line's token; stopped by PID."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "meta_sandbox", "--port", str(port),
         "--webhook-url", "http://127.0.0.1:9/api/webhook",
         "--app-secret", "admin-sandbox-secret", "--access-token", SANDBOX_TOKEN, "--waba-id", SHARED_WABA],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.base",
             "DJANGO_READ_DOT_ENV_FILE": "0"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: SandboxControl(url).control("GET", "health"), timeout=30, what="sandbox")
        yield url
    finally:
        stop_process(process)


def test_a_template_sync_uses_the_token_of_the_members_own_number(client, settings, sandbox_url):
    settings.META_GRAPH_API_URL = sandbox_url
    sales = BusinessNumberFactory(name="Sales line", waba_id=SHARED_WABA, access_token=SANDBOX_TOKEN)
    support = BusinessNumberFactory(name="Support line", waba_id=SHARED_WABA, access_token="support-line-own-token")
    template = MessageTemplate.objects.create(waba_id=SHARED_WABA, name="old", language="en_US", status="APPROVED")
    client.force_login(staff_with("view", "change", member_of=sales))

    response = client.post(
        changelist(MODELS["template"]), {"action": "sync_from_meta", "_selected_action": [template.pk]}, follow=True
    )

    assert "template(s) synced" in flashed(response), flashed(response)
    # The support line's token was not used (Meta would have refused it and flagged that line).
    support.refresh_from_db()
    assert not support.needs_reauthorization

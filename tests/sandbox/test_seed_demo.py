"""``manage.py seed_demo``: the demo's photo and invoice are uploaded to the Graph API (the sandbox under
``make run``) before their webhooks name them, so both are downloaded and shown; with no Graph API to take
them they are left out rather than shown as unavailable."""

from io import StringIO

import pytest
from django.core.management import call_command

from conversations.models import Conversation, MediaFile, MediaState, Message
from sandbox.management.commands.seed_demo import demo_photo, invoice_pdf

pytestmark = pytest.mark.django_db(transaction=True)  # the downloads are enqueued when each webhook commits


def seed() -> tuple[str, str]:
    """What ``seed_demo`` writes to stdout and to stderr."""
    output, errors = StringIO(), StringIO()
    call_command("seed_demo", stdout=output, stderr=errors)
    return output.getvalue(), errors.getvalue()


def test_the_demo_photo_and_invoice_are_downloaded_from_the_sandbox(meta_sandbox):
    output, errors = seed()
    assert errors == ""
    # Not on a terminal: plain progress lines, a tenth of the nine deliveries (rounded up) apart.
    progress = [line for line in output.splitlines() if line.startswith("  delivered ")]
    assert [line.split()[1] for line in progress] == [f"{n}/9" for n in range(1, 10)]
    assert progress[-1].startswith("  delivered 9/9 webhooks, 100%, ")
    photo = MediaFile.objects.get(message__type="image")
    invoice = MediaFile.objects.get(message__type="document")
    assert (photo.state, invoice.state) == (MediaState.READY, MediaState.READY), (photo.error, invoice.error)
    assert photo.file.read() == demo_photo() and invoice.file.read() == invoice_pdf()
    assert invoice.filename == "invoice-4790.pdf"
    assert Message.objects.get(type="image").body == "The box arrived damaged"


def test_without_a_graph_api_to_take_them_the_demo_files_are_left_out(settings):
    settings.META_GRAPH_API_URL = "http://127.0.0.1:9"  # nothing listens there
    output, errors = seed()
    assert "The demo image is left out" in errors and "The demo document is left out" in errors
    assert "  delivered 7/7 webhooks, 100%, " in output
    assert not MediaFile.objects.exists()
    assert Conversation.objects.count() == 4
    assert Message.objects.filter(body="The total looks wrong to me, can someone check?").exists()

"""Media in an S3-compatible bucket (MEDIA_S3_BUCKET): stored through Django's storage API, private, and
served to members through the app. The bucket is a real S3-compatible server (moto) on a free port. What
the app serves for the browser to show, and what only as a download."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import timezone

from conversations.models import MediaFile, MediaState
from tests.e2e.conftest import free_port, stop_process, wait_for
from tests.factories import ContactFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db

BUCKET = "inbox-media"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(endpoint, timeout=1).status_code < 500, timeout=30, what="moto S3 server")
        boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        stop_process(server)


@pytest.fixture
def s3_storage(s3_endpoint, settings):
    storages = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "access_key": "test",
                "secret_key": "test",
                "default_acl": "private",
                "file_overwrite": False,
            },
        },
        "staticfiles": settings.STORAGES["staticfiles"],
    }
    with override_settings(STORAGES=storages):
        yield boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS)


def test_an_attachment_is_stored_privately_in_the_bucket_and_served_to_members(
    s3_storage, api, client, staff, number, monkeypatch
):
    monkeypatch.setattr("conversations.tasks.deliver_outbound_message_task.delay", lambda *args: None)
    conversation = ConversationFactory(
        number=number, contact=ContactFactory(), last_inbound_at=timezone.now() - timedelta(minutes=1)
    )
    pdf = b"%PDF-1.4 invoice"
    response = api.post(
        f"/api/conversations/{conversation.pk}/messages/",
        {"file": SimpleUploadedFile("invoice.pdf", pdf, content_type="application/pdf")},
        format="multipart",
    )
    assert response.status_code == 202
    media = MediaFile.objects.get()
    [stored] = s3_storage.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert stored["Key"] == media.file.name
    assert s3_storage.get_object(Bucket=BUCKET, Key=stored["Key"])["Body"].read() == pdf
    grants = s3_storage.get_object_acl(Bucket=BUCKET, Key=stored["Key"])["Grants"]
    assert all(g["Grantee"].get("URI", "").endswith("AllUsers") is False for g in grants), "never public"
    client.force_login(staff)
    served = client.get(response.json()["media"]["url"])
    assert served.status_code == 200 and b"".join(served.streaming_content) == pdf


@pytest.mark.parametrize(
    ("declared", "served_as", "disposition"),
    [
        ("image/jpeg", "image/jpeg", "inline"),
        ("image/png", "image/png", "inline"),
        ("image/webp", "image/webp", "inline"),
        ("image/gif", "image/gif", "inline"),
        ("audio/ogg; codecs=opus", "audio/ogg", "inline"),
        ("video/mp4", "video/mp4", "inline"),
        # What the customer calls an image or a video is not shown in the page unless it is one of these.
        ("image/svg+xml", "image/svg+xml", "attachment"),
        ("image/x-icon", "image/x-icon", "attachment"),
        ("video/x-ms-asf", "video/x-ms-asf", "attachment"),
        ("audio/x-scpls", "audio/x-scpls", "attachment"),
        ("text/html", "text/html", "attachment"),
        ("application/pdf", "application/pdf", "attachment"),
    ],
)
def test_media_is_shown_inline_only_for_raster_images_audio_and_video(
    client, staff, number, declared, served_as, disposition
):
    message = MessageFactory(conversation=ConversationFactory(number=number, contact=ContactFactory()), type="image")
    media = MediaFile.objects.create(message=message, mime_type=declared, filename="file", state=MediaState.READY)
    media.file.save("file", ContentFile(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'))
    client.force_login(staff)
    response = client.get(f"/media/{message.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == served_as
    assert response["Content-Disposition"].startswith(disposition)
    assert response["X-Content-Type-Options"] == "nosniff"

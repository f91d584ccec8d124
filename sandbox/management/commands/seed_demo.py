"""``manage.py seed_demo``: an admin login, a business number and a few conversations, so a fresh
``make run`` opens onto an inbox with something in it.

Idempotent: the superuser is created only when there is none, the number is looked up by its
phone_number_id, and demo conversations are added only to the demo number and only while it has none.
The conversations are real webhook deliveries (built by ``sandbox.simulation``) stored and processed
by the same services as Meta's, so the demo data is exactly what the pipeline makes of them.

The demo's photo and invoice are made here and uploaded through the Graph API first (under ``make run``
that is the Meta sandbox, started before this command), so their webhooks name media ids that the Graph
API serves and the download that follows finds them. Media the Graph API would not take is left out.
"""

import base64
import hashlib
import random
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from conversations.graph_api import GraphClient, GraphError
from conversations.models import BusinessNumber, Conversation
from ops.progress import progress
from sandbox.customers import png_bytes
from sandbox.simulation import (
    DEMO_DISPLAY_PHONE_NUMBER,
    DEMO_PHONE_NUMBER_ID,
    DEMO_WABA_ID,
    envelope,
    message_change,
    to_wire,
)
from webhooks.drain import process_webhook_event
from webhooks.models import WebhookEventState
from webhooks.services import store_webhook_event

DEMO_NUMBER = {
    "phone_number_id": DEMO_PHONE_NUMBER_ID,
    "display_phone_number": DEMO_DISPLAY_PHONE_NUMBER,
    "waba_id": DEMO_WABA_ID,
    "name": "Demo support line",
}

# (wa_id, profile name, [(minutes ago, Meta message type, type-specific content or None for the sample)])
DEMO_CONVERSATIONS = [
    (
        "447700900123",
        "Priya Shah",
        [
            (185, "text", {"text": {"body": "Hi! Is my order #4821 on its way? 🙂"}}),
            (182, "image", {"image": {"caption": "The box arrived damaged"}}),
            (181, "text", {"text": {"body": "Could you send a replacement?"}}),
        ],
    ),
    (
        "5511987650042",
        "Ana Lima",
        [
            (95, "text", {"text": {"body": "Olá! Do you deliver to São Paulo?"}}),
            (
                93,
                "location",
                {
                    "location": {
                        "latitude": -23.5614,
                        "longitude": -46.6559,
                        "name": "MASP",
                        "address": "Av. Paulista, 1578 - Bela Vista, São Paulo",
                    }
                },
            ),
        ],
    ),
    (
        "4915112345678",
        "Tom Becker",
        [
            (40, "text", {"text": {"body": "Hello, I'd like to book a repair appointment."}}),
            (
                36,
                "interactive",
                {
                    "interactive": {
                        "type": "button_reply",
                        "button_reply": {"id": "slot-tue-10", "title": "Tuesday 10:00"},
                    }
                },
            ),
        ],
    ),
    (
        "2348031234567",
        "Amara Okafor",
        [
            (6, "document", {"document": {"filename": "invoice-4790.pdf", "caption": "Invoice for last month"}}),
            (5, "text", {"text": {"body": "The total looks wrong to me, can someone check?"}}),
        ],
    ),
]


class Command(BaseCommand):
    help = "Create a demo admin login, a business number and a few demo conversations (idempotent)."

    def handle(self, *args, **options):
        admin, password = self._ensure_admin()
        number, is_demo = self._ensure_number()
        if admin is not None:
            number.members.add(admin)

        created = 0
        if is_demo and not Conversation.objects.filter(number=number).exists():
            created = self._seed_conversations(number=number)

        conversations = Conversation.objects.filter(number=number).count()
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        label = f"{number.name} (+{number.display_phone_number})" if number.name else f"+{number.display_phone_number}"
        self.stdout.write(f"  Business number: {label}, phone_number_id {number.phone_number_id}")
        if created:
            self.stdout.write(f"  Conversations:   {conversations} (created from {created} simulated webhooks)")
        else:
            self.stdout.write(f"  Conversations:   {conversations}")
        base_url = f"http://localhost:{settings.PORT}"
        url = f"{base_url}/admin/"
        if admin is None:
            self.stdout.write(f"  Admin login:     {url}")
        elif password is None:
            self.stdout.write(f"  Admin login:     {url}  username {admin.get_username()}  (password unchanged)")
        else:
            self.stdout.write(f"  Admin login:     {url}  username {admin.get_username()}  password {password}")
        self.stdout.write(f"  Inbox:           {base_url}/  (same login)")

    def _ensure_admin(self):
        """The superuser to show and add to the number, and its password when it is the demo one."""
        User = get_user_model()
        password = settings.DEMO_ADMIN_PASSWORD
        admin = User.objects.filter(is_superuser=True).order_by("pk").first()
        if admin is None:
            admin = User.objects.create_superuser(username="admin", email="", password=password)
            return admin, password
        # Only show a password we know to be current; a changed one is the user's own business.
        return admin, (password if admin.check_password(password) else None)

    def _ensure_number(self) -> tuple[BusinessNumber, bool]:
        """The configured Meta number if ``META_PHONE_NUMBER_ID`` is set, else the demo number."""
        if not settings.META_PHONE_NUMBER_ID:
            number, _ = BusinessNumber.objects.get_or_create(
                phone_number_id=DEMO_NUMBER["phone_number_id"],
                defaults={key: value for key, value in DEMO_NUMBER.items() if key != "phone_number_id"},
            )
            return number, True
        number, _ = BusinessNumber.objects.get_or_create(
            phone_number_id=settings.META_PHONE_NUMBER_ID,
            defaults={"display_phone_number": settings.META_DISPLAY_PHONE_NUMBER or settings.META_PHONE_NUMBER_ID},
        )
        # Only what the environment provides; a token entered in the admin is not wiped by an empty variable.
        changes = {
            "display_phone_number": settings.META_DISPLAY_PHONE_NUMBER,
            "waba_id": settings.META_BUSINESS_ACCOUNT_ID,
            "access_token": settings.META_ACCESS_TOKEN,
        }
        changed = [field for field, value in changes.items() if value and getattr(number, field) != value]
        for field in changed:
            setattr(number, field, changes[field])
        if changed:
            number.save(update_fields=changed)
        return number, False

    def _seed_conversations(self, *, number: BusinessNumber) -> int:
        """Deliver each demo message as its own webhook through the real pipeline; returns how many."""
        now = int(time.time())
        media = {kind: self._upload(number=number, kind=kind) for kind in DEMO_MEDIA}
        planned = [
            (wa_id, name, minutes_ago, message_type, content)
            for wa_id, name, messages in DEMO_CONVERSATIONS
            for minutes_ago, message_type, content in messages
            if message_type not in DEMO_MEDIA or media[message_type] is not None
        ]
        with progress(self.stdout, total=len(planned), desc="delivered", unit="webhook") as bar:
            for wa_id, name, minutes_ago, message_type, content in planned:
                if message_type in DEMO_MEDIA:
                    content = {message_type: {**content[message_type], **media[message_type]}}
                payload = envelope(
                    waba_id=number.waba_id or DEMO_NUMBER["waba_id"],
                    changes=[
                        message_change(
                            phone_number_id=number.phone_number_id,
                            display_phone_number=number.display_phone_number,
                            wa_id=wa_id,
                            name=name,
                            message_type=message_type,
                            timestamp=now - minutes_ago * 60,
                            content=content,
                        )
                    ],
                )
                with transaction.atomic():
                    event_id = store_webhook_event(raw_body=to_wire(payload), payload=payload, signature="")
                # Processed here rather than left to Celery, so the data is there whether or not a worker
                # runs; the task the commit enqueued finds the event already processed and does nothing.
                processed = process_webhook_event(event_id=event_id)
                if processed is not None and (processed.state != WebhookEventState.PROCESSED or processed.item_errors):
                    problem = f"webhook event {event_id}: {processed.state} {processed.item_errors}"
                    bar.message(problem, stream=self.stderr)
                bar.update()
        return len(planned)

    def _upload(self, *, number: BusinessNumber, kind: str) -> dict | None:
        """The webhook fields of a demo file uploaded through the Graph API, or ``None`` (said on stderr)."""
        filename, mime_type, make = DEMO_MEDIA[kind]
        content = make()
        client = GraphClient.for_number(number)
        try:
            media_id = client.upload_media(
                phone_number_id=number.phone_number_id, content=content, mime_type=mime_type, filename=filename
            )
        except GraphError as error:
            self.stderr.write(f"The demo {kind} is left out: {client.base_url} did not take it ({error}).")
            return None
        # Webhooks carry the base64 form of the digest.
        sha256 = base64.b64encode(hashlib.sha256(content).digest()).decode()
        return {"id": media_id, "mime_type": mime_type, "sha256": sha256}


def demo_photo() -> bytes:
    return png_bytes(width=192, height=144, rng=random.Random(4821))


def invoice_pdf() -> bytes:
    """A one-page PDF invoice (no PDF library: five objects and their cross-reference table)."""
    lines = [
        "Invoice 4790",
        "Amara Okafor",
        "2 x Desk lamp       NGN 38,000",
        "Delivery            NGN  4,500",
        "Total               NGN 46,000",
    ]
    text = "".join(f"BT /F1 14 Tf 72 {720 - 24 * n} Td ({line}) Tj ET\n" for n, line in enumerate(lines)).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%sendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(pdf)


# Meta message type -> (file name, MIME type, how to make the file)
DEMO_MEDIA = {
    "image": ("damaged-box.png", "image/png", demo_photo),
    "document": ("invoice-4790.pdf", "application/pdf", invoice_pdf),
}

"""Sending from outside the inbox page (``manage.py send_message``): address a customer by phone number,
queue the message through the same outbox as the composer (``outbound.send_text`` / ``send_template``),
and wait for the worker's answer from Meta.
"""

import time
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from contacts.models import Contact
from contacts.phones import ASCII_DIGITS, digits_of, same_person_key
from contacts.services import Sender, resolve_contacts
from conversations.models import BusinessNumber, Message, MessageStatus, MessageTemplate
from conversations.services.errors import SendRefused
from conversations.services.inbound import get_or_create_conversation
from conversations.services.outbound import send_template, send_text


@dataclass(frozen=True)
class QueuedMessage:
    message: Message
    contact_created: bool


# Tolerated between the digits of a phone number typed on the command line.
PHONE_FORMATTING = frozenset(" -.()")


def wa_id_from_input(value: str) -> str:
    """Digits, or ``+`` and digits (E.164); spaces, dashes, dots and brackets are tolerated."""
    body = value.strip().removeprefix("+")
    if not body or any(ch not in ASCII_DIGITS and ch not in PHONE_FORMATTING for ch in body):
        raise ValueError(f"not a phone number: {value!r} (digits, or +E.164)")
    digits = digits_of(body)
    if not 7 <= len(digits) <= 15:
        raise ValueError(f"not a phone number: {value!r} (E.164 has 7 to 15 digits)")
    return digits


def find_contact_for_wa_id(*, wa_id: str) -> Contact | None:
    """The contact with this wa_id, else the one WhatsApp knows under a variant of it (Brazil's extra 9,
    Mexico's 521): replies must go to the wa_id Meta gave us, not to the digits someone typed."""
    exact = Contact.objects.filter(wa_id=wa_id).first()
    if exact is not None:
        return exact
    key = same_person_key(wa_id)
    candidates = Contact.objects.filter(phone__endswith=key[-8:]).exclude(wa_id__isnull=True)
    return next((c for c in candidates.order_by("pk") if same_person_key(digits_of(c.wa_id)) == key), None)


@transaction.atomic
def send_message_to_phone(
    *,
    phone_number_id: str,
    to: str,
    text: str | None = None,
    template_name: str | None = None,
    language: str = "en_US",
    params: list[str] | tuple[str, ...] = (),
    username: str | None = None,
) -> QueuedMessage:
    """Queue a text or an approved template from a business number to a customer's phone number.

    Raises ``ValueError`` for bad input (unknown number, user or template, a malformed phone number) and
    ``SendRefused`` when the outbox refuses (closed 24-hour window, expired token, template parameters).
    Atomic: a refused send leaves no new contact or conversation behind. The worker sends after commit.
    """
    if (text is None) == (template_name is None):
        raise ValueError("give either a text or a template")
    number = BusinessNumber.objects.filter(phone_number_id=phone_number_id).first()
    if number is None:
        raise ValueError(f"unknown phone_number_id {phone_number_id!r} (see manage.py register_number)")
    user = _sender(username=username, number=number)
    wa_id = wa_id_from_input(to)
    template = None
    if template_name is not None:
        template = MessageTemplate.objects.filter(waba_id=number.waba_id, name=template_name, language=language).first()
        if template is None:
            raise ValueError(
                f"no template {template_name!r} ({language}) synced for WABA {number.waba_id or '-'}: "
                "check the name and language, or run manage.py sync_templates"
            )

    contact = find_contact_for_wa_id(wa_id=wa_id)
    contact_created = contact is None
    if contact is None:
        [contact] = resolve_contacts(senders=[Sender(wa_id=wa_id, user_id=None)])
    conversation = get_or_create_conversation(number=number, contact=contact, at=timezone.now())
    if template is not None:
        message = send_template(user=user, conversation=conversation, template=template, params=list(params))
    else:
        try:
            message = send_text(user=user, conversation=conversation, text=text or "")
        except SendRefused as refusal:
            if refusal.code == "window_closed" and conversation.last_inbound_at is None:
                raise SendRefused(
                    refusal.code,
                    f"{contact.display_name} has never written to this number, so only a template can start "
                    "the conversation: use --template NAME (see manage.py sync_templates).",
                ) from refusal
            raise
    return QueuedMessage(message=message, contact_created=contact_created)


def _sender(*, username: str | None, number: BusinessNumber):
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValueError(f"unknown user {username!r}")
    if not user.is_superuser and not number.members.filter(pk=user.pk).exists():
        raise ValueError(f"{username} is not a member of {number} and may not send from it")
    return user


def wait_for_message_outcome(*, message_id: int, timeout: float, interval: float = 0.25) -> Message:
    """The message once it has left ``pending`` (sent, failed, ...), or as it is when ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        message = Message.objects.get(pk=message_id)
        if message.status != MessageStatus.PENDING or time.monotonic() >= deadline:
            return message
        time.sleep(interval)

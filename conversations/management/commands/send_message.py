"""``manage.py send_message``: send a WhatsApp text or template from a business number to a phone number,
through the same outbox as the inbox (the worker sends it), and wait for Meta's answer. Examples::

    manage.py send_message --number 106540352240001 --to +447700900461 --text "Your order shipped"
    manage.py send_message --number 106540352240001 --to 5511987654321 --template order_update \\
        --language en_US --param Amara --param "#42" --as ana

A text needs the customer's 24-hour window open (they wrote in the last 24 hours); to start a
conversation, send a template. A refusal exits non-zero with the reason.
"""

from django.core.management.base import BaseCommand, CommandError

from conversations.models import MessageStatus
from conversations.services.errors import SendRefused
from conversations.services.sending import send_message_to_phone, wait_for_message_outcome


class Command(BaseCommand):
    help = "Queue a text (--text) or template (--template) to a customer and wait for the outcome (--wait seconds)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--number", required=True, metavar="PHONE_NUMBER_ID", help="The business number to send from."
        )
        parser.add_argument("--to", required=True, metavar="WA_ID", help="The customer: digits or +E.164.")
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--text", help="A text message (only inside the customer's 24-hour window).")
        what.add_argument("--template", metavar="NAME", help="An approved template (synced with sync_templates).")
        parser.add_argument("--language", default="en_US", help="The template's language (default: %(default)s).")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="VALUE",
            help="A template body value, in order (repeatable).",
        )
        parser.add_argument("--as", dest="username", metavar="USERNAME", help="Record this staff member as the sender.")
        parser.add_argument(
            "--wait",
            type=float,
            default=15.0,
            help="Seconds to wait for the message to leave pending; 0 = don't (default: 15).",
        )

    def handle(self, *args, **options):
        if options["wait"] < 0:
            raise CommandError("--wait must not be negative")
        if options["param"] and not options["template"]:
            raise CommandError("--param goes with --template")
        try:
            queued = send_message_to_phone(
                phone_number_id=options["number"],
                to=options["to"],
                text=options["text"],
                template_name=options["template"],
                language=options["language"],
                params=options["param"],
                username=options["username"],
            )
        except SendRefused as refusal:
            raise CommandError(f"refused ({refusal.code}): {refusal.detail}") from refusal
        except ValueError as error:
            raise CommandError(str(error)) from error

        message = queued.message
        contact = message.conversation.contact
        new = " (new contact)" if queued.contact_created else ""
        self.stdout.write(
            f"Queued {message.type} message {message.pk} to {contact.display_name} +{contact.wa_id}{new}."
        )
        if not options["wait"]:
            self.stdout.write(f"Status: {message.status} (not waiting).")
            return
        self.stdout.write(f"Waiting up to {options['wait']:g}s for Meta's answer…")
        message = wait_for_message_outcome(message_id=message.pk, timeout=options["wait"])
        if message.status == MessageStatus.PENDING and message.wamid:
            # Meta accepted it (the send answered a wamid); only its status webhook has not arrived here yet.
            self.stdout.write(f"Status: accepted by Meta, wamid {message.wamid}")
            self.stderr.write(
                self.style.WARNING(
                    f"No status webhook after {options['wait']:g}s: is Meta's webhook reaching /api/webhook "
                    "(see manage.py check_meta)?"
                )
            )
            return
        if message.status == MessageStatus.PENDING:
            raise CommandError(
                f"message {message.pk} still pending after {options['wait']:g}s ({message.send_attempts} attempt(s)); "
                "is the Celery worker running? It stays queued and goes out when a worker takes it."
            )
        if message.status == MessageStatus.UNCONFIRMED:
            raise CommandError(
                f"message {message.pk}: Meta's answer to the send was lost, so it may or may not have gone out; it is "
                "not resent by itself. A status webhook still confirms it; otherwise send it again or discard it in "
                "the inbox."
            )
        if message.status == MessageStatus.FAILED:
            raise CommandError(
                f"message {message.pk} failed: {message.error_code or '-'} {message.error_title}".rstrip()
            )
        self.stdout.write(f"Status: {message.status}, wamid {message.wamid}")

"""``manage.py register_number``: register (or update) a business number, after Meta confirms the token may
use it. Options default to the ``META_*`` settings. The access token is never printed. Examples::

    manage.py register_number                                   # everything from META_* settings
    manage.py register_number --phone-number-id 1065… --waba-id 3182… --access-token EAAG… --member ana
    manage.py register_number --phone-number-id 1065… --display-phone-number 15550781234 --no-verify
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from conversations.services.numbers import NumberVerificationFailed, register_number


class Command(BaseCommand):
    help = (
        "Register or update a WhatsApp Business number from META_* settings or options, checked first with "
        "Meta (GET /{phone-number-id} with the token)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--phone-number-id",
            default=settings.META_PHONE_NUMBER_ID,
            help="Meta's phone number id (default: META_PHONE_NUMBER_ID).",
        )
        parser.add_argument(
            "--display-phone-number",
            default=settings.META_DISPLAY_PHONE_NUMBER,
            help="Digits as customers dial it (default: META_DISPLAY_PHONE_NUMBER, else what Meta reports).",
        )
        parser.add_argument(
            "--waba-id",
            default=settings.META_BUSINESS_ACCOUNT_ID,
            help="WhatsApp Business Account id (default: META_BUSINESS_ACCOUNT_ID); needed for templates.",
        )
        parser.add_argument("--name", default="", help="A name for the inbox (default: keep, or none).")
        parser.add_argument(
            "--access-token",
            default=settings.META_ACCESS_TOKEN,
            help="The number's Graph API token (default: META_ACCESS_TOKEN). Never printed.",
        )
        parser.add_argument(
            "--member", action="append", default=[], metavar="USERNAME", help="Give this user the inbox (repeatable)."
        )
        parser.add_argument("--no-verify", action="store_true", help="Do not ask Meta first (not recommended).")

    def handle(self, *args, **options):
        if not options["phone_number_id"]:
            raise CommandError("no phone number id: pass --phone-number-id or set META_PHONE_NUMBER_ID")
        if options["no_verify"]:
            self.stderr.write(
                self.style.WARNING("Warning: --no-verify: the number and token were NOT checked with Meta.")
            )
        else:
            self.stdout.write(f"Checking phone number id {options['phone_number_id']} with the Graph API…")
        try:
            registered = register_number(
                phone_number_id=options["phone_number_id"],
                display_phone_number=options["display_phone_number"],
                waba_id=options["waba_id"],
                name=options["name"],
                access_token=options["access_token"],
                member_usernames=options["member"],
                verify=not options["no_verify"],
            )
        except NumberVerificationFailed as failure:
            raise CommandError(f"not registered: {failure.detail}") from failure
        except ValidationError as error:
            raise CommandError(f"not registered: {'; '.join(error.messages)}") from error
        except ValueError as error:
            raise CommandError(f"not registered: {error}") from error

        number, profile = registered.number, registered.profile
        self.stdout.write(f"{'Registered' if registered.created else 'Updated'} business number {number.pk}:")
        self.stdout.write(f"  phone number id:   {number.phone_number_id}")
        self.stdout.write(f"  display number:    {number.display_phone_number}")
        self.stdout.write(f"  name:              {number.name or '-'}")
        self.stdout.write(f"  WABA id:           {number.waba_id or '- (templates need one: --waba-id)'}")
        self.stdout.write(
            f"  access token:      {'set' if number.access_token else 'not set (uses META_ACCESS_TOKEN)'}"
        )
        self.stdout.write(f"  members:           {', '.join(registered.members) or '-'}")
        if profile is not None:
            self.stdout.write(
                f"  Meta:              verified name {profile.verified_name or '-'}, "
                f"display {profile.display_phone_number or '-'}, quality {profile.quality_rating or '-'}"
            )
        else:
            self.stdout.write("  Meta:              not checked (--no-verify)")

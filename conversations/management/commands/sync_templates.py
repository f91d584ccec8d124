"""``manage.py sync_templates``: copy the approved message templates of each number's WABA from Meta."""
from django.core.management.base import BaseCommand, CommandError

from conversations.graph_api import GraphError
from conversations.models import BusinessNumber
from conversations.services.errors import RetryLater
from conversations.services.templates import sync_templates


class Command(BaseCommand):
    help = "Sync message templates from Meta for every business number (or the ones given with --number)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--number", action="append", default=[], metavar="PHONE_NUMBER_ID", help="Only this number (repeatable)."
        )

    def handle(self, *args, **options):
        numbers = BusinessNumber.objects.order_by("pk")
        if options["number"]:
            numbers = numbers.filter(phone_number_id__in=options["number"])
            missing = set(options["number"]) - set(numbers.values_list("phone_number_id", flat=True))
            if missing:
                raise CommandError(f"unknown phone_number_id: {', '.join(sorted(missing))}")
        if not numbers.exists():
            raise CommandError("no business numbers registered")
        failed = 0
        for number in numbers:
            try:
                count = sync_templates(number=number)
            except (GraphError, RetryLater, ValueError) as error:
                failed += 1
                self.stderr.write(f"{number}: {error}")
                continue
            self.stdout.write(f"{number}: {count} template(s)")
        if failed:
            raise CommandError(f"{failed} number(s) could not be synced")

"""``manage.py sync_templates``: copy the approved message templates of each number's WABA from Meta."""
from django.core.management.base import BaseCommand, CommandError

from conversations.graph_api import GraphError
from conversations.management.number_option import add_number_option, selected_numbers
from conversations.services.errors import RetryLater
from conversations.services.templates import sync_templates


class Command(BaseCommand):
    help = "Sync message templates from Meta for every business number (or the ones given with --number)."

    def add_arguments(self, parser):
        add_number_option(parser)

    def handle(self, *args, **options):
        numbers = selected_numbers(options["number"])
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

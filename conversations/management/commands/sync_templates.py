"""``manage.py sync_templates``: copy the approved message templates of each number's WABA from Meta."""

from django.core.management.base import BaseCommand, CommandError

from conversations.graph_api import GraphError
from conversations.management.number_option import add_number_option, selected_numbers
from conversations.services.errors import RetryLater
from conversations.services.templates import sync_templates
from ops.progress import progress


class Command(BaseCommand):
    help = "Sync message templates from Meta for every business number (or the ones given with --number)."

    def add_arguments(self, parser):
        add_number_option(parser)

    def handle(self, *args, **options):
        numbers = selected_numbers(options["number"])
        failed = templates = 0
        with progress(self.stdout, total=len(numbers), desc="synced", unit="number") as bar:
            for number in numbers:
                try:
                    count = sync_templates(number=number)
                except (GraphError, RetryLater, ValueError) as error:
                    failed += 1
                    bar.message(f"{number}: {error}", stream=self.stderr)
                else:
                    templates += count
                    if options["verbosity"] >= 2:
                        bar.message(f"{number}: {count} template(s)")
                bar.update()
        self.stdout.write(f"{templates} template(s) from {len(numbers) - failed} of {len(numbers)} number(s).")
        if failed:
            raise CommandError(f"{failed} number(s) could not be synced")

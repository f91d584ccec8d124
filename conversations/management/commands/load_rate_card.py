"""``manage.py load_rate_card <csv>``: Meta's rates, priced on the cost page."""

from django.core.management.base import BaseCommand, CommandError

from conversations.services.rate_card import RateCardInvalid, load_rate_card


class Command(BaseCommand):
    help = (
        "Load a rate card from a CSV with a header: country (ISO 3166 alpha-2 such as BR, or a calling code such as "
        "+55 for every country of that code without a row of its own), category (marketing, utility, "
        "authentication, authentication_international, service), price (per delivered message, 6 decimals at "
        "most), currency (ISO 4217, such as USD), valid_from (YYYY-MM-DD) and optionally valid_to (YYYY-MM-DD, "
        "not included). A line of the same country, category and valid_from replaces the stored one. A bad line "
        "stops the load with its line and field named, and nothing is saved."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv", help="path of the CSV file")

    def handle(self, *args, **options):
        try:
            with open(options["csv"], newline="", encoding="utf-8-sig") as source:
                loaded = load_rate_card(source=source)
        except OSError as error:
            raise CommandError(f"{options['csv']}: {error.strerror}") from None
        except RateCardInvalid as error:
            raise CommandError(f"Nothing loaded: line {error.line}, {error.field}: {error.detail}") from None
        self.stdout.write(f"Loaded {loaded} rate(s).")

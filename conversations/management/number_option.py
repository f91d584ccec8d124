"""The ``--number PHONE_NUMBER_ID`` option shared by the commands that work number by number."""

from django.core.management.base import CommandError

from conversations.models import BusinessNumber


def add_number_option(parser) -> None:
    parser.add_argument(
        "--number", action="append", default=[], metavar="PHONE_NUMBER_ID", help="Only this number (repeatable)."
    )


def selected_numbers(phone_number_ids: list[str]) -> list[BusinessNumber]:
    """The numbers asked for (every one when none is), or a ``CommandError`` naming what is unknown."""
    numbers = BusinessNumber.objects.order_by("pk")
    if phone_number_ids:
        numbers = numbers.filter(phone_number_id__in=phone_number_ids)
        missing = set(phone_number_ids) - {n.phone_number_id for n in numbers}
        if missing:
            raise CommandError(f"unknown phone_number_id: {', '.join(sorted(missing))}")
    numbers = list(numbers)
    if not numbers:
        raise CommandError("no business numbers registered (see manage.py register_number)")
    return numbers

"""``manage.py purge_webhook_events``: delete old webhook events that are done with (processed, unroutable;
failed only with ``--include-failed``; pending never), in batches. Examples::

    manage.py purge_webhook_events --older-than 30d --dry-run
    manage.py purge_webhook_events --older-than 12h --include-failed
    manage.py purge_webhook_events --older-than 2026-01-01
"""

import re
from datetime import datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ops.progress import progress
from webhooks.selectors import count_purgeable_webhook_events
from webhooks.services import purge_webhook_events

DURATION = re.compile(r"^(\d+)([dh])$")


class Command(BaseCommand):
    help = (
        "Delete processed/unroutable webhook events received before --older-than (Nd, Nh or an ISO date); "
        "failed ones only with --include-failed, pending ones never."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            required=True,
            metavar="AGE|DATE",
            help="30d, 12h, or an ISO 8601 date/datetime (UTC if naive).",
        )
        parser.add_argument("--include-failed", action="store_true", help="Delete failed events too.")
        parser.add_argument("--batch-size", type=int, default=1000, help="Events per DELETE (default: %(default)s).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")

    def handle(self, *args, **options):
        before = parse_cutoff(options["older_than"])
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        include_failed = options["include_failed"]
        counts = count_purgeable_webhook_events(before=before, include_failed=include_failed)
        total = sum(counts.values())
        detail = ", ".join(f"{state} {n}" for state, n in counts.items()) or "none"
        self.stdout.write(
            f"Webhook events received before {before:%Y-%m-%d %H:%M:%S %Z}: {total} to delete ({detail})."
        )
        if options["dry_run"]:
            self.stdout.write(f"Dry run: {total} event(s) would be deleted; nothing changed.")
            return
        with progress(self.stdout, total=total, desc="deleted", unit="event") as bar:
            deleted = purge_webhook_events(
                before=before, include_failed=include_failed, batch_size=options["batch_size"], on_batch=bar.update
            )
        self.stdout.write(f"Purged {deleted} webhook event(s).")


def parse_cutoff(value: str) -> datetime:
    """``30d``/``12h`` before now, or an ISO date (its start) / datetime."""
    match = DURATION.match(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return timezone.now() - (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime.combine(day, time.min) if day is not None else None
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"--older-than: {value!r} is not an age like 30d or 12h, nor an ISO 8601 date")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    if moment > timezone.now():
        raise CommandError(f"--older-than: {value!r} is in the future")
    return moment

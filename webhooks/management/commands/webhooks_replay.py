"""``manage.py webhooks_replay``: process stored webhook events again (after a fix, or a new business number).

Processing is idempotent, so replaying an event that was already applied changes nothing twice. Examples::

    manage.py webhooks_replay --failed --dry-run
    manage.py webhooks_replay --unroutable --since 2026-01-01
    manage.py webhooks_replay --id 41 --id 42 --sync
"""

from datetime import datetime, time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ops.progress import progress
from webhooks.drain import process_webhook_event
from webhooks.models import WebhookEvent
from webhooks.selectors import select_webhook_event_ids
from webhooks.services import replay_webhook_events


class Command(BaseCommand):
    help = (
        "Re-process stored webhook events. --id/--failed/--unroutable/--with-errors add events (OR); "
        "--since/--until restrict them to a received_at window (or select the whole window alone)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--id", dest="ids", type=int, action="append", default=[], metavar="N", help="Event id (repeatable)."
        )
        parser.add_argument("--failed", action="store_true", help="Events in state failed.")
        parser.add_argument("--unroutable", action="store_true", help="Events in state unroutable.")
        parser.add_argument("--with-errors", action="store_true", help="Events with item errors recorded.")
        parser.add_argument("--since", help="received_at on or after this ISO 8601 date/datetime (UTC if naive).")
        parser.add_argument("--until", help="received_at on or before this ISO 8601 date/datetime (UTC if naive).")
        parser.add_argument(
            "--sync",
            action="store_true",
            help="Process here, one by one, instead of enqueuing to the Celery worker.",
        )
        parser.add_argument("--dry-run", action="store_true", help="List the selected events; change nothing.")

    def handle(self, *args, **options):
        since = _parse_bound(options["since"], option="--since", end_of_day=False)
        until = _parse_bound(options["until"], option="--until", end_of_day=True)
        if since and until and since > until:
            raise CommandError("--since is after --until")
        ids = list(dict.fromkeys(options["ids"]))
        if not (ids or options["failed"] or options["unroutable"] or options["with_errors"] or since or until):
            raise CommandError("select events with --id, --failed, --unroutable, --with-errors or --since/--until")

        event_ids = select_webhook_event_ids(
            event_ids=ids,
            failed=options["failed"],
            unroutable=options["unroutable"],
            with_errors=options["with_errors"],
            since=since,
            until=until,
        )
        missing = sorted(set(ids) - set(WebhookEvent.objects.filter(pk__in=ids).values_list("pk", flat=True)))

        if options["dry_run"]:
            self._list(event_ids)
            self.stdout.write(f"Dry run: {len(event_ids)} event(s) would be replayed; nothing changed.")
        elif not event_ids:
            self.stdout.write("No events match; nothing replayed.")
        elif options["sync"]:
            self._replay_here(event_ids, verbose=options["verbosity"] >= 2)
        else:
            # replay_webhook_events enqueues on commit: the atomic block is what makes the hooks fire.
            with transaction.atomic():
                count = replay_webhook_events(event_ids=event_ids)
            eager = settings.CELERY_TASK_ALWAYS_EAGER
            where = "processed in this process (eager Celery)" if eager else "for the worker"
            self.stdout.write(f"Replay: {count} event(s) set pending and enqueued, {where}.")

        if missing:
            # Reported last, after the known ids were handled, so one typo does not block a whole replay.
            raise CommandError(f"unknown event id(s): {', '.join(map(str, missing))}")

    def _list(self, event_ids: list[int]) -> None:
        events = WebhookEvent.objects.filter(pk__in=event_ids).order_by("received_at", "pk")
        for event in events.only("pk", "received_at", "state", "phone_number_id", "attempts", "item_errors", "error"):
            error = event.error.splitlines()[0][:100] if event.error else ""
            self.stdout.write(
                f"  event {event.pk}  {event.received_at:%Y-%m-%dT%H:%M:%S%z}  {event.state:<10}  "
                f"number={event.phone_number_id or '-'}  attempts={event.attempts}  "
                f"item_errors={event.item_error_count}" + (f"  error={error}" if error else "")
            )

    def _replay_here(self, event_ids: list[int], *, verbose: bool) -> None:
        """Each event processed here; a line per event only for what went wrong (or with -v 2)."""
        outcomes: dict[str, int] = {}
        crashed = 0
        with progress(self.stdout, total=len(event_ids), desc="replayed", unit="event") as bar:
            for position, event_id in enumerate(event_ids, start=1):
                prefix = f"  [{position}/{len(event_ids)}] event {event_id}:"
                try:
                    event = process_webhook_event(event_id=event_id, force=True)
                except Exception as exc:  # report and go on: one broken event must not stop the replay
                    crashed += 1
                    bar.message(f"{prefix} {type(exc).__name__}: {exc}", stream=self.stderr)
                    bar.update()
                    continue
                if event is None:
                    outcome = "locked"
                    bar.message(f"{prefix} skipped, a worker is processing it right now")
                else:
                    outcome = event.state
                    if verbose:
                        errors = f" ({event.item_error_count} item error(s))" if event.item_errors else ""
                        bar.message(f"{prefix} {event.state}{errors}")
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                bar.update()
        summary = ", ".join(f"{state}: {n}" for state, n in sorted(outcomes.items())) or "none"
        done = len(event_ids) - crashed
        self.stdout.write(f"Replay: {done} of {len(event_ids)} event(s) processed here ({summary}).")
        if crashed:
            raise CommandError(f"{crashed} event(s) raised while processing; see above")


def _parse_bound(value: str | None, *, option: str, end_of_day: bool) -> datetime | None:
    """An ISO 8601 datetime, or a date meaning the start (``--since``) or end (``--until``) of that day."""
    if not value:
        return None
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            if day is not None:
                moment = datetime.combine(day, time.max if end_of_day else time.min)
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"{option}: {value!r} is not an ISO 8601 date or datetime")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment

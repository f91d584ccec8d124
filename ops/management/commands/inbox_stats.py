"""``manage.py inbox_stats``: how the inbox is doing right now: the Celery queue, webhook events (pending,
by state in the last 24 h, failed ever), traffic per business number, outbound messages stuck or failed.
``--json`` prints the same as one JSON object for scripts and monitoring. Examples::

    manage.py inbox_stats
    manage.py inbox_stats --json | jq .webhooks.pending
"""

import json

from django.core.management.base import BaseCommand

from ops.stats import InboxStats, collect_inbox_stats


class Command(BaseCommand):
    help = (
        "Queue depth, webhook event states, per-number traffic (24 h) and outbound pending/failed; --json for machines."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")

    def handle(self, *args, **options):
        stats = collect_inbox_stats()
        if options["json"]:
            self.stdout.write(json.dumps(_as_json(stats), indent=2))
            return
        self._as_text(stats)

    def _as_text(self, stats: InboxStats) -> None:
        depth = stats.celery_queue_depth if stats.celery_queue_depth is not None else stats.celery_queue_problem
        self.stdout.write(f"Inbox at {stats.at:%Y-%m-%d %H:%M:%S %Z}, read from the {stats.database}")
        self.stdout.write(f"Celery queue depth: {depth}")
        age = stats.oldest_pending_webhook_age_seconds
        oldest = f"{age:.0f}s" if age is not None else "-"
        self.stdout.write(
            f"Webhook events: {stats.pending_webhooks} pending (oldest {oldest}), {stats.failed_webhooks_ever} failed ever"
        )
        by_state = ", ".join(f"{state} {count}" for state, count in stats.webhooks_by_state_24h.items())
        self.stdout.write(f"  last 24 h: {by_state}")
        self.stdout.write(f"Outbound messages: {stats.outbound_pending} pending, {stats.outbound_failed} failed")
        self.stdout.write(f"Numbers ({len(stats.numbers)}):")
        for number in stats.numbers:
            self.stdout.write(
                f"  {number.phone_number_id} {number.name}: {number.conversations} conversation(s); last 24 h "
                f"{number.messages_in_24h} in, {number.messages_out_24h} out"
            )


def _as_json(stats: InboxStats) -> dict:
    return {
        "at": stats.at.isoformat(),
        "database": stats.database,
        "celery": {"queue_depth": stats.celery_queue_depth, "note": stats.celery_queue_problem or None},
        "webhooks": {
            "pending": stats.pending_webhooks,
            "oldest_pending_at": stats.oldest_pending_webhook_at.isoformat()
            if stats.oldest_pending_webhook_at
            else None,
            "oldest_pending_age_seconds": stats.oldest_pending_webhook_age_seconds,
            "by_state_24h": stats.webhooks_by_state_24h,
            "failed_ever": stats.failed_webhooks_ever,
        },
        "outbound": {"pending": stats.outbound_pending, "failed": stats.outbound_failed},
        "numbers": [
            {
                "phone_number_id": n.phone_number_id,
                "name": n.name,
                "conversations": n.conversations,
                "messages_in_24h": n.messages_in_24h,
                "messages_out_24h": n.messages_out_24h,
            }
            for n in stats.numbers
        ],
    }

"""``manage.py check_meta``: is each business number healthy? Meta's side (the token works, the number's
display and quality rating, the WABA's webhook subscription) and ours (webhooks received, pending, failed).

Exits non-zero when any number's token check fails; a 190 flags the number ``needs_reauthorization``, and a token
Meta accepts clears the flag.
Examples::

    manage.py check_meta
    manage.py check_meta --number 106540352240001
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from conversations.management.number_option import add_number_option, selected_numbers
from conversations.services.numbers import NumberHealth, check_number_health
from webhooks.selectors import summarize_webhook_health


class Command(BaseCommand):
    help = (
        "Check every business number (or --number) with Meta and against our webhook log; non-zero exit on a bad token."
    )

    def add_arguments(self, parser):
        add_number_option(parser)

    def handle(self, *args, **options):
        numbers = selected_numbers(options["number"])
        bad_tokens = []
        for position, number in enumerate(numbers, start=1):
            self.stdout.write(f"[{position}/{len(numbers)}] {number} ({number.phone_number_id})")
            health = check_number_health(number=number)
            self._report(health)
            if not health.token_ok:
                bad_tokens.append(number.phone_number_id)
        if bad_tokens:
            raise CommandError(f"token check failed for {len(bad_tokens)} number(s): {', '.join(bad_tokens)}")
        self.stdout.write(f"All {len(numbers)} number(s): token OK.")

    def _report(self, health: NumberHealth) -> None:
        now = timezone.now()
        if health.token_ok:
            self.stdout.write(f"  token:        {self.style.SUCCESS('OK')}")
        else:
            self.stdout.write(f"  token:        {self.style.ERROR('FAILED')}: {health.token_problem}")
        if health.flagged_now:
            self.stdout.write(
                "                marked needs_reauthorization: sending stops until an admin sets a new token"
            )
        elif health.cleared_now:
            self.stdout.write("                needs_reauthorization cleared: Meta accepts the token, sending resumes")
        elif health.number.needs_reauthorization:
            self.stdout.write(
                "                flagged needs_reauthorization (set a new token: manage.py register_number)"
            )
        if health.profile is not None:
            profile = health.profile
            self.stdout.write(
                f"  number:       {profile.display_phone_number or '-'} ({profile.verified_name or 'no verified name'}), "
                f"quality {profile.quality_rating or 'unknown'}"
            )
        self.stdout.write(f"  subscription: {health.subscription}")
        webhooks = summarize_webhook_health(phone_number_id=health.number.phone_number_id)
        last = _ago(webhooks.last_received_at, now) if webhooks.last_received_at else "never"
        self.stdout.write(f"  webhooks:     last received {last}")
        oldest = f", oldest {_ago(webhooks.oldest_pending_at, now)}" if webhooks.oldest_pending_at else ""
        self.stdout.write(f"                pending {webhooks.pending}{oldest}; failed {webhooks.failed}")


def _ago(moment, now) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        text = f"{seconds}s"
    elif seconds < 7200:
        text = f"{seconds // 60}m"
    elif seconds < 172800:
        text = f"{seconds // 3600}h"
    else:
        text = f"{seconds // 86400}d"
    return f"{moment:%Y-%m-%d %H:%M:%S %Z} ({text} ago)"

"""Housekeeping beat runs: what would otherwise be an operator's daily chore."""

from celery import shared_task
from django.core.management import call_command


@shared_task(name="ops.flush_expired_tokens", acks_late=True)
def flush_expired_tokens_task() -> None:
    """Delete refresh tokens past their expiry, with their blacklist rows (simplejwt's own command): every
    sign-in and refresh records one, so the tables would otherwise grow for ever. Idempotent: a second beat
    deletes nothing more."""
    call_command("flushexpiredtokens")

"""``manage.py contacts_normalize``: re-derive every contact's phone from its wa_id and merge contacts that
are the same WhatsApp user (same normalised phone, or Brazil's 8/9-digit and Mexico's 521/52 variants).
The contact with the most recent inbound message is kept. Idempotent. Examples::

    manage.py contacts_normalize --dry-run      # the plan; nothing changes
    manage.py contacts_normalize
"""

from django.core.management.base import BaseCommand

from conversations.services.contacts import ContactMerge, normalize_contacts
from ops.progress import progress


class Command(BaseCommand):
    help = "Normalise contact phones from wa_id and merge duplicate contacts (same person). --dry-run prints the plan."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would change; change nothing.")

    def handle(self, *args, **options):
        dry_run = options["dry_run"]
        verb = "would merge" if dry_run else "merged"
        self.stdout.write("Scanning contacts…")
        # Steps: each phone set and each group of duplicates merged; the total is known once the scan is done.
        with progress(self.stdout, total=None, desc="progress", unit="step") as bar:
            result = normalize_contacts(
                dry_run=dry_run,
                on_merge=lambda merge: bar.message(_merge_line(merge, verb=verb)),
                on_progress=bar.update_to,
            )
        for change in result.phone_changes:
            self.stdout.write(
                f"  {'would set' if dry_run else 'set'} contact {change.contact.pk} phone "
                f"{change.old or '-'} -> {change.new or '-'}"
            )
        summary = f"{len(result.phone_changes)} phone(s) normalised, {len(result.merges)} duplicate(s) merged"
        if dry_run:
            self.stdout.write(
                f"Dry run: {summary.replace('normalised', 'to normalise').replace('merged', 'to merge')}; nothing changed."
            )
        elif not result.phone_changes and not result.merges:
            self.stdout.write("Nothing to do: every phone is normalised and no contacts are duplicated.")
        else:
            self.stdout.write(f"Done: {summary}.")


def _merge_line(merge: ContactMerge, *, verb: str) -> str:
    return (
        f"  {verb} contact {merge.duplicate.pk} ({_label(merge.duplicate)}) into {merge.keep.pk} "
        f"({_label(merge.keep)}): {merge.conversations_moved} conversation(s) moved, "
        f"{merge.conversations_merged} merged ({merge.messages_moved} message(s) moved), "
        f"{merge.reactions_moved} reaction(s) moved, {merge.reactions_dropped} dropped"
    )


def _label(contact) -> str:
    return f"wa_id {contact.wa_id}" if contact.wa_id else f"user_id {contact.user_id}"

"""Staff's changes to contacts: renames, and merging rows that turn out to be the same person (phone
normalisation, WhatsApp's number variants). One contact is one person to every number it talks to, so who
may change it depends on the numbers they see (``selectors.can_change_contact``), and a merge moves
conversations and messages: these are inbox writes, not the contacts app's."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Max

from contacts.models import Contact
from contacts.phones import digits_of, e164_from_wa_id, same_person_key
from conversations.models import (
    SUMMARY_FIELDS,
    ContactNote,
    Conversation,
    ConversationActivity,
    Direction,
    Message,
    Reaction,
    ReadState,
)
from conversations.selectors import can_change_contact, labels_by_conversation, thread_messages
from conversations.snapshots import conversation_snapshot
from realtime import events
from realtime.publish import publish_event


class ContactChangeForbidden(Exception):
    """The contact also talks to a number the user may not see (``selectors.can_change_contact``)."""

    code = "contact_on_other_numbers"

    def __init__(self, contact: Contact):
        self.contact = contact
        self.detail = (
            f"{contact} also writes to a business number you are not a member of; only someone who may see "
            "every number the contact talks to can rename or merge it."
        )
        super().__init__(self.detail)


def _lock_changeable(*, user, contact_ids: list[int]) -> dict[int, Contact]:
    """Lock the contacts and check that ``user`` may change each (``None``: the system itself, e.g.
    contacts_normalize). Checked under the lock: a new conversation references its contact, so none
    can start on another number between the check and the change."""
    locked = {c.pk: c for c in Contact.objects.select_for_update().filter(pk__in=contact_ids).order_by("pk")}
    if user is not None:
        for contact in locked.values():
            if not can_change_contact(user=user, contact=contact):
                raise ContactChangeForbidden(contact)
    return locked


@transaction.atomic
def rename_contact(*, contact: Contact, name: str, user=None) -> Contact:
    """Staff's name for the contact; an empty name goes back to the WhatsApp profile name. With ``user``,
    raises ``ContactChangeForbidden`` unless they may change the contact."""
    _lock_changeable(user=user, contact_ids=[contact.pk])
    contact.custom_name = name.strip()
    contact.save(update_fields=["custom_name", "updated_at"])
    return contact


# --- duplicates: one person, two contact rows (contacts_normalize) ----------------------------------------


@dataclass(frozen=True)
class ContactMerge:
    """One duplicate folded into the contact kept; the counts are what moves (or would move)."""

    keep: Contact
    duplicate: Contact
    conversations_moved: int
    conversations_merged: int
    messages_moved: int
    reactions_moved: int
    reactions_dropped: int


@dataclass(frozen=True)
class PhoneChange:
    contact: Contact
    old: str | None
    new: str | None


@dataclass(frozen=True)
class ContactNormalization:
    phone_changes: list[PhoneChange]
    merges: list[ContactMerge]
    applied: bool


def describe_contact_merge(*, keep: Contact, duplicate: Contact) -> ContactMerge:
    """What ``merge_contacts`` would move, without changing anything."""
    kept_numbers = set(Conversation.objects.filter(contact=keep).values_list("number_id", flat=True))
    theirs = list(Conversation.objects.filter(contact=duplicate).values_list("pk", "number_id"))
    merged = [pk for pk, number_id in theirs if number_id in kept_numbers]
    taken = Reaction.objects.filter(contact=keep).values("message_wamid")
    reactions = Reaction.objects.filter(contact=duplicate)
    dropped = reactions.filter(message_wamid__in=taken).count()
    return ContactMerge(
        keep=keep,
        duplicate=duplicate,
        conversations_moved=len(theirs) - len(merged),
        conversations_merged=len(merged),
        messages_moved=Message.objects.filter(conversation_id__in=merged).count(),
        reactions_moved=reactions.count() - dropped,
        reactions_dropped=dropped,
    )


@transaction.atomic
def merge_contacts(*, keep: Contact, duplicate: Contact, user=None) -> ContactMerge:
    """Fold ``duplicate`` into ``keep`` (the same WhatsApp user under two rows) and delete it.

    - A conversation only the duplicate has on a number moves to ``keep``. When both have one on the same
      number, the duplicate's messages move into the kept conversation (its last-message summary noted afresh
      from the messages it then holds), and the duplicate's conversation and read states go.
    - Reactions move; one that would be a second reaction of ``keep`` on the same message is dropped.
    - Contact notes move, each still its number's.
    - ``custom_name``, ``profile_name``, ``user_id``, ``username`` (and ``wa_id`` if ``keep`` has none)
      come from the duplicate only where ``keep`` has no value: the kept contact wins.

    Both contacts are locked for the merge, so an inbound message for either waits for it to finish. With
    ``user``, raises ``ContactChangeForbidden`` (and changes nothing) unless they may change both.
    """
    if keep.pk == duplicate.pk:
        raise ValueError("a contact cannot be merged into itself")
    locked = _lock_changeable(user=user, contact_ids=[keep.pk, duplicate.pk])
    keep, duplicate = locked[keep.pk], locked[duplicate.pk]
    merge = describe_contact_merge(keep=keep, duplicate=duplicate)

    kept = {c.number_id: c for c in Conversation.objects.select_for_update().filter(contact=keep)}
    moved: list[int] = []
    merged_into: dict[int, int] = {}  # the duplicate's conversation that goes -> the kept one it went into
    for conversation in Conversation.objects.select_for_update().filter(contact=duplicate).order_by("pk"):
        target = kept.get(conversation.number_id)
        if target is None:
            Conversation.objects.filter(pk=conversation.pk).update(contact=keep)
            moved.append(conversation.pk)
            continue
        Message.objects.filter(conversation=conversation).update(conversation=target)
        # Its activity lines stay the audit trail, in the thread they now belong to.
        ConversationActivity.objects.filter(conversation=conversation).update(conversation=target)
        ReadState.objects.filter(conversation=conversation).delete()
        merged_into[conversation.pk] = target.pk
        conversation.delete()
        _summarize_afresh(conversation=target)
        _recount_reads(conversation=target)

    taken = Reaction.objects.filter(contact=keep).values("message_wamid")
    Reaction.objects.filter(contact=duplicate, message_wamid__in=taken).delete()
    Reaction.objects.filter(contact=duplicate).update(contact=keep)
    # Each number's notes about the person stay that number's, now on the kept contact.
    ContactNote.objects.filter(contact=duplicate).update(contact=keep)

    changes: dict[str, object] = {
        field: getattr(duplicate, field)
        for field in ("custom_name", "profile_name", "user_id", "username")
        if not getattr(keep, field) and getattr(duplicate, field)
    }
    if not keep.wa_id and duplicate.wa_id:
        changes["wa_id"] = duplicate.wa_id
    wa_id = changes.get("wa_id", keep.wa_id)
    if wa_id:
        changes["phone"] = e164_from_wa_id(str(wa_id))
    elif not keep.phone and duplicate.phone:
        changes["phone"] = duplicate.phone
    # The duplicate goes first: its wa_id/user_id would otherwise collide with the unique constraints.
    duplicate.delete()
    if changes:
        Contact.objects.filter(pk=keep.pk).update(**changes)
        for field, value in changes.items():
            setattr(keep, field, value)
    _publish_conversations_changed(moved_ids=moved, merged_into=merged_into)
    return merge


def _summarize_afresh(*, conversation: Conversation) -> None:
    """The last-message summary of the messages the conversation holds (of those the thread shows), noted as
    new messages are: its newest customer message, then its newest message, which is so the last one even on
    a tie. One that holds no such message keeps its summary."""
    shown = thread_messages(conversation=conversation).order_by("-timestamp", "-id")
    newest = [m for m in (shown.filter(direction=Direction.INBOUND).first(), shown.first()) if m is not None]
    if not newest:
        return
    conversation.last_message_at, conversation.last_inbound_at = datetime.min.replace(tzinfo=UTC), None
    for message in newest:
        conversation.note_message(message)
    conversation.save(update_fields=SUMMARY_FIELDS)


def _recount_reads(*, conversation: Conversation) -> None:
    """What each reader has read of the messages the conversation now holds. Messages moved in keep their
    ids: each reader has read those up to their last read id, as before."""
    inbound = Message.objects.filter(conversation=conversation, direction=Direction.INBOUND)
    for state in ReadState.objects.filter(conversation=conversation):
        state.read_inbound_count = inbound.filter(id__lte=state.last_read_message_id).count()
        state.save(update_fields=["read_inbound_count"])


def _publish_conversations_changed(*, moved_ids: list[int], merged_into: dict[int, int]) -> None:
    """Open inboxes learn of the merge: a conversation that moved to the kept contact is updated; one that went
    into the kept contact's own conversation is merged (tabs drop its row, or leave it for the other when open)."""
    conversations = Conversation.objects.select_related("contact", "assignee").in_bulk(
        [*moved_ids, *merged_into.values()]
    )
    labels = labels_by_conversation(conversations)
    for conversation_id in moved_ids:
        conversation = conversations[conversation_id]
        publish_event(
            number_id=conversation.number_id,
            type=events.CONVERSATION_UPDATED,
            payload={"conversation": conversation_snapshot(conversation, labels=labels[conversation.pk])},
        )
    for gone_id, target_id in merged_into.items():
        target = conversations[target_id]
        publish_event(
            number_id=target.number_id,
            type=events.CONVERSATION_MERGED,
            payload={"conversation_id": gone_id, "into": conversation_snapshot(target, labels=labels[target.pk])},
        )


def _contact_to_keep_order(contact: Contact, *, last_inbound: dict, last_activity: dict) -> tuple:
    """Sort key: the largest is kept. Meta's current wa_id is the one the customer last wrote from."""
    never = datetime.min.replace(tzinfo=UTC)
    return (
        last_inbound.get(contact.pk) or never,
        contact.wa_id is not None,
        last_activity.get(contact.pk) or never,
        -contact.pk,
    )


def normalize_contacts(
    *,
    dry_run: bool = False,
    on_merge: Callable[[ContactMerge], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ContactNormalization:
    """Re-derive every contact's ``phone`` from its ``wa_id`` and merge contacts that are the same person:
    the same normalised phone, or a known WhatsApp variant of it (``contacts.phones.same_person_key``). In
    each group the contact with the most recent inbound message is kept. ``dry_run`` only reports the plan.
    Idempotent: a second run finds nothing to do. ``on_merge`` hears of each merge as it is done (or planned),
    ``on_progress`` gets ``(done, total)`` after each step: a phone set, a group of duplicates merged.
    """
    contacts = list(Contact.objects.order_by("pk"))
    phone_changes = []
    groups: dict[str, list[Contact]] = {}
    for contact in contacts:
        phone = contact.phone
        if contact.wa_id:
            phone = e164_from_wa_id(contact.wa_id)
            if phone != contact.phone:
                phone_changes.append(PhoneChange(contact=contact, old=contact.phone, new=phone))
        digits = digits_of(phone)
        if digits:
            groups.setdefault(same_person_key(digits), []).append(contact)
    duplicated = [group for group in groups.values() if len(group) > 1]
    steps = (0 if dry_run else len(phone_changes)) + len(duplicated)
    done = 0

    if not dry_run:
        for change in phone_changes:
            Contact.objects.filter(pk=change.contact.pk).update(phone=change.new)
            change.contact.phone = change.new
            done += 1
            if on_progress is not None:
                on_progress(done, steps)

    merges = []
    for group in duplicated:
        merges.extend(merge_contact_group(contacts=group, dry_run=dry_run, on_merge=on_merge))
        done += 1
        if on_progress is not None:
            on_progress(done, steps)
    return ContactNormalization(phone_changes=phone_changes, merges=merges, applied=not dry_run)


@transaction.atomic
def merge_contact_group(
    *,
    contacts: list[Contact],
    dry_run: bool = False,
    on_merge: Callable[[ContactMerge], None] | None = None,
    user=None,
) -> list[ContactMerge]:
    """Fold contacts known to be one person into the one the customer last wrote from (its wa_id is the
    one Meta uses now); ``dry_run`` only describes it. Used by ``contacts_normalize`` and the admin. All or
    nothing: with ``user``, one contact they may not change (``ContactChangeForbidden``) merges none."""
    by_contact = Message.objects.filter(conversation__contact_id__in=[c.pk for c in contacts]).values(
        "conversation__contact_id"
    )
    last_inbound = {
        row["conversation__contact_id"]: row["at"]
        for row in by_contact.filter(direction=Direction.INBOUND).annotate(at=Max("timestamp")).order_by()
    }
    last_activity = {
        row["conversation__contact_id"]: row["at"] for row in by_contact.annotate(at=Max("timestamp")).order_by()
    }
    ordered = sorted(
        contacts,
        key=lambda c: _contact_to_keep_order(c, last_inbound=last_inbound, last_activity=last_activity),
        reverse=True,
    )
    keep, merges = ordered[0], []
    for duplicate in ordered[1:]:
        merge = (
            describe_contact_merge(keep=keep, duplicate=duplicate)
            if dry_run
            else merge_contacts(keep=keep, duplicate=duplicate, user=user)
        )
        merges.append(merge)
        if on_merge is not None:
            on_merge(merge)
    return merges

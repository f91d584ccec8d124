"""Writes to contacts: resolving a WhatsApp sender to one contact row, renames, identity changes, and
merging rows that turn out to be the same person (phone normalisation, WhatsApp's number variants)."""
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from contacts.models import Contact
from contacts.phone_variants import digits_of, same_person_key
from contacts.phones import e164_from_wa_id
from contacts.selectors import can_change_contact


class ContactIdentityConflict(Exception):
    """Meta's identity change names an id that another contact already holds."""


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


def resolve_contact(*, wa_id: str | None, user_id: str | None, profile_name: str = "", username: str = "") -> Contact:
    """The one contact for this WhatsApp user, created if new, its ids and profile kept current.

    Race-safe without locks: two workers creating the same contact meet the unique constraints on
    wa_id/user_id; the loser's insert is rolled back to its savepoint and it reads the winner's row.
    """
    if not wa_id and not user_id:
        raise ValueError("a contact needs a wa_id or a user_id")
    for _attempt in range(3):
        contact = _find_contact(wa_id=wa_id, user_id=user_id)
        if contact is None:
            try:
                with transaction.atomic():
                    return Contact.objects.create(
                        wa_id=wa_id,
                        user_id=user_id,
                        phone=e164_from_wa_id(wa_id),
                        profile_name=profile_name,
                        username=username,
                    )
            except IntegrityError:
                continue
        _refresh_contact(contact=contact, wa_id=wa_id, user_id=user_id, profile_name=profile_name, username=username)
        return contact
    raise IntegrityError(f"could not resolve contact wa_id={wa_id} user_id={user_id}")


@dataclass(frozen=True)
class Sender:
    """Who sent a message, as a webhook names them: the ids and the profile to keep current."""

    wa_id: str | None
    user_id: str | None
    profile_name: str = ""
    username: str = ""


def resolve_contacts(*, senders: list[Sender]) -> list[Contact]:
    """``resolve_contact`` for many senders (a drain's batch), in order: one SELECT for every id; only new
    senders and changed profiles cost more. The same person twice gets the same object."""
    for sender in senders:
        if not sender.wa_id and not sender.user_id:
            raise ValueError("a contact needs a wa_id or a user_id")
    wa_ids = {s.wa_id for s in senders if s.wa_id}
    user_ids = {s.user_id for s in senders if s.user_id}
    by_wa_id: dict[str, Contact] = {}
    by_user_id: dict[str, Contact] = {}

    def remember(contact: Contact) -> None:
        if contact.wa_id:
            by_wa_id.setdefault(contact.wa_id, contact)
        if contact.user_id:
            by_user_id.setdefault(contact.user_id, contact)

    for contact in Contact.objects.filter(Q(wa_id__any=wa_ids) | Q(user_id__any=user_ids)).order_by("pk"):
        remember(contact)
    resolved = []
    for sender in senders:
        # The BSUID is the stronger key, as in _find_contact.
        contact = (by_user_id.get(sender.user_id) if sender.user_id else None) or (by_wa_id.get(sender.wa_id) if sender.wa_id else None)
        if contact is None:
            contact = resolve_contact(wa_id=sender.wa_id, user_id=sender.user_id, profile_name=sender.profile_name, username=sender.username)
        else:
            _refresh_contact(contact=contact, wa_id=sender.wa_id, user_id=sender.user_id, profile_name=sender.profile_name, username=sender.username)
        remember(contact)
        resolved.append(contact)
    return resolved


def _find_contact(*, wa_id: str | None, user_id: str | None) -> Contact | None:
    matches = list(
        Contact.objects.filter((Q(user_id=user_id) if user_id else Q(pk__in=[])) | (Q(wa_id=wa_id) if wa_id else Q(pk__in=[])))
    )
    # The BSUID is the stronger key: it follows the user across username-only conversations.
    for contact in matches:
        if user_id and contact.user_id == user_id:
            return contact
    return matches[0] if matches else None


def _refresh_contact(*, contact: Contact, wa_id: str | None, user_id: str | None, profile_name: str, username: str) -> None:
    changes: dict[str, object] = {}
    if wa_id and contact.wa_id != wa_id and contact.wa_id is None:
        changes.update(wa_id=wa_id, phone=e164_from_wa_id(wa_id))
    if user_id and contact.user_id != user_id and contact.wa_id == wa_id:
        # Same phone, new BSUID: Meta regenerated it (docs/meta.md §9).
        changes["user_id"] = user_id
    if profile_name and contact.profile_name != profile_name:
        changes["profile_name"] = profile_name
    if username and contact.username != username:
        changes["username"] = username
    if not changes:
        return
    try:
        with transaction.atomic():
            Contact.objects.filter(pk=contact.pk).update(**changes)
    except IntegrityError:
        # Another row already holds that id (a concurrent create); keep this contact as it was.
        return
    for name, value in changes.items():
        setattr(contact, name, value)


def change_contact_identity(*, contact: Contact, new_wa_id: str | None, new_user_id: str | None) -> Contact:
    """Apply Meta's ``user_changed_number`` / ``user_changed_user_id``: same person, new ids."""
    changes: dict[str, object] = {}
    if new_wa_id and new_wa_id != contact.wa_id:
        changes.update(wa_id=new_wa_id, phone=e164_from_wa_id(new_wa_id))
    if new_user_id and new_user_id != contact.user_id:
        changes["user_id"] = new_user_id
    if not changes:
        return contact
    try:
        with transaction.atomic():
            Contact.objects.filter(pk=contact.pk).update(**changes)
    except IntegrityError as exc:
        raise ContactIdentityConflict(f"another contact already has {changes}") from exc
    for name, value in changes.items():
        setattr(contact, name, value)
    return contact


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
    from conversations.models import Conversation, Message, Reaction

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
      number, the duplicate's messages move into the kept conversation (its last-message summary and
      24-hour window recomputed from them), and the duplicate's conversation and read states go.
    - Reactions move; one that would be a second reaction of ``keep`` on the same message is dropped.
    - ``custom_name``, ``profile_name``, ``user_id``, ``username`` (and ``wa_id`` if ``keep`` has none)
      come from the duplicate only where ``keep`` has no value: the kept contact wins.

    Both contacts are locked for the merge, so an inbound message for either waits for it to finish. With
    ``user``, raises ``ContactChangeForbidden`` (and changes nothing) unless they may change both.
    """
    from conversations.models import Conversation, Message, Reaction, ReadState

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
        ReadState.objects.filter(conversation=conversation).delete()
        inbound_times = [at for at in (target.last_inbound_at, conversation.last_inbound_at) if at]
        fallback = {
            "last_message_at": max(target.last_message_at, conversation.last_message_at),
            "last_inbound_at": max(inbound_times) if inbound_times else None,
        }
        merged_into[conversation.pk] = target.pk
        conversation.delete()
        _recompute_conversation_summary(conversation=target, fallback=fallback)

    taken = Reaction.objects.filter(contact=keep).values("message_wamid")
    Reaction.objects.filter(contact=duplicate, message_wamid__in=taken).delete()
    Reaction.objects.filter(contact=duplicate).update(contact=keep)

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


def _recompute_conversation_summary(*, conversation, fallback: dict) -> None:
    """Last message and customer-window fields from the messages the conversation now holds, and what each
    reader has read of them; ``fallback``
    (the two merged conversations' own values) only where it holds no such message. Outbound reactions
    are not shown in the thread, so they never were the last message."""
    from conversations.models import Conversation, Direction, Message, ReadState

    # Messages moved in keep their ids: each reader has read those up to their last read id, as before.
    inbound = Message.objects.filter(conversation=conversation, direction=Direction.INBOUND)
    for state in ReadState.objects.filter(conversation=conversation):
        state.read_inbound_count = inbound.filter(id__lte=state.last_read_message_id).count()
        state.save(update_fields=["read_inbound_count"])
    shown = conversation.messages.exclude(direction=Direction.OUTBOUND, type="reaction")
    latest = shown.order_by("-timestamp", "-id").first()
    latest_inbound = shown.filter(direction=Direction.INBOUND).order_by("-timestamp", "-id").first()
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=latest.timestamp if latest else fallback["last_message_at"],
        last_message_preview=latest.preview[:300] if latest else "",
        last_message_direction=latest.direction if latest else "",
        last_inbound_at=latest_inbound.timestamp if latest_inbound else fallback["last_inbound_at"],
    )


def _publish_conversations_changed(*, moved_ids: list[int], merged_into: dict[int, int]) -> None:
    """Open inboxes learn of the merge: a conversation that moved to the kept contact is updated; one that went
    into the kept contact's own conversation is merged (tabs drop its row, or leave it for the other when open)."""
    from conversations.models import Conversation
    from conversations.snapshots import conversation_snapshot
    from realtime import events
    from realtime.publish import publish_event

    conversations = Conversation.objects.select_related("contact").in_bulk([*moved_ids, *merged_into.values()])
    for conversation_id in moved_ids:
        conversation = conversations[conversation_id]
        publish_event(
            number_id=conversation.number_id,
            type=events.CONVERSATION_UPDATED,
            payload={"conversation": conversation_snapshot(conversation)},
        )
    for gone_id, target_id in merged_into.items():
        target = conversations[target_id]
        publish_event(
            number_id=target.number_id,
            type=events.CONVERSATION_MERGED,
            payload={"conversation_id": gone_id, "into": conversation_snapshot(target)},
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
    the same normalised phone, or a known WhatsApp variant of it (``contacts.phone_variants``). In each
    group the contact with the most recent inbound message is kept. ``dry_run`` only reports the plan.
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
    from conversations.models import Direction, Message

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

"""Coexistence numbers: the WhatsApp Business app and the API on one number (docs/meta.md §3.7).

- ``receive_echoes``: what the business sent from the phone app, stored as outbound messages of the contact's
  conversation (no staff member sent them), with any status Meta reported before the echo came.
- ``amend_messages``: a customer's (or the phone app's) edit or "delete for everyone" of an earlier message,
  applied to that message in place. The message's ``content`` carries what changed: ``edits`` (every edit,
  by time, and ``original``: the words it had first) and ``revoked``; its words stay in the database, the
  thread shows a revoked one as deleted (``snapshots.message_snapshot``). An amendment of a message we do not
  have is stored as its own message (it is shown as "✏️ ..." or "Deleted a message"): the hot path of
  ordinary messages never looks for amendments waiting for them.

- ``import_history``: the phone app's past chats (Meta's ``history``, once after onboarding, in chunks that may
  come in any order): each message stored once, in its customer's conversation; a conversation the import
  creates starts resolved (past work, not new work), one that exists keeps its status; nothing counts as
  unread and the customer service window does not move. The number keeps Meta's progress, or the refusal.
- ``sync_address_book``: the phone app's contacts (``smb_app_state_sync``), per number, newest change wins.

Idempotent and order-safe: the unique wamid keeps one echo; the target is locked, an edit already in its
history is not applied again, and the newest edit (by Meta's timestamp, then wamid) is the text shown,
whatever order they come in.
"""

from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef
from django.db.models.functions import Coalesce, Greatest

from contacts.models import Contact
from contacts.services import Sender, resolve_contacts
from conversations.incoming import AddressBookChange, HistoryChunk, HistoryMessage, InboundMessage
from conversations.models import (
    LIST_LINE_FIELDS,
    STATUS_RANK,
    SUMMARY_FIELDS,
    AddressBookEntry,
    BusinessNumber,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageStatus,
    MessageStatusEvent,
)
from conversations.selectors import labels_by_conversation
from conversations.services.account import publish_numbers
from conversations.services.inbound import (
    InboundItem,
    apply_reaction,
    locked_conversations,
    publish_received,
    receive_inbound_messages,
)
from conversations.services.media import INBOUND_MEDIA_TYPES, expect_inbound_media
from conversations.snapshots import conversation_snapshot, message_snapshot
from database.bulk import insert_rows, update_rows
from realtime import events
from realtime.publish import publish_events

# Keys of our own in a message's content: the thread says it was sent from the phone app, or imported from
# the phone app's history.
PHONE_APP = "phone_app"
FROM_HISTORY = "history"


def receive_echoes(*, items: list[InboundItem]) -> list[Message]:
    """Store the echoes (``item.contact`` is the customer they went to) as outbound messages; returns those
    stored (redeliveries are skipped). Each ``message.created`` carries its conversation as the batch left it.
    A wamid stored concurrently makes the INSERT raise IntegrityError: the caller's savepoint handles it."""
    if not items:
        return []
    wamids = {item.message.wamid for item in items}
    known = set(Message.objects.filter(wamid__any=wamids).values_list("wamid", flat=True))
    fresh: dict[str, InboundItem] = {}
    for item in items:
        if item.message.wamid not in known:
            fresh.setdefault(item.message.wamid, item)
    if not fresh:
        return []
    # Statuses Meta sent before the echo (kept by record_statuses): the best of them applies at once.
    best: dict[str, MessageStatusEvent] = {}
    for event in MessageStatusEvent.objects.filter(wamid__any=list(fresh)):
        if event.wamid not in best or STATUS_RANK[event.status] > STATUS_RANK[best[event.wamid].status]:
            best[event.wamid] = event
    conversations = locked_conversations(items=list(fresh.values()))
    rows = []
    for wamid, item in fresh.items():
        status = best.get(wamid)
        message = item.message
        rows.append(
            Message(
                conversation=conversations[(item.number.pk, item.contact.pk)],
                wamid=wamid,
                direction=Direction.OUTBOUND,
                type=message.type,
                body=message.body,
                preview=message.preview[:300],
                content={**message.content, PHONE_APP: True},
                context=message.context,
                reply_to_wamid=message.reply_to_wamid,
                timestamp=message.timestamp,
                status=status.status if status else MessageStatus.SENT,
                status_at=status.timestamp if status else message.timestamp,
                error_code=status.error_code if status else None,
                error_title=status.error_title if status else "",
            )
        )
    stored = insert_rows(objects=rows)
    _mark_on_business_app(numbers=[item.number for item in fresh.values()])
    for message in stored:
        Message.media.related.set_cached_value(message, expect_inbound_media(message=message))
    touched = {message.conversation_id: message.conversation for message in stored}
    for message in stored:
        touched[message.conversation_id].note_message(message)
    contacts = {item.contact.pk: item.contact for item in fresh.values()}
    for conversation in touched.values():
        conversation.contact = contacts[conversation.contact_id]
    # The business wrote: its summary moves, its status does not (an echo reopens nothing).
    update_rows(objects=list(touched.values()), fields=SUMMARY_FIELDS)
    publish_received(stored=stored, touched=touched, reopened=[])
    return stored


@dataclass(frozen=True)
class AmendItem:
    """An edit or revoke (``message.amendment`` set) by the customer, or from the phone app (``echo``)."""

    number: BusinessNumber
    contact: Contact
    message: InboundMessage
    echo: bool = False


def amend_messages(*, items: list[AmendItem], keep_unmatched: bool = True) -> None:
    """Apply edits and revokes to the messages they name, locked in id order; one ``message.updated`` per
    message that changed. A customer amends only their own messages in their conversation, the phone app only
    the business's; anything else (or a message we do not have) is stored as a message of its own, or with
    ``keep_unmatched=False`` (the past, where it would be new work) dropped."""
    if not items:
        return
    targets = {
        message.wamid: message
        for message in Message.objects.select_for_update(of=("self",))
        .filter(wamid__any={item.message.amendment.target_wamid for item in items})
        .select_related("conversation", "media", "sent_by")
        .order_by("pk")
    }
    changed: dict[int, Message] = {}
    shown_before: dict[int, str] = {}
    unmatched: list[AmendItem] = []
    for item in items:
        target = targets.get(item.message.amendment.target_wamid)
        if target is None or not _amends(item, target):
            unmatched.append(item)
            continue
        before = shown_before.get(target.pk, message_snapshot(target)["preview"])
        if _apply(target, item.message):
            changed[target.pk] = target
            shown_before[target.pk] = before
    if changed:
        update_rows(objects=list(changed.values()), fields=["body", "preview", "content"])
        summaries = _summaries_changed(changed=list(changed.values()), shown_before=shown_before)
        by_number: dict[int, list[tuple[str, dict]]] = {}
        for message in changed.values():
            by_number.setdefault(message.conversation.number_id, []).append(
                (events.MESSAGE_UPDATED, {"message": message_snapshot(message)})
            )
        for conversation, payload in summaries:
            by_number[conversation.number_id].append((events.CONVERSATION_UPDATED, payload))
        for number_id, batch in by_number.items():
            publish_events(number_id=number_id, events=batch)
    if not keep_unmatched:
        return
    as_items = [InboundItem(number=i.number, contact=i.contact, message=i.message) for i in unmatched]
    receive_inbound_messages(items=[row for row, i in zip(as_items, unmatched, strict=True) if not i.echo])
    receive_echoes(items=[row for row, i in zip(as_items, unmatched, strict=True) if i.echo])


def _summaries_changed(
    *, changed: list[Message], shown_before: dict[int, str]
) -> list[tuple[Conversation, events.ConversationUpdated]]:
    """The inbox list shows a conversation's last message: where that is an amended message, its line follows
    (a revoked message's words leave the list too). A conditional UPDATE: a newer message noted meanwhile
    keeps its line."""
    updated = []
    for message in changed:
        shown = message_snapshot(message)["preview"][:300]
        if Conversation.objects.filter(
            pk=message.conversation_id,
            last_message_at=message.timestamp,
            last_message_preview=shown_before[message.pk][:300],
        ).update(last_message_preview=shown):
            updated.append(message.conversation_id)
    if not updated:
        return []
    conversations = list(Conversation.objects.filter(pk__any=updated).select_related("contact", "assignee"))
    labels = labels_by_conversation(updated)
    return [(c, {"conversation": conversation_snapshot(c, labels=labels[c.pk])}) for c in conversations]


def _amends(item: AmendItem, target: Message) -> bool:
    expected = Direction.OUTBOUND if item.echo else Direction.INBOUND
    conversation = target.conversation
    return (
        target.direction == expected
        and conversation.number_id == item.number.pk
        and conversation.contact_id == item.contact.pk
    )


def _apply(target: Message, message: InboundMessage) -> bool:
    """Change the locked ``target`` in memory; whether anything changed."""
    amendment = message.amendment
    content = dict(target.content)
    at = message.timestamp.isoformat()
    if amendment.kind == "revoke":
        if "revoked" in content:
            return False
        content["revoked"] = {"wamid": message.wamid, "at": at}
        target.content = content
        return True
    edits = list(content.get("edits") or [])
    if any(edit.get("wamid") == message.wamid for edit in edits):
        return False  # a redelivery
    content.setdefault("original", {"body": target.body, "preview": target.preview})
    edits.append({"wamid": message.wamid, "at": at, "body": amendment.body, "preview": amendment.preview[:300]})
    # Meta's timestamps are whole seconds in UTC: their ISO texts sort as the times do.
    edits.sort(key=lambda edit: (edit["at"], edit["wamid"]))
    content["edits"] = edits
    target.content = content
    target.body, target.preview = edits[-1]["body"], edits[-1]["preview"]
    return True


def import_history(*, number: BusinessNumber, chunk: HistoryChunk) -> list[Message]:
    """Store a history chunk's messages not stored yet, note Meta's progress (or the refusal) on the number, and
    tell the Numbers page; returns the messages stored. A message stored concurrently makes the INSERT raise
    IntegrityError: the caller's savepoint handles it (the chunk applied again finds that message stored)."""
    stored: list[Message] = []
    if chunk.threads:
        stored = _import_threads(number=number, chunk=chunk)
    declined = "; ".join(f"{e.code}: {e.title}".strip(": ") for e in chunk.errors)[:300]
    progress = {}
    if chunk.progress is not None:
        progress["history_progress"] = Greatest(Coalesce(F("history_progress"), 0), chunk.progress)
    if chunk.phase is not None:
        progress["history_phase"] = Greatest(Coalesce(F("history_phase"), 0), chunk.phase)
    BusinessNumber.objects.filter(pk=number.pk).update(
        on_business_app=True,
        history_messages=F("history_messages") + len(stored),
        **progress,
        **({"history_declined": declined} if declined else {}),
    )
    publish_numbers([number], waba_id=number.waba_id)
    return stored


def _import_threads(*, number: BusinessNumber, chunk: HistoryChunk) -> list[Message]:
    contacts = resolve_contacts(senders=[Sender(wa_id=wa_id, user_id=None) for wa_id, _messages in chunk.threads])
    wamids = {m.message.wamid for _wa_id, messages in chunk.threads for m in messages}
    known = set(Message.objects.filter(wamid__any=wamids).values_list("wamid", flat=True))
    fresh: dict[str, tuple[Contact, HistoryMessage]] = {}
    late_media: dict[str, HistoryMessage] = {}
    amendments: list[AmendItem] = []
    reactions: list[tuple[Contact, HistoryMessage]] = []
    for contact, (_wa_id, messages) in zip(contacts, chunk.threads, strict=True):
        for item in messages:
            m = item.message
            if m.amendment is not None:
                amendments.append(AmendItem(number=number, contact=contact, message=m, echo=item.outbound))
            elif m.reaction is not None:
                reactions.append((contact, item))
            elif m.identity_change is not None:
                continue  # a past change of number: who the contact is now is Meta's live word, not the past's
            elif m.wamid not in known:
                fresh.setdefault(m.wamid, (contact, item))
            elif m.type in INBOUND_MEDIA_TYPES and m.content.get("id"):
                late_media[m.wamid] = item
    _attach_late_media(late_media)
    stored = _store_history(number=number, fresh=fresh, contacts=contacts) if fresh else []
    _apply_past_changes(number=number, amendments=amendments, reactions=reactions)
    return stored


def _apply_past_changes(
    *, number: BusinessNumber, amendments: list[AmendItem], reactions: list[tuple[Contact, HistoryMessage]]
) -> None:
    """A chunk's past edits, deletions and reactions, once its messages are stored: an edit or deletion of a
    message of ours by its sender (any other is dropped, where a live one is shown as a message of its own), a
    reaction in a conversation the number has (the business's own too); each idempotent, as the live ones are."""
    amend_messages(items=amendments, keep_unmatched=False)
    if not reactions:
        return
    talking = set(
        Conversation.objects.filter(
            number=number, contact_id__any=[contact.pk for contact, _item in reactions]
        ).values_list("contact_id", flat=True)
    )
    for contact, item in sorted(reactions, key=lambda pair: pair[1].message.timestamp):
        if contact.pk in talking:
            apply_reaction(
                number=number,
                contact=contact,
                reaction=item.message.reaction,
                reaction_wamid=item.message.wamid,
                reacted_at=item.message.timestamp,
                by_business=item.outbound,
            )


def _store_history(
    *, number: BusinessNumber, fresh: dict[str, tuple[Contact, HistoryMessage]], contacts: list[Contact]
) -> list[Message]:
    conversations = locked_conversations(
        items=[InboundItem(number=number, contact=contact, message=item.message) for contact, item in fresh.values()]
    )
    # Decided with the rows locked: a conversation a live message opened meanwhile has that message.
    with_messages = set(
        Conversation.objects.filter(pk__any=[c.pk for c in conversations.values()])
        .filter(Exists(Message.objects.filter(conversation=OuterRef("pk"))))
        .values_list("pk", flat=True)
    )
    rows = []
    for wamid, (contact, item) in fresh.items():
        message = item.message
        rows.append(
            Message(
                conversation=conversations[(number.pk, contact.pk)],
                wamid=wamid,
                direction=Direction.OUTBOUND if item.outbound else Direction.INBOUND,
                type=message.type,
                body=message.body,
                preview=message.preview[:300],
                content={**message.content, FROM_HISTORY: True, **({PHONE_APP: True} if item.outbound else {})},
                context=message.context,
                reply_to_wamid=message.reply_to_wamid,
                timestamp=message.timestamp,
                status=item.status if item.outbound else MessageStatus.RECEIVED,
                status_at=message.timestamp,
            )
        )
    stored = insert_rows(objects=rows)
    for message in stored:
        expect_inbound_media(message=message)
    _note_imported(number=number, stored=stored, contacts=contacts, with_messages=with_messages)
    return stored


def _note_imported(*, number: BusinessNumber, stored: list[Message], contacts: list[Contact], with_messages: set[int]):
    """Move the conversations' list lines forward to the imported messages, resolve those that held no message
    before (past work, not new work), and publish them."""
    touched = {message.conversation_id: message.conversation for message in stored}
    for message in sorted(stored, key=lambda m: m.timestamp):
        # Past messages move the list's line forward only; the window stays as the API's own messages set it.
        touched[message.conversation_id].note_message(message, window=False)
    contacts_by_id = {c.pk: c for c in contacts}
    for conversation in touched.values():
        conversation.contact = contacts_by_id[conversation.contact_id]
        if conversation.pk not in with_messages:
            conversation.status = ConversationStatus.RESOLVED
    # The rows are locked, so every status written back is the current one or the import's.
    update_rows(objects=list(touched.values()), fields=[*LIST_LINE_FIELDS, "status"])
    labels = labels_by_conversation(touched)
    publish_events(
        number_id=number.pk,
        events=[
            (events.CONVERSATION_UPDATED, {"conversation": conversation_snapshot(c, labels=labels[c.pk])})
            for c in touched.values()
        ],
    )


def _attach_late_media(items: dict[str, HistoryMessage]) -> None:
    """Meta sends a past media message first without its media id, and the id (for the last 14 days only) in a
    later history webhook: the stored message gets its file then, once."""
    if not items:
        return
    for message in (
        Message.objects.select_for_update(of=("self",))
        .filter(wamid__any=list(items), media__isnull=True, content__has_key=FROM_HISTORY)
        .order_by("pk")
    ):
        message.content = {**message.content, **items[message.wamid].message.content}
        message.save(update_fields=["content"])
        expect_inbound_media(message=message)


def sync_address_book(*, number: BusinessNumber, changes: list[AddressBookChange]) -> int:
    """Apply the phone app's contact changes to the number's address book, an older change never over a newer
    one (a removal is kept as one); returns how many entries now hold a change of this batch. Race-safe: every
    entry exists (``ON CONFLICT DO NOTHING``) and is locked before it is compared, so two workers syncing the same
    contact apply the newer change whichever commits first. Three queries whatever the batch's size."""
    if not changes:
        return 0
    contacts = resolve_contacts(senders=[Sender(wa_id=change.wa_id, user_id=None) for change in changes])
    newest: dict[int, AddressBookChange] = {}
    for contact, change in zip(contacts, changes, strict=True):
        if contact.pk not in newest or newest[contact.pk].timestamp <= change.timestamp:
            newest[contact.pk] = change
    AddressBookEntry.objects.bulk_create(
        [_address_book_row(AddressBookEntry(number=number, contact_id=pk), change) for pk, change in newest.items()],
        ignore_conflicts=True,
    )
    entries = (
        AddressBookEntry.objects.select_for_update().filter(number=number, contact_id__any=list(newest)).order_by("pk")
    )
    changed = [
        _address_book_row(e, newest[e.contact_id]) for e in entries if e.changed_at <= newest[e.contact_id].timestamp
    ]
    update_rows(objects=changed, fields=["full_name", "first_name", "removed", "changed_at"])
    _mark_on_business_app(numbers=[number])
    return len(changed)


def _address_book_row(entry: AddressBookEntry, change: AddressBookChange) -> AddressBookEntry:
    """The entry as ``change`` leaves it (a removal keeps the names it had)."""
    if not change.removed:
        entry.full_name, entry.first_name = change.full_name, change.first_name
    entry.removed, entry.changed_at = change.removed, change.timestamp
    return entry


def _mark_on_business_app(*, numbers: list[BusinessNumber]) -> None:
    """Only a Coexistence number gets echoes, history and contact sync: say so on the Numbers page (one UPDATE
    the first time, none once the numbers say so)."""
    unmarked = {number.pk for number in numbers if not number.on_business_app}
    if unmarked:
        BusinessNumber.objects.filter(pk__any=unmarked).update(on_business_app=True)

"""Coexistence numbers (the WhatsApp Business app and the API on one number): the phone app's echoes, the
customer's edits and deletions, through the drain as Meta delivers them."""

import copy
import json
import threading
import time
from pathlib import Path

import pytest
from django.db import transaction

from conversations.models import (
    AddressBookEntry,
    Conversation,
    Direction,
    MediaFile,
    Message,
    MessageStatus,
    Reaction,
)
from conversations.selectors import history_import_text, message_search, saved_name
from conversations.services.coexistence import sync_address_book
from conversations.snapshots import message_snapshot
from realtime import events
from realtime.models import Event
from sandbox.simulation import (
    contact_sync_change,
    echo_change,
    edit_content,
    envelope,
    history_change,
    history_declined_change,
    message_change,
    new_wamid,
    revoke_content,
    status_change,
)
from tests.conversations.team import as_user
from tests.factories import ContactFactory, ConversationFactory, MessageFactory
from tests.threads import in_threads
from webhooks import drain
from webhooks.models import WebhookEvent, WebhookEventState
from webhooks.payloads import parse_address_book

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parents[1] / "webhooks" / "payloads" / "coexistence"
NUMBER = {"phone_number_id": "427715309981234", "display_phone_number": "15557730142"}
CUSTOMER = "447700900461"
ORIGINAL = "wamid.HBgMNDQ3NzAwOTAwNDYxFQIAEhgSVEVYVDAwMDAwMDAwMDAwMQA="


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def deliver(payload: dict) -> WebhookEvent:
    event = WebhookEvent.objects.create(raw_body=json.dumps(payload), phone_number_id=NUMBER["phone_number_id"])
    drain.process_pending_webhook_events(limit=100)
    event.refresh_from_db()
    return event


def edit(*, of: str, text: str, ts: int, wamid: str | None = None) -> dict:
    content = {"edit": {"original_message_id": of, "message": {"type": "text", "text": {"body": text}}}}
    change = message_change(
        **NUMBER, wa_id=CUSTOMER, message_type="edit", content=content, wamid=wamid or new_wamid(), timestamp=ts
    )
    return envelope(waba_id="318273645502211", changes=[change])


@pytest.fixture
def original(number):
    conversation = ConversationFactory(number=number, contact__wa_id=CUSTOMER)
    return MessageFactory(conversation=conversation, wamid=ORIGINAL, body="Is my order on its way?")


def published(kind: str) -> list[dict]:
    return [e.payload for e in Event.objects.filter(type=kind).order_by("pk")]


# --- echoes ---------------------------------------------------------------------------------------------


def test_an_echo_is_an_outbound_message_of_the_customers_conversation_sent_from_the_phone_app(number):
    event = deliver(fixture("smb_message_echoes_text.json"))

    assert (event.state, event.item_errors) == (WebhookEventState.PROCESSED, [])
    message = Message.objects.get()
    assert message.direction == Direction.OUTBOUND
    assert message.conversation.contact.wa_id == CUSTOMER
    assert message.body == "Yes, it left the warehouse this morning."
    assert (message.status, message.sent_by) == (MessageStatus.SENT, None)
    shown = message_snapshot(message)
    assert shown["content"]["phone_app"] is True
    assert shown["sent_by"] is None
    created = published(events.MESSAGE_CREATED)
    assert [p["message"]["id"] for p in created] == [message.pk]
    assert created[0]["conversation"]["last_message"] == "Yes, it left the warehouse this morning."
    # The phone app's reply does not open the customer's 24-hour window.
    assert message.conversation.last_inbound_at is None


def test_an_echo_delivered_again_is_stored_once(number):
    deliver(fixture("smb_message_echoes_text.json"))
    again = deliver(fixture("smb_message_echoes_text.json"))

    assert again.state == WebhookEventState.PROCESSED
    assert Message.objects.count() == 1
    assert len(published(events.MESSAGE_CREATED)) == 1


def test_an_echos_statuses_move_its_ticks_whether_they_come_before_or_after_it(number):
    payload = fixture("smb_message_echoes_text.json")
    wamid = payload["entry"][0]["changes"][0]["value"]["message_echoes"][0]["id"]
    status = {**NUMBER, "wamid": wamid, "recipient_wa_id": CUSTOMER}
    deliver(envelope(waba_id="318273645502211", changes=[status_change(**status, status="delivered")]))
    deliver(payload)
    assert Message.objects.get().status == MessageStatus.DELIVERED

    deliver(envelope(waba_id="318273645502211", changes=[status_change(**status, status="read")]))
    assert Message.objects.get().status == MessageStatus.READ
    assert published(events.MESSAGE_STATUS_CHANGED)[-1]["status"] == "read"


def test_an_echo_with_unknown_fields_and_a_wrong_typed_value_is_still_stored(number):
    payload = fixture("smb_message_echoes_text.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["new_key"] = {"nested": [1, 2]}
    value["message_echoes"][0]["surprise"] = True
    value["message_echoes"][0]["to_user_id"] = 12345  # not a string: ignored, the phone number is enough
    broken = copy.deepcopy(value["message_echoes"][0]) | {"id": new_wamid(), "timestamp": {"not": "a time"}}
    value["message_echoes"].append(broken)

    event = deliver(payload)

    assert event.state == WebhookEventState.PROCESSED
    assert Message.objects.count() == 1
    assert [error["path"] for error in event.item_errors] == ["entry[0].changes[0].message_echoes[1]"]


def test_an_echo_for_an_unknown_number_is_unroutable(db):
    event = deliver(fixture("smb_message_echoes_text.json"))

    assert event.state == WebhookEventState.UNROUTABLE
    assert Message.objects.count() == 0


# --- edits ----------------------------------------------------------------------------------------------


def test_a_customers_edit_changes_the_original_and_keeps_its_earlier_text(original):
    event = deliver(fixture("message_edit_text.json"))

    assert (event.state, event.item_errors) == (WebhookEventState.PROCESSED, [])
    assert Message.objects.count() == 1  # no "Unsupported message" of its own
    original.refresh_from_db()
    assert original.body == "Is my order on its way? It's order 1042."
    assert original.content["original"]["body"] == "Is my order on its way?"
    assert [e["body"] for e in original.content["edits"]] == ["Is my order on its way? It's order 1042."]
    updated = published(events.MESSAGE_UPDATED)
    assert [p["message"]["body"] for p in updated] == ["Is my order on its way? It's order 1042."]


def test_an_edit_delivered_again_changes_nothing_more(original):
    deliver(fixture("message_edit_text.json"))
    deliver(fixture("message_edit_text.json"))

    original.refresh_from_db()
    assert len(original.content["edits"]) == 1
    assert len(published(events.MESSAGE_UPDATED)) == 1


def test_an_older_edit_arriving_late_never_overwrites_a_newer_one(original):
    deliver(edit(of=ORIGINAL, text="Third version", ts=1767261300))
    deliver(edit(of=ORIGINAL, text="Second version", ts=1767261200))

    original.refresh_from_db()
    assert original.body == "Third version"
    assert [e["body"] for e in original.content["edits"]] == ["Second version", "Third version"]
    assert original.content["original"]["body"] == "Is my order on its way?"


def test_an_edit_of_a_message_we_do_not_have_is_shown_as_its_own_message(number):
    event = deliver(edit(of="wamid.NOT-OURS", text="Actually, size M", ts=1767261300))

    assert event.state == WebhookEventState.PROCESSED
    message = Message.objects.get()
    assert (message.type, message.direction, message.body) == ("edit", Direction.INBOUND, "Actually, size M")
    assert message.preview == "✏️ Actually, size M"


def test_a_customer_cannot_edit_someone_elses_message(original):
    stranger = edit(of=ORIGINAL, text="Hijacked", ts=1767261300)
    stranger["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "447700900999"
    stranger["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = "447700900999"

    deliver(stranger)

    original.refresh_from_db()
    assert original.body == "Is my order on its way?"


def test_an_edit_with_a_wrong_typed_target_is_kept_as_its_own_message_and_fails_nothing(original):
    payload = fixture("message_edit_text.json")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["edit"]["original_message_id"] = 42
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["edit"]["extra"] = "tolerated"

    event = deliver(payload)

    assert (event.state, event.item_errors) == (WebhookEventState.PROCESSED, [])
    original.refresh_from_db()
    assert original.body == "Is my order on its way?"
    assert Message.objects.filter(type="edit").count() == 1


# --- revokes --------------------------------------------------------------------------------------------


def test_a_revoke_shows_the_message_as_deleted_and_keeps_its_words_for_the_audit_trail(original):
    event = deliver(fixture("message_revoke.json"))

    assert (event.state, event.item_errors) == (WebhookEventState.PROCESSED, [])
    original.refresh_from_db()
    assert original.body == "Is my order on its way?"  # in the database
    shown = message_snapshot(original)
    assert shown["text"] == "This message was deleted"
    assert "Is my order on its way?" not in json.dumps(shown)
    updated = published(events.MESSAGE_UPDATED)
    assert [p["message"]["text"] for p in updated] == ["This message was deleted"]
    assert "Is my order on its way?" not in json.dumps(updated)


def test_a_revoke_delivered_again_and_a_late_edit_after_it_change_nothing_shown(original):
    deliver(fixture("message_revoke.json"))
    deliver(fixture("message_revoke.json"))
    deliver(fixture("message_edit_text.json"))

    original.refresh_from_db()
    assert message_snapshot(original)["text"] == "This message was deleted"
    assert len([p for p in published(events.MESSAGE_UPDATED) if p["message"]["text"] == "This message was deleted"])


def test_the_inbox_list_line_of_an_edited_then_revoked_last_message_follows_it(original):
    conversation = original.conversation
    conversation.last_message_at, conversation.last_message_preview = original.timestamp, original.preview
    conversation.save()

    deliver(fixture("message_edit_text.json"))
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "Is my order on its way? It's order 1042."

    deliver(fixture("message_revoke.json"))
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "This message was deleted"
    lines = [p["conversation"]["last_message"] for p in published(events.CONVERSATION_UPDATED)]
    assert lines == ["Is my order on its way? It's order 1042.", "This message was deleted"]


def test_a_revoked_messages_words_are_no_longer_found_by_the_search(original, staff):
    assert [m.pk for m in message_search(user=staff, search="order")] == [original.pk]

    deliver(fixture("message_revoke.json"))

    assert list(message_search(user=staff, search="order")) == []
    assert as_user(staff).get("/api/messages/search/?q=order").json()["results"] == []


# --- the business's own edits and revokes, from the phone app -------------------------------------------


@pytest.fixture
def phone_app_reply(number):
    """What the business sent from the phone app, as an echo stored it."""
    deliver(envelope(waba_id="318273645502211", changes=[echo_change(**NUMBER, wa_id=CUSTOMER, timestamp=1767261000)]))
    return Message.objects.get(direction=Direction.OUTBOUND)


def phone_app_amends(*, message_type: str, content: dict, ts: int) -> dict:
    change = echo_change(**NUMBER, wa_id=CUSTOMER, message_type=message_type, content=content, timestamp=ts)
    return envelope(waba_id="318273645502211", changes=[change])


def test_an_edit_from_the_phone_app_changes_the_businesss_message_and_keeps_its_earlier_text(phone_app_reply):
    text = "Yes, it left this morning: tracking 1042."
    content = edit_content(original_wamid=phone_app_reply.wamid, text=text)
    event = deliver(phone_app_amends(message_type="edit", content=content, ts=1767261100))

    assert (event.state, event.item_errors) == (WebhookEventState.PROCESSED, [])
    phone_app_reply.refresh_from_db()
    assert phone_app_reply.body == text
    assert phone_app_reply.content["original"]["body"] == "Yes, it left this morning."
    assert Message.objects.count() == 1  # applied to the original, not stored as a message of its own
    assert [p["message"]["text"] for p in published(events.MESSAGE_UPDATED)] == [text]


def test_a_revoke_from_the_phone_app_shows_the_businesss_message_as_deleted(phone_app_reply, staff):
    content = revoke_content(original_wamid=phone_app_reply.wamid)
    event = deliver(phone_app_amends(message_type="revoke", content=content, ts=1767261100))

    assert (event.state, event.item_errors) == (WebhookEventState.PROCESSED, [])
    phone_app_reply.refresh_from_db()
    assert message_snapshot(phone_app_reply)["text"] == "This message was deleted"
    assert Message.objects.count() == 1
    assert list(message_search(user=staff, search="morning")) == []


def test_a_reaction_from_the_phone_app_shows_on_the_message_it_reacts_to(original):
    content = {"reaction": {"message_id": original.wamid, "emoji": "\U0001f44d"}}
    payload = phone_app_amends(message_type="reaction", content=content, ts=1767261100)
    listed_before = Conversation.objects.values("last_message_preview", "last_message_at").get()
    event = deliver(payload)

    assert (event.state, event.item_errors) == (WebhookEventState.PROCESSED, [])
    assert Message.objects.count() == 1  # no bubble of its own, as the inbox's own reactions have none
    [reaction] = Reaction.objects.all()
    assert (reaction.message_wamid, reaction.contact, reaction.emoji) == (original.wamid, None, "\U0001f44d")
    [changed] = published(events.MESSAGE_REACTIONS_CHANGED)
    assert changed["message_id"] == original.pk and [r["emoji"] for r in changed["reactions"]] == ["\U0001f44d"]
    assert Conversation.objects.values("last_message_preview", "last_message_at").get() == listed_before
    deliver(payload)  # Meta redelivers
    assert len(published(events.MESSAGE_REACTIONS_CHANGED)) == 1
    removed = {"reaction": {"message_id": original.wamid, "emoji": ""}}
    deliver(phone_app_amends(message_type="reaction", content=removed, ts=1767261200))
    assert Reaction.objects.get().emoji == ""


# --- the history of the phone app's chats -----------------------------------------------------------------

PAST = 1_760_000_000  # Oct 2025: before the number joined the API


def history(*threads: dict, phase: int = 2, chunk_order: int = 1, progress: int = 100) -> dict:
    change = history_change(**NUMBER, threads=list(threads), phase=phase, chunk_order=chunk_order, progress=progress)
    return envelope(waba_id="318273645502211", changes=[change])


def past_chat(wa_id: str = CUSTOMER) -> dict:
    return {
        "wa_id": wa_id,
        "messages": [
            {"text": "Do you ship to Leeds?", "timestamp": PAST, "wamid": f"wamid.{wa_id}-1"},
            {"text": "We do, next day.", "timestamp": PAST + 60, "wamid": f"wamid.{wa_id}-2", "from_business": True},
        ],
    }


def test_the_history_imports_past_chats_once_as_resolved_conversations_with_both_sides(number):
    event = deliver(history(past_chat()))

    assert (event.state, event.item_errors) == (WebhookEventState.PROCESSED, [])
    first, reply = Message.objects.order_by("timestamp")
    assert (first.direction, first.body, first.status) == (Direction.INBOUND, "Do you ship to Leeds?", "received")
    assert (reply.direction, reply.body, reply.status) == (Direction.OUTBOUND, "We do, next day.", "read")
    assert message_snapshot(reply)["content"]["phone_app"] is True
    conversation = first.conversation
    assert conversation.contact.wa_id == CUSTOMER
    # Past work, not new work: resolved, nothing unread, the reply window not opened by a months-old message.
    assert (conversation.status, conversation.last_inbound_at) == ("resolved", None)
    assert conversation.last_message_preview == "We do, next day."
    number.refresh_from_db()
    assert (number.on_business_app, number.history_progress, number.history_messages) == (True, 100, 2)

    again = deliver(history(past_chat()))  # Meta redelivers
    assert again.state == WebhookEventState.PROCESSED
    assert Message.objects.count() == 2
    number.refresh_from_db()
    assert number.history_messages == 2


def test_past_reactions_and_edits_in_the_history_are_applied_to_the_imported_messages_once(number):
    chat = past_chat()
    asked, answered = (m["wamid"] for m in chat["messages"])
    chat["messages"] += [
        {"type": "reaction", "content": {"reaction": {"message_id": answered, "emoji": "\u2764\ufe0f"}},
         "timestamp": PAST + 120, "wamid": "wamid.past-reaction"},
        {"type": "reaction", "content": {"reaction": {"message_id": asked, "emoji": "\U0001f44d"}},
         "timestamp": PAST + 130, "wamid": "wamid.past-business-reaction", "from_business": True},
        {"type": "edit", "content": edit_content(original_wamid=asked, text="Do you ship to Leeds and York?"),
         "timestamp": PAST + 140, "wamid": "wamid.past-edit"},
        {"type": "revoke", "content": revoke_content(original_wamid="wamid.older-than-the-history"),
         "timestamp": PAST + 150, "wamid": "wamid.past-revoke"},
    ]  # fmt: skip
    event = deliver(history(chat))

    assert (event.state, event.item_errors) == (WebhookEventState.PROCESSED, [])
    first, _reply = Message.objects.order_by("timestamp")  # the edits and reactions are no messages of their own
    assert first.body == "Do you ship to Leeds and York?"
    assert first.content["original"]["body"] == "Do you ship to Leeds?"
    reactions = {(r.message_wamid, r.contact_id, r.emoji) for r in Reaction.objects.all()}
    assert reactions == {(answered, first.conversation.contact_id, "\u2764\ufe0f"), (asked, None, "\U0001f44d")}
    conversation = Conversation.objects.get()
    assert (conversation.status, conversation.last_inbound_at) == ("resolved", None)  # still past work

    deliver(history(chat))  # Meta redelivers
    assert Message.objects.count() == 2 and Reaction.objects.count() == 2
    first.refresh_from_db()
    assert len(first.content["edits"]) == 1


def test_a_past_reaction_of_a_customer_whose_chat_the_history_does_not_hold_opens_nothing(number):
    lone = {
        "wa_id": "447700900999",
        "messages": [{"type": "reaction", "content": {"reaction": {"message_id": "wamid.gone", "emoji": "x"}},
                      "timestamp": PAST, "wamid": "wamid.lone-reaction"}],
    }  # fmt: skip
    assert deliver(history(lone)).state == WebhookEventState.PROCESSED
    assert not Conversation.objects.exists() and not Reaction.objects.exists()


def test_an_imported_past_never_moves_an_existing_conversation_back_nor_changes_its_status(number):
    conversation = ConversationFactory(number=number, contact__wa_id=CUSTOMER)
    MessageFactory(conversation=conversation, body="Where is my parcel?")
    conversation.refresh_from_db()
    line, status = conversation.last_message_preview, conversation.status

    deliver(history(past_chat()))

    conversation.refresh_from_db()
    assert (conversation.last_message_preview, conversation.status) == (line, status)
    assert conversation.messages.count() == 3


def test_chunks_in_any_order_leave_the_highest_progress_and_the_numbers_page_says_it(number, client, staff):
    deliver(history(past_chat("447700900462"), phase=2, chunk_order=3, progress=100))
    deliver(history(past_chat("447700900463"), phase=0, chunk_order=1, progress=30))

    number.refresh_from_db()
    assert (number.history_progress, number.history_phase, number.history_messages) == (100, 2, 4)
    assert published(events.NUMBER_UPDATED)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    page = client.get("/numbers/").content.decode()
    assert "Imported: 100 % (4 messages)" in page
    assert "Yes: the WhatsApp Business app answers too" in page


def test_a_declined_history_is_said_on_the_numbers_health(number):
    change = history_declined_change(**NUMBER)
    event = deliver(envelope(waba_id="318273645502211", changes=[change]))

    assert event.state == WebhookEventState.PROCESSED
    number.refresh_from_db()
    assert number.history_declined.startswith("2593109: History sync is turned off")
    assert history_import_text(number).startswith("Declined by the business (Meta: 2593109")
    assert Message.objects.count() == 0


def test_a_history_message_that_cannot_be_read_is_recorded_and_the_others_are_imported(number):
    payload = history(past_chat())
    thread = payload["entry"][0]["changes"][0]["value"]["history"][0]["threads"][0]
    thread["messages"].append({"id": "wamid.broken", "type": "text", "timestamp": "soon"})
    thread["messages"][0]["unknown_field"] = {"nested": True}  # Meta adds fields: ignored

    event = deliver(payload)

    assert event.state == WebhookEventState.PROCESSED
    assert [e["path"] for e in event.item_errors] == ["entry[0].changes[0].history[0].threads[0].messages[2]"]
    assert Message.objects.count() == 2


def test_a_history_for_an_unknown_number_is_unroutable(db):
    event = deliver(history(past_chat()))
    assert event.state == WebhookEventState.UNROUTABLE
    assert Message.objects.count() == 0


# --- the phone app's contacts ----------------------------------------------------------------------------


def contact_sync(*contacts: dict) -> dict:
    change = contact_sync_change(**NUMBER, contacts=list(contacts))
    return envelope(waba_id="318273645502211", changes=[change])


def test_the_phone_apps_contacts_name_the_customer_for_this_number_only_and_the_newest_change_wins(number, api):
    conversation = ConversationFactory(number=number, contact__wa_id=CUSTOMER)
    elsewhere = ConversationFactory(contact=conversation.contact)

    deliver(contact_sync({"phone_number": CUSTOMER, "full_name": "Pablo Morales", "timestamp": PAST}))
    assert api.get(f"/api/conversations/{conversation.pk}/contact/").json()["saved_as"] == "Pablo Morales"
    assert saved_name(conversation=elsewhere) == ""

    deliver(contact_sync({"phone_number": CUSTOMER, "full_name": "Pablo M. (Leeds)", "timestamp": PAST + 10}))
    deliver(contact_sync({"phone_number": CUSTOMER, "full_name": "Pablo (old)", "timestamp": PAST + 5}))  # late
    assert saved_name(conversation=conversation) == "Pablo M. (Leeds)"

    deliver(contact_sync({"phone_number": CUSTOMER, "action": "remove", "timestamp": PAST + 20}))
    deliver(contact_sync({"phone_number": CUSTOMER, "full_name": "Pablo", "timestamp": PAST + 15}))  # late
    assert saved_name(conversation=conversation) == ""
    number.refresh_from_db()
    assert number.on_business_app is True


def test_a_contact_sync_item_without_a_phone_number_is_recorded_and_the_others_apply(number):
    payload = contact_sync({"phone_number": "447700900470", "full_name": "Ana"}, {"phone_number": "", "full_name": "?"})
    event = deliver(payload)
    assert [e["path"] for e in event.item_errors] == ["entry[0].changes[0].state_sync[1]"]
    assert AddressBookEntry.objects.get().full_name == "Ana"


def test_a_past_photos_media_id_coming_in_a_later_history_webhook_gets_it_its_file_once(number):
    def photo_history(image: dict) -> dict:
        payload = history({"wa_id": CUSTOMER, "messages": [{"text": "-", "wamid": "wamid.photo", "timestamp": PAST}]})
        [message] = payload["entry"][0]["changes"][0]["value"]["history"][0]["threads"][0]["messages"]
        del message["text"]
        message.update(type="image", image=image)
        return payload

    deliver(photo_history({"caption": "The broken lid", "mime_type": "image/jpeg"}))  # no id at first
    message = Message.objects.get()
    assert (message.type, message.body) == ("image", "The broken lid")
    assert not MediaFile.objects.exists()

    later = {"caption": "The broken lid", "mime_type": "image/jpeg", "id": "1013859600285441", "sha256": "abc="}
    deliver(photo_history(later))
    deliver(photo_history(later))  # Meta redelivers

    media = MediaFile.objects.get()
    assert (media.message_id, media.meta_media_id, media.mime_type) == (message.pk, "1013859600285441", "image/jpeg")
    assert Message.objects.count() == 1


# --- workers racing -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_live_message_opening_the_conversation_while_its_history_imports_leaves_it_open(number):
    ContactFactory(wa_id=CUSTOMER)  # known already: only the conversation is new, opened by the live message
    live_committing = threading.Event()

    def customer_writes_now():
        payload = envelope(
            waba_id="318273645502211",
            changes=[message_change(**NUMBER, wa_id=CUSTOMER, content={"text": {"body": "Hello?"}})],
        )
        with transaction.atomic():  # the live drain's round, still open when the import starts
            WebhookEvent.objects.create(raw_body=json.dumps(payload), phone_number_id=NUMBER["phone_number_id"])
            drain.process_pending_webhook_events(limit=10)
            live_committing.set()
            time.sleep(0.5)

    def history_comes():
        live_committing.wait(10)
        deliver(history(past_chat()))

    in_threads(customer_writes_now, history_comes)

    conversation = Conversation.objects.get(contact__wa_id=CUSTOMER)
    assert conversation.status == "open"  # the customer's new message is work to do, whatever the import did
    assert conversation.messages.count() == 3


@pytest.mark.django_db(transaction=True)
def test_two_workers_syncing_the_same_new_contact_keep_the_newer_name(number):
    ContactFactory(wa_id=CUSTOMER)  # a customer who wrote before: only the address book entry is new
    older = contact_sync({"phone_number": CUSTOMER, "full_name": "Pablo", "timestamp": PAST})
    newer = contact_sync({"phone_number": CUSTOMER, "full_name": "Pablo Morales", "timestamp": PAST + 60})
    both_inside = threading.Barrier(2)

    def sync(payload):
        [(_change, item)] = parse_address_book(payload)[0]
        with transaction.atomic():
            both_inside.wait(10)
            sync_address_book(number=number, changes=[item])

    in_threads(lambda: sync(newer), lambda: sync(older))

    entry = AddressBookEntry.objects.get()
    assert (entry.full_name, entry.changed_at.timestamp()) == ("Pablo Morales", PAST + 60)

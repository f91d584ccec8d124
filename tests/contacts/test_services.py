"""Resolving WhatsApp senders to one contact each (a drain's batch in one SELECT), and Meta's identity changes."""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact
from contacts.services import ContactIdentityConflict, Sender, change_contact_identity, resolve_contacts
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def test_new_senders_become_contacts_in_order_and_the_same_person_twice_is_one():
    amara, bsuid_only, amara_again = resolve_contacts(
        senders=[
            Sender(wa_id="447700900461", user_id=None, profile_name="Amara"),
            Sender(wa_id=None, user_id="US.13491208655302741918", username="nomad"),
            Sender(wa_id="447700900461", user_id=None, profile_name="Amara"),
        ]
    )
    assert amara is amara_again
    assert (amara.wa_id, amara.phone, amara.profile_name) == ("447700900461", "+447700900461", "Amara")
    assert (bsuid_only.wa_id, bsuid_only.phone, bsuid_only.username) == (None, None, "nomad")
    assert Contact.objects.count() == 2


def test_known_senders_cost_one_select_for_the_whole_batch(django_assert_num_queries):
    known = [ContactFactory(profile_name=f"Customer {n}") for n in range(5)]
    senders = [Sender(wa_id=c.wa_id, user_id=None, profile_name=c.profile_name) for c in known]
    with django_assert_num_queries(1):
        assert resolve_contacts(senders=senders) == known


def test_a_profile_that_changed_is_kept_current():
    contact = ContactFactory(profile_name="Amara", username="")
    [resolved] = resolve_contacts(
        senders=[Sender(wa_id=contact.wa_id, user_id=None, profile_name="Amara O.", username="amara.o")]
    )
    contact.refresh_from_db()
    assert resolved.pk == contact.pk
    assert (contact.profile_name, contact.username) == ("Amara O.", "amara.o")


def test_the_bsuid_is_the_stronger_key_and_a_regenerated_one_replaces_the_old():
    by_phone = ContactFactory(wa_id="447700900461", user_id="US.1")
    by_bsuid = ContactFactory(wa_id=None, phone=None, user_id="US.2")
    [resolved] = resolve_contacts(senders=[Sender(wa_id="447700900461", user_id="US.2")])
    assert resolved.pk == by_bsuid.pk
    # Same phone, new BSUID: Meta regenerated it.
    [regenerated] = resolve_contacts(senders=[Sender(wa_id="447700900461", user_id="US.3")])
    by_phone.refresh_from_db()
    assert regenerated.pk == by_phone.pk and by_phone.user_id == "US.3"


def test_a_sender_without_any_id_is_refused():
    with pytest.raises(ValueError, match="wa_id or a user_id"):
        resolve_contacts(senders=[Sender(wa_id=None, user_id=None)])


@pytest.mark.django_db(transaction=True)
def test_a_contact_another_worker_creates_meanwhile_is_the_one_resolved():
    """The other worker's insert is not committed when this one looks, so this one inserts too, waits on the
    unique wa_id, fails when the other commits, and reads the winner's row."""
    inserted, winner = threading.Event(), {}

    def other_worker() -> None:
        try:
            with transaction.atomic():
                winner["contact"] = Contact.objects.create(wa_id="447700900461", phone="+447700900461")
                inserted.set()
                time.sleep(0.5)  # this worker's INSERT meets the uncommitted row meanwhile
        finally:
            connections.close_all()

    worker = threading.Thread(target=other_worker)
    worker.start()
    assert inserted.wait(10)
    with CaptureQueriesContext(connection) as queries:
        [resolved] = resolve_contacts(senders=[Sender(wa_id="447700900461", user_id=None, profile_name="Amara")])
    worker.join()
    assert any(q["sql"].startswith("INSERT") for q in queries.captured_queries), "it lost the race to insert"
    assert resolved.pk == winner["contact"].pk and resolved.profile_name == "Amara"
    assert Contact.objects.get().profile_name == "Amara"


def test_a_changed_number_moves_the_phone_with_it():
    contact = ContactFactory(wa_id="447700900461", user_id="US.1")
    change_contact_identity(contact=contact, new_wa_id="447700900999", new_user_id=None)
    contact.refresh_from_db()
    assert (contact.wa_id, contact.phone, contact.user_id) == ("447700900999", "+447700900999", "US.1")


def test_an_identity_another_contact_holds_is_refused_and_nothing_changes():
    contact, other = ContactFactory(user_id="US.1"), ContactFactory()
    with pytest.raises(ContactIdentityConflict):
        change_contact_identity(contact=contact, new_wa_id=other.wa_id, new_user_id="US.9")
    contact.refresh_from_db()
    assert contact.user_id == "US.1" and contact.wa_id != other.wa_id

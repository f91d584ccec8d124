"""Who may rename or merge a contact: one contact is one person to every number it talks to, so only someone
who may see each of those numbers (or a superuser) may change it; the system itself (contacts_normalize) may."""

from datetime import UTC, datetime

import pytest

from contacts.models import Contact
from conversations.models import Conversation
from conversations.selectors import can_change_contact
from conversations.services.contacts import ContactChangeForbidden, merge_contact_group, merge_contacts, rename_contact
from tests.factories import (
    BusinessNumberFactory,
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    OutboundMessageFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def numbers():
    return BusinessNumberFactory(name="Sales"), BusinessNumberFactory(name="Support")


@pytest.fixture
def sales_member(numbers):
    user = UserFactory(username="sam")
    numbers[0].members.add(user)
    return user


@pytest.fixture
def shared(numbers):
    """A customer who writes to both numbers."""
    contact = ContactFactory(profile_name="Noor")
    for number in numbers:
        MessageFactory(conversation=ConversationFactory(number=number, contact=contact))
    return contact


def test_only_who_sees_every_number_of_the_contact_may_change_it(numbers, sales_member, shared):
    sales_only = ConversationFactory(number=numbers[0]).contact
    both = UserFactory(username="lead")
    for number in numbers:
        number.members.add(both)

    assert can_change_contact(user=sales_member, contact=sales_only)
    assert not can_change_contact(user=sales_member, contact=shared)
    assert can_change_contact(user=both, contact=shared)
    assert can_change_contact(user=UserFactory(username="root", is_superuser=True), contact=shared)
    # A contact on no number the user sees is not theirs to change either.
    assert not can_change_contact(user=UserFactory(username="nobody"), contact=sales_only)


def test_a_member_of_one_number_cannot_rename_a_contact_shared_with_another(sales_member, shared):
    with pytest.raises(ContactChangeForbidden):
        rename_contact(contact=shared, name="Noor (Sales VIP)", user=sales_member)
    assert Contact.objects.get(pk=shared.pk).custom_name == ""


def test_a_member_of_one_number_cannot_merge_a_contact_shared_with_another(numbers, sales_member, shared):
    keep = ConversationFactory(number=numbers[0]).contact
    with pytest.raises(ContactChangeForbidden):
        merge_contacts(keep=keep, duplicate=shared, user=sales_member)
    with pytest.raises(ContactChangeForbidden):
        merge_contacts(keep=shared, duplicate=keep, user=sales_member)
    # Support still replies to the same phone.
    assert Conversation.objects.get(number=numbers[1]).contact_id == shared.pk
    assert Contact.objects.filter(pk__in=[keep.pk, shared.pk]).count() == 2


def test_a_group_merge_is_all_or_nothing(numbers, sales_member, shared):
    first, second = (ConversationFactory(number=numbers[0]).contact for _ in range(2))
    with pytest.raises(ContactChangeForbidden):
        merge_contact_group(contacts=[first, second, shared], user=sales_member)
    assert Contact.objects.filter(pk__in=[first.pk, second.pk, shared.pk]).count() == 3
    assert Conversation.objects.filter(contact__in=[first, second]).count() == 2


def test_members_of_every_number_and_the_system_may_merge(numbers, sales_member, shared):
    numbers[1].members.add(sales_member)
    keep = ConversationFactory(number=numbers[0]).contact
    merge_contacts(keep=keep, duplicate=shared, user=sales_member)
    assert Conversation.objects.get(number=numbers[1]).contact_id == keep.pk

    # contacts_normalize passes no user: it merges whoever the phones say are one person.
    again = ContactFactory()
    ConversationFactory(number=BusinessNumberFactory(), contact=again)
    merge_contacts(keep=keep, duplicate=again)
    assert not Contact.objects.filter(pk=again.pk).exists()


def test_a_merged_conversation_shows_its_newest_message_but_never_the_business_reaction(numbers):
    keep, duplicate = ContactFactory(), ContactFactory()
    kept = ConversationFactory(number=numbers[0], contact=keep)
    gone = ConversationFactory(number=numbers[0], contact=duplicate)
    MessageFactory(conversation=kept, timestamp=datetime(2026, 1, 1, 9, tzinfo=UTC), preview="kept's")
    newest = MessageFactory(
        conversation=gone, timestamp=datetime(2026, 1, 1, 10, tzinfo=UTC), preview="the duplicate's"
    )
    OutboundMessageFactory(
        conversation=gone, type="reaction", preview="Reacted 👍", timestamp=datetime(2026, 1, 1, 11, tzinfo=UTC)
    )
    merge_contacts(keep=keep, duplicate=duplicate)
    kept.refresh_from_db()
    assert (kept.last_message_at, kept.last_message_preview, kept.last_message_direction) == (
        newest.timestamp,
        "the duplicate's",
        "in",
    )
    assert kept.last_inbound_at == newest.timestamp

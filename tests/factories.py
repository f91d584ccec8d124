"""Model factories shared by the test suite."""

import itertools
from datetime import UTC, datetime

import factory
from django.contrib.auth import get_user_model
from factory.django import DjangoModelFactory

from contacts.models import Contact
from conversations.models import BusinessNumber, Conversation, Direction, Message, MessageStatus

_digits = itertools.count(1000)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"staff{n}")
    password = factory.django.Password("pw-for-tests")
    is_staff = True


class BusinessNumberFactory(DjangoModelFactory):
    class Meta:
        model = BusinessNumber

    phone_number_id = factory.Sequence(lambda n: f"10654035224{n:04d}")
    display_phone_number = factory.Sequence(lambda n: f"1555078{n:04d}")
    waba_id = "318273645502211"
    name = factory.Sequence(lambda n: f"Support line {n}")


class ContactFactory(DjangoModelFactory):
    class Meta:
        model = Contact

    wa_id = factory.LazyFunction(lambda: f"4477009{next(_digits):05d}")
    phone = factory.LazyAttribute(lambda c: f"+{c.wa_id}" if c.wa_id else None)
    profile_name = factory.Faker("name")


class ConversationFactory(DjangoModelFactory):
    class Meta:
        model = Conversation

    number = factory.SubFactory(BusinessNumberFactory)
    contact = factory.SubFactory(ContactFactory)
    last_message_at = factory.LazyFunction(lambda: datetime(2026, 1, 1, tzinfo=UTC))


class MessageFactory(DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    wamid = factory.Sequence(lambda n: f"wamid.TEST{n:08d}")
    direction = Direction.INBOUND
    type = "text"
    body = factory.Faker("sentence")
    preview = factory.LazyAttribute(lambda m: m.body)
    timestamp = factory.LazyFunction(lambda: datetime(2026, 1, 1, tzinfo=UTC))
    status = MessageStatus.RECEIVED


class OutboundMessageFactory(MessageFactory):
    direction = Direction.OUTBOUND
    wamid = None
    status = MessageStatus.PENDING


class LabelFactory(DjangoModelFactory):
    class Meta:
        model = "conversations.Label"

    number = factory.SubFactory(BusinessNumberFactory)
    name = factory.Sequence(lambda n: f"Label {n}")
    colour = "blue"


class CannedReplyFactory(DjangoModelFactory):
    """The number's canned reply unless ``owner`` is given (then pass ``number=None``)."""

    class Meta:
        model = "conversations.CannedReply"

    number = factory.SubFactory(BusinessNumberFactory)
    owner = None
    shortcut = factory.Sequence(lambda n: f"reply{n}")
    text = "Hello {{contact_name}}, this is {{agent_name}}."


class MessageTemplateFactory(DjangoModelFactory):
    """An approved template of the default WABA; ``components`` in Meta's shape."""

    class Meta:
        model = "conversations.MessageTemplate"

    waba_id = "318273645502211"
    name = factory.Sequence(lambda n: f"template_{n}")
    language = "en_US"
    status = "APPROVED"
    category = "UTILITY"
    meta_template_id = factory.Sequence(lambda n: f"77100{n:05d}")
    components = factory.LazyFunction(lambda: [{"type": "BODY", "text": "Your order has shipped."}])

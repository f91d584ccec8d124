"""A template Meta announced by a webhook before any sync has no components yet: it is neither offered nor sent
until the sync brings them (the sync itself, against the Meta sandbox, in tests/e2e/test_number_health.py)."""

import pytest

from conversations.models import Message
from conversations.selectors import templates_for
from conversations.services.errors import SendRefused
from conversations.services.outbound import send_template
from tests.factories import BusinessNumberFactory, ConversationFactory, MessageTemplateFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_an_approved_template_without_components_is_not_offered_nor_sent():
    number = BusinessNumberFactory(waba_id="318273645502211")
    conversation = ConversationFactory(number=number)
    announced = MessageTemplateFactory(name="order_ready", components=[])
    synced = MessageTemplateFactory(name="order_shipped")
    assert list(templates_for(conversation=conversation)) == [synced]
    with pytest.raises(SendRefused) as refused:
        send_template(user=UserFactory(), conversation=conversation, template=announced)
    assert refused.value.code == "template_not_approved"
    assert not Message.objects.exists()

"""Staff marking a customer's marketing choice on a number (the customer told them so, not Meta): stored as
Meta's ``user_preferences`` are, so the template send refusal reads both, and published to the number's pages."""

from django.db import transaction
from django.utils import timezone

from contacts.models import Contact
from conversations.models import BusinessNumber, MarketingPreference, NumberMembership
from conversations.services.errors import WorkflowRefused
from realtime import events
from realtime.publish import publish_event


@transaction.atomic
def set_marketing_preference(*, user, number: BusinessNumber, contact: Contact, opted_out: bool) -> MarketingPreference:
    """The contact stops (``opted_out``) or resumes marketing from the number, marked by a member of it."""
    if not (user.is_superuser or NumberMembership.objects.filter(number=number, user=user).exists()):
        raise WorkflowRefused("not_allowed", "Only a member of this number can mark this.", status=403)
    now = timezone.now()
    preference, _ = MarketingPreference.objects.update_or_create(
        number=number, contact=contact, defaults={"opted_out": opted_out, "changed_at": now, "changed_by": user}
    )
    payload = {"number_id": number.pk, "contact_id": contact.pk, "opted_out": opted_out, "changed_at": now.isoformat()}
    publish_event(number_id=number.pk, type=events.CONTACT_MARKETING_CHANGED, payload=payload)
    return preference

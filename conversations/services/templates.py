"""Message templates: synced from the WhatsApp Business Account into ``MessageTemplate``."""

from django.db import transaction

from conversations.graph_api import GraphClient, GraphError, Outcome
from conversations.models import BusinessNumber, MessageTemplate
from conversations.services.errors import RetryLater


def sync_templates(*, number: BusinessNumber) -> int:
    """Replace the number's WABA templates with Meta's current list; returns how many there are."""
    if not number.waba_id:
        raise ValueError(f"{number} has no WhatsApp Business Account id")
    try:
        remote = GraphClient.for_number(number).list_templates(waba_id=number.waba_id)
    except GraphError as error:
        if error.outcome is Outcome.RETRY:
            raise RetryLater(str(error)) from error
        if error.outcome is Outcome.TOKEN_EXPIRED:
            BusinessNumber.objects.filter(pk=number.pk).update(needs_reauthorization=True)
        raise
    with transaction.atomic():
        keep = []
        for item in remote:
            template, _created = MessageTemplate.objects.update_or_create(
                waba_id=number.waba_id,
                name=str(item.get("name") or ""),
                language=str(item.get("language") or ""),
                defaults={
                    "status": str(item.get("status") or ""),
                    "category": str(item.get("category") or ""),
                    "components": item.get("components") or [],
                },
            )
            keep.append(template.pk)
        MessageTemplate.objects.filter(waba_id=number.waba_id).exclude(pk__in=keep).delete()
    return len(keep)


def sync_templates_for(*, number_id: int) -> int:
    return sync_templates(number=BusinessNumber.objects.get(pk=number_id))

"""What Meta says about a WhatsApp Business Account, its numbers, templates and customers' marketing
preferences, applied: from the account-level webhooks (one change at a time, from the drain) and from a poll of
each number's fields on the Graph API, which backs the webhooks up.

Every change is kept in ``AccountChange`` with the delivery it came from, once whatever the redeliveries (its
``dedupe_key`` is unique: the insert that loses is the redelivery). The state moves only forward in Meta's time:
each group of fields has its own "as of" column, and the UPDATE carries the condition, so a late delivery of
older news is recorded but changes nothing (``applied`` false), whichever worker gets there first.
"""

import hashlib
import json
import logging
from dataclasses import asdict
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Model, Q
from django.utils import timezone

from contacts.phones import digits_of
from contacts.services import Sender, resolve_contacts
from conversations import jobs
from conversations.account_events import (
    GRAPH_API_POLL,
    NUMBER_FIELDS,
    AccountAlert,
    AccountChangeItem,
    AccountUpdate,
    CapabilityUpdate,
    MarketingPreference,
    NameUpdate,
    NumberSnapshot,
    QualityUpdate,
    ReviewUpdate,
    SecurityUpdate,
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateRef,
    TemplateStatusUpdate,
    portfolio_limit,
)
from conversations.graph_api import GraphClient, GraphError, Outcome
from conversations.models import (
    AccountChange,
    BusinessAccount,
    BusinessNumber,
    ChangeSource,
    MessageTemplate,
)
from conversations.models import MarketingPreference as MarketingPreferenceRow
from conversations.services.errors import RetryLater
from conversations.services.number_alerts import review_number_alerts
from conversations.snapshots import number_state_snapshot, template_snapshot
from realtime import events
from realtime.publish import publish_event, publish_events

logger = logging.getLogger(__name__)


class UnroutableChange(Exception):
    """The change names an account, number or template this deployment does not have."""


# --- webhooks ----------------------------------------------------------------------------------------


def apply_account_change(*, change: AccountChangeItem, webhook_event_id: int | None = None) -> AccountChange | None:
    """Record one account-level change and apply it to the state; ``None`` when it was recorded before (a
    redelivery or a replay). Raises ``UnroutableChange`` for an account or number we do not have."""
    numbers = list(BusinessNumber.objects.filter(waba_id=change.waba_id).order_by("pk"))
    if not numbers:
        raise UnroutableChange(f"unknown WhatsApp Business Account id {change.waba_id!r}")
    number = _number_of(change, numbers) if change.field in NUMBER_FIELDS else None
    at = change.occurred_at or timezone.now()
    with transaction.atomic():
        record = _record(
            waba_id=change.waba_id,
            number=number,
            field=change.field,
            source=ChangeSource.WEBHOOK,
            values={
                **_jsonable(asdict(change.update)),
                **({"ignored": list(change.ignored)} if change.ignored else {}),
            },
            raw=change.raw,
            occurred_at=change.occurred_at,
            webhook_event_id=webhook_event_id,
            dedupe_key=change.dedupe_key,
        )
        if record is None:
            return None
        applier = _APPLIERS[type(change.update)]
        if applier(update=change.update, waba_id=change.waba_id, number=number, numbers=numbers, at=at):
            AccountChange.objects.filter(pk=record.pk).update(applied=True)
            record.applied = True
            review_number_alerts(change=record, numbers=numbers)
    return record


def _number_of(change: AccountChangeItem, numbers: list[BusinessNumber]) -> BusinessNumber:
    """The account's number a number-scoped change names: by display digits (Meta's only key on most of these
    fields; the Graph API formats the same number as +1 631-555-5555), or by metadata's id when it has one."""
    for number in numbers:
        if change.phone_number_id and number.phone_number_id == change.phone_number_id:
            return number
    for number in numbers:
        if change.display_phone_number and digits_of(number.display_phone_number) == change.display_phone_number:
            return number
    shown = change.phone_number_id or change.display_phone_number
    raise UnroutableChange(f"unknown number {shown!r} in WhatsApp Business Account {change.waba_id!r}")


def _record(*, dedupe_key: str, **fields) -> AccountChange | None:
    """The history row, or ``None`` if one with this key exists: the unique constraint decides, not a read."""
    try:
        with transaction.atomic():
            return AccountChange.objects.create(dedupe_key=dedupe_key, applied=False, **fields)
    except IntegrityError:
        if AccountChange.objects.filter(dedupe_key=dedupe_key).exists():
            return None
        raise


def _forward(model: type[Model], *, pk: int, stamp: str, at: datetime, fields: dict[str, Any]) -> bool:
    """Set ``fields`` on the row unless it already holds newer news (``stamp`` after ``at``): one conditional
    UPDATE, so two workers applying an old and a new change in either order leave the new one."""
    if not fields:
        return False
    newer_known = Q(**{f"{stamp}__gt": at})
    return bool(model.objects.filter(pk=pk).exclude(newer_known).update(**fields, **{stamp: at}))


def _account(waba_id: str) -> BusinessAccount:
    account, _created = BusinessAccount.objects.get_or_create(waba_id=waba_id)
    return account


def _apply_quality(*, update: QualityUpdate, waba_id, number, numbers, at) -> bool:
    fields = {"quality_event": update.event} if update.event else {}
    if update.current_limit:
        fields["messaging_limit_tier"] = update.current_limit
    if update.event == "THROUGHPUT_UPGRADE":
        fields["throughput_level"] = "HIGH"  # Meta: the number moved to high throughput (1,000 mps)
    applied = _forward(BusinessNumber, pk=number.pk, stamp="health_updated_at", at=at, fields=fields)
    account_applied = False
    if update.portfolio_limit:
        account_applied = _forward(
            BusinessAccount,
            pk=_account(waba_id).pk,
            stamp="limit_updated_at",
            at=at,
            fields={"messaging_limit": update.portfolio_limit},
        )
    publish_numbers(numbers if account_applied else [number] if applied else [], waba_id=waba_id)
    return applied or account_applied


def _apply_name(*, update: NameUpdate, waba_id, number, numbers, at) -> bool:
    fields = {"name_status": update.decision, "name_rejection_reason": update.rejection_reason}
    if update.requested_name:
        fields["requested_name"] = update.requested_name
        if update.decision == "APPROVED":
            fields["verified_name"] = update.requested_name
    applied = _forward(BusinessNumber, pk=number.pk, stamp="name_updated_at", at=at, fields=fields)
    publish_numbers([number] if applied else [], waba_id=waba_id)
    return applied


def _forward_account(*, waba_id: str, numbers: list[BusinessNumber], stamp: str, at, fields: dict[str, Any]) -> bool:
    """``_forward`` on the account's row (made on its first news); its numbers are published when it moved."""
    applied = _forward(BusinessAccount, pk=_account(waba_id).pk, stamp=stamp, at=at, fields=fields)
    publish_numbers(numbers if applied else [], waba_id=waba_id)
    return applied


def _apply_account_update(*, update: AccountUpdate, waba_id, number, numbers, at) -> bool:
    fields: dict[str, Any] = {"status_event": update.event} if update.event else {}
    if update.event == "ACCOUNT_RESTRICTION":
        # The restrictions in force are the last restriction event's (an empty list lifts them).
        fields["restrictions"] = [
            {"type": r.type, "expires_at": r.expires_at.isoformat() if r.expires_at else None}
            for r in update.restrictions
        ]
    if update.violation_type:
        fields["violation_type"] = update.violation_type
    if update.ban_state:
        fields.update(ban_state=update.ban_state, ban_date=update.ban_date)
    return _forward_account(waba_id=waba_id, numbers=numbers, stamp="status_updated_at", at=at, fields=fields)


def _apply_review(*, update: ReviewUpdate, waba_id, number, numbers, at) -> bool:
    fields = {"review_decision": update.decision} if update.decision else {}
    return _forward_account(waba_id=waba_id, numbers=numbers, stamp="review_updated_at", at=at, fields=fields)


def _apply_alert(*, update: AccountAlert, waba_id, number, numbers, at) -> bool:
    alert = {
        "type": update.type,
        "severity": update.severity,
        "status": update.status,
        "description": update.description,
        "entity_type": update.entity_type,
        "entity_id": update.entity_id,
    }
    return _forward_account(
        waba_id=waba_id, numbers=numbers, stamp="alert_updated_at", at=at, fields={"last_alert": alert}
    )


def _apply_capability(*, update: CapabilityUpdate, waba_id, number, numbers, at) -> bool:
    fields: dict[str, Any] = {"messaging_limit": update.portfolio_limit} if update.portfolio_limit else {}
    if update.max_phone_numbers is not None:
        fields["max_phone_numbers"] = update.max_phone_numbers
    return _forward_account(waba_id=waba_id, numbers=numbers, stamp="limit_updated_at", at=at, fields=fields)


def _template(*, waba_id: str, ref: TemplateRef, numbers: list[BusinessNumber]) -> MessageTemplate:
    """The template a change names, by name and language within the account; one Meta announces before the
    next sync is created without components, and the account's templates are synced once this commits (until
    then it is neither offered nor sent: selectors.templates_for, outbound.send_template)."""
    if not ref.name or not ref.language:
        raise UnroutableChange(f"template change without a name and language (id {ref.meta_template_id!r})")
    template, created = MessageTemplate.objects.get_or_create(
        waba_id=waba_id, name=ref.name, language=ref.language, defaults={"status": ""}
    )
    if created:
        jobs.enqueue(jobs.SYNC_TEMPLATES, numbers[0].pk)
    if ref.meta_template_id and template.meta_template_id != ref.meta_template_id:
        MessageTemplate.objects.filter(pk=template.pk).update(meta_template_id=ref.meta_template_id)
    return template


def _apply_template_status(*, update: TemplateStatusUpdate, waba_id, number, numbers, at) -> bool:
    template = _template(waba_id=waba_id, ref=update.template, numbers=numbers)
    fields = {"status": update.event[:32], "status_reason": update.reason, "status_detail": update.detail}
    if update.category:
        fields["category"] = update.category[:32]
    applied = _forward(MessageTemplate, pk=template.pk, stamp="status_updated_at", at=at, fields=fields)
    _publish_template(template.pk if applied else None, numbers=numbers)
    return applied


def _apply_template_quality(*, update: TemplateQualityUpdate, waba_id, number, numbers, at) -> bool:
    template = _template(waba_id=waba_id, ref=update.template, numbers=numbers)
    fields = {"quality_score": update.new_score} if update.new_score else {}
    applied = _forward(MessageTemplate, pk=template.pk, stamp="quality_updated_at", at=at, fields=fields)
    _publish_template(template.pk if applied else None, numbers=numbers)
    return applied


def _apply_template_category(*, update: TemplateCategoryUpdate, waba_id, number, numbers, at) -> bool:
    template = _template(waba_id=waba_id, ref=update.template, numbers=numbers)
    fields: dict[str, Any] = {"category": update.new_category[:32]} if update.new_category else {}
    if update.correct_category:  # impending: new_category is still the current one
        fields.update(pending_category=update.correct_category, category_switches_at=update.switches_at)
    elif update.new_category:  # done
        fields.update(pending_category="", category_switches_at=None)
    applied = _forward(MessageTemplate, pk=template.pk, stamp="category_updated_at", at=at, fields=fields)
    _publish_template(template.pk if applied else None, numbers=numbers)
    return applied


# Marketing preference values Meta sends; any other (e.g. a future one) is recorded and applied as neither.
PREFERENCE_VALUES = {"stop": True, "resume": False}


def _apply_preference(*, update: MarketingPreference, waba_id, number, numbers, at) -> bool:
    opted_out = PREFERENCE_VALUES.get(update.value)
    if opted_out is None or (update.wa_id is None and update.user_id is None):
        return False
    (contact,) = resolve_contacts(
        senders=[Sender(wa_id=update.wa_id, user_id=update.user_id, profile_name=update.profile_name)]
    )
    preference, created = MarketingPreferenceRow.objects.get_or_create(
        number=number, contact=contact, defaults={"opted_out": opted_out, "changed_at": at}
    )
    applied = created or _forward(
        # Meta's word now: no longer one a staff member marked (changed_by says who did).
        MarketingPreferenceRow,
        pk=preference.pk,
        stamp="changed_at",
        at=at,
        fields={"opted_out": opted_out, "changed_by": None},
    )
    if applied:
        publish_event(
            number_id=number.pk,
            type=events.CONTACT_MARKETING_CHANGED,
            payload={
                "number_id": number.pk,
                "contact_id": contact.pk,
                "opted_out": opted_out,
                "changed_at": at.isoformat(),
            },
        )
    return applied


def _apply_security(*, update: SecurityUpdate, waba_id, number, numbers, at) -> bool:
    # An event, not a state: the change's record is what is kept, and its alert tells the supervisors.
    return bool(update.event)


_APPLIERS = {
    QualityUpdate: _apply_quality,
    NameUpdate: _apply_name,
    AccountUpdate: _apply_account_update,
    AccountAlert: _apply_alert,
    ReviewUpdate: _apply_review,
    CapabilityUpdate: _apply_capability,
    TemplateStatusUpdate: _apply_template_status,
    TemplateQualityUpdate: _apply_template_quality,
    TemplateCategoryUpdate: _apply_template_category,
    MarketingPreference: _apply_preference,
    SecurityUpdate: _apply_security,
}


# --- the poll ----------------------------------------------------------------------------------------

# Number fields the poll reads. The number's own messaging_limit_tier exists up to v23.0; from v24.0 the
# portfolio's limit is whatsapp_business_manager_messaging_limit (docs/meta.md §10.10).
POLL_FIELDS = ["quality_rating", "throughput", "name_status", "verified_name", "status"]


def poll_fields(version: str) -> list[str]:
    major = int(digits_of(version.split(".")[0]) or 0)
    return [*POLL_FIELDS, "whatsapp_business_manager_messaging_limit" if major >= 24 else "messaging_limit_tier"]


def snapshot_of(data: dict[str, Any]) -> NumberSnapshot:
    """The Graph API's answer read leniently: a value of a type Meta does not send reads as not answered."""

    def text(value: Any) -> str:
        return value[:64] if isinstance(value, str) else ""

    throughput = data.get("throughput")
    limit = data.get("whatsapp_business_manager_messaging_limit")
    return NumberSnapshot(
        quality_rating=text(data.get("quality_rating")),
        throughput_level=text(throughput.get("level")) if isinstance(throughput, dict) else "",
        name_status=text(data.get("name_status")),
        verified_name=data["verified_name"][:256] if isinstance(data.get("verified_name"), str) else "",
        status=text(data.get("status")),
        messaging_limit_tier=text(data.get("messaging_limit_tier")),
        portfolio_limit=portfolio_limit(str(limit))
        if isinstance(limit, str | int) and not isinstance(limit, bool)
        else "",
    )


def poll_number(*, number_id: int) -> bool:
    """Read the number's fields on the Graph API and apply what changed; ``True`` if something did. A
    transient error raises ``RetryLater``; an expired token flags the number, as a failed send does."""
    number = BusinessNumber.objects.filter(pk=number_id, needs_reauthorization=False).first()
    if number is None:
        return False  # gone, or waiting for a new token: asking Meta again would only get 190 again
    try:
        data = GraphClient.for_number(number).phone_number_fields(
            phone_number_id=number.phone_number_id, fields=poll_fields(settings.META_GRAPH_API_VERSION)
        )
    except GraphError as error:
        if error.outcome is Outcome.RETRY:
            raise RetryLater(str(error)) from error
        if error.outcome is Outcome.TOKEN_EXPIRED:
            BusinessNumber.objects.filter(pk=number.pk, needs_reauthorization=False).update(needs_reauthorization=True)
            return False
        logger.warning("polling number %s: %s", number.pk, error)
        return False
    return apply_number_snapshot(number=number, snapshot=snapshot_of(data), raw=data) is not None


def apply_number_snapshot(
    *, number: BusinessNumber, snapshot: NumberSnapshot, raw: dict[str, Any] | None = None, observed_at=None
) -> AccountChange | None:
    """Apply what a poll read, the way a webhook's change is applied; recorded (with no delivery) only when
    something changed. The UPDATEs themselves say whether it did (a row already holding these values is not
    matched), so two polls at once record the change once."""
    at = observed_at or timezone.now()
    health = {
        "quality_rating": snapshot.quality_rating,
        "throughput_level": snapshot.throughput_level,
        "meta_status": snapshot.status,
        "messaging_limit_tier": snapshot.messaging_limit_tier,
    }
    names = {"name_status": snapshot.name_status, "verified_name": snapshot.verified_name}
    changed: dict[str, Any] = {}
    with transaction.atomic():
        for stamp, group in (("health_updated_at", health), ("name_updated_at", names)):
            fields = {key: value for key, value in group.items() if value}
            if fields and _forward_if_different(BusinessNumber, pk=number.pk, stamp=stamp, at=at, fields=fields):
                changed.update({key: value for key, value in fields.items() if getattr(number, key) != value})
        if snapshot.portfolio_limit and number.waba_id:
            account = _account(number.waba_id)
            fields = {"messaging_limit": snapshot.portfolio_limit}
            if _forward_if_different(BusinessAccount, pk=account.pk, stamp="limit_updated_at", at=at, fields=fields):
                changed["portfolio_limit"] = snapshot.portfolio_limit
        if not changed:
            return None
        record = _record(
            waba_id=number.waba_id,
            number=number,
            field=GRAPH_API_POLL,
            source=ChangeSource.POLL,
            values=changed,
            raw=raw or {},
            occurred_at=at,
            webhook_event_id=None,
            dedupe_key=_key(GRAPH_API_POLL, number.pk, at.isoformat(), changed),
        )
        AccountChange.objects.filter(pk=record.pk).update(applied=True)
        record.applied = True
        numbers = [number]
        if "portfolio_limit" in changed:
            numbers = list(BusinessNumber.objects.filter(waba_id=number.waba_id).order_by("pk"))
        publish_numbers(numbers, waba_id=number.waba_id)
        review_number_alerts(change=record, numbers=numbers)
    return record


def _forward_if_different(model: type[Model], *, pk: int, stamp: str, at: datetime, fields: dict[str, Any]) -> bool:
    """``_forward``, matching the row only if one of ``fields`` differs: a poll that finds what is known changes
    nothing, not even the "as of" time."""
    same = Q(**fields)
    return bool(model.objects.filter(pk=pk).exclude(Q(**{f"{stamp}__gt": at}) | same).update(**fields, **{stamp: at}))


def poll_numbers() -> int:
    """Celery beat: one poll task per number that can be polled; returns how many were queued."""
    ids = list(BusinessNumber.objects.filter(needs_reauthorization=False).order_by("pk").values_list("pk", flat=True))
    for number_id in ids:
        jobs.enqueue(jobs.POLL_NUMBER, number_id)
    return len(ids)


# --- events ---------------------------------------------------------------------------------------


def publish_numbers(numbers: list[BusinessNumber], *, waba_id: str) -> None:
    """A ``number.updated`` for each number (of one account) as it now is: the Numbers page redraws it."""
    if not numbers:
        return
    account = BusinessAccount.objects.filter(waba_id=waba_id).first() if waba_id else None
    fresh = BusinessNumber.objects.filter(pk__in=[n.pk for n in numbers]).order_by("pk")
    for number in fresh:
        publish_event(
            number_id=number.pk, type=events.NUMBER_UPDATED, payload={"number": number_state_snapshot(number, account)}
        )


def _publish_template(template_id: int | None, *, numbers: list[BusinessNumber]) -> None:
    if template_id is None:
        return
    template = MessageTemplate.objects.get(pk=template_id)
    payload = {"template": template_snapshot(template)}
    for number in numbers:
        publish_events(number_id=number.pk, events=[(events.TEMPLATE_UPDATED, payload)])


def _jsonable(value: Any) -> Any:
    """Parsed values as the JSON history stores them (times as ISO 8601)."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _key(*parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()

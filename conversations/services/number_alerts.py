"""Number alerts: the rules that turn what Meta said into an alert every member of a number sees, and its end.

Called once per applied change (``services/account.py``, for a webhook's change and for a poll that found one),
inside the change's transaction. Rules, per number:

- quality: a quality event ``FLAGGED`` or ``DOWNGRADE``, or a polled rating ``YELLOW`` or ``RED``, raises it;
  ``UNFLAGGED``/``UPGRADE`` or a polled ``GREEN`` ends it;
- account: a ban (``DISABLE``, ``SCHEDULE_FOR_DISABLE``), an offboarding, a rejected review of the account, or
  restrictions in force raise it (the worst of them); none of those ends it;
- template: each of the account's templates ``PAUSED``, ``DISABLED`` or ``REJECTED`` raises one; any other
  status ends it;
- security: each change of the number's two-step verification (``security``) raises one that ends at once: a
  notice to the supervisors, no banner (nothing stays wrong that the agents could act on).

An alert is raised once: the same condition again (a redelivery, another poll) keeps the open one; a new
condition (YELLOW, then RED) ends it and raises another. The database holds that: one open alert per number,
kind and template, and one per change. Each raise notifies the number's supervisors; each raise or end is a
``number.alerts_changed`` event with the number's open alerts.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.account_events import (
    ACCOUNT_REVIEW_UPDATE,
    ACCOUNT_UPDATE,
    GRAPH_API_POLL,
    MESSAGE_TEMPLATE_STATUS_UPDATE,
    PHONE_NUMBER_QUALITY_UPDATE,
    SECURITY,
)
from conversations.alerts import alert_snapshot
from conversations.models import (
    AccountChange,
    BusinessAccount,
    BusinessNumber,
    MemberRole,
    MessageTemplate,
    Notification,
    NotificationKind,
    NumberAlert,
    NumberAlertKind,
    NumberMembership,
)
from conversations.selectors import STOPPED_TEMPLATE_STATUSES, open_alerts, unread_notification_count
from conversations.snapshots import notification_snapshot
from realtime import events
from realtime.publish import publish_events

LOW_QUALITY_EVENTS = ("FLAGGED", "DOWNGRADE")
RECOVERED_QUALITY_EVENTS = ("UNFLAGGED", "UPGRADE")
LOW_RATINGS = ("YELLOW", "RED")
BAN_STATES = ("DISABLE", "SCHEDULE_FOR_DISABLE")
OFFBOARDING_EVENTS = ("ACCOUNT_OFFBOARDED", "ACCOUNT_DELETED", "PARTNER_REMOVED")

_KEEP = object()  # the change says nothing about this alert: leave it as it is


def review_number_alerts(*, change: AccountChange, numbers: list[BusinessNumber]) -> None:
    """Raise or end the alerts the applied ``change`` calls for on ``numbers`` (the account's numbers)."""
    if change.field in (PHONE_NUMBER_QUALITY_UPDATE, GRAPH_API_POLL) and change.number_id:
        condition = _quality_condition(change)
        if condition is not _KEEP:
            settle_number_alerts(
                change=change, number_ids=[change.number_id], kind=NumberAlertKind.QUALITY, condition=condition
            )
    elif change.field in (ACCOUNT_UPDATE, ACCOUNT_REVIEW_UPDATE):
        account = BusinessAccount.objects.filter(waba_id=change.waba_id).first()
        condition, detail = _account_condition(account)
        settle_number_alerts(
            change=change,
            number_ids=[n.pk for n in numbers],
            kind=NumberAlertKind.ACCOUNT,
            condition=condition,
            detail=detail,
        )
    elif change.field == SECURITY and change.number_id:
        _notify_security_change(change)
    elif change.field == MESSAGE_TEMPLATE_STATUS_UPDATE:
        ref = change.values.get("template") or {}
        template = MessageTemplate.objects.filter(
            waba_id=change.waba_id, name=ref.get("name"), language=ref.get("language")
        ).first()
        if template is None:
            return
        status = template.status.upper()
        settle_number_alerts(
            change=change,
            number_ids=[n.pk for n in numbers],
            kind=NumberAlertKind.TEMPLATE,
            template=template,
            condition=status if status in STOPPED_TEMPLATE_STATUSES else None,
            detail=" ".join(part for part in (template.status_reason, template.status_detail) if part != "NONE"),
        )


def _notify_security_change(change: AccountChange) -> None:
    # The change was recorded in this transaction (a redelivery never gets here): no alert names it yet.
    requester = str(change.values.get("requester") or "")
    now = timezone.now()
    notice = NumberAlert.objects.create(
        number_id=change.number_id,
        kind=NumberAlertKind.SECURITY,
        condition=str(change.values.get("event", ""))[:64],
        detail=f"Requested by Business Suite user {requester}" if requester else "",
        change=change,
        raised_at=now,
        resolved_at=now,
    )
    _notify_supervisors([notice])


def _quality_condition(change: AccountChange):
    values = change.values
    if change.field == GRAPH_API_POLL:
        rating = str(values.get("quality_rating", ""))
        if rating in LOW_RATINGS:
            return rating
        return None if rating == "GREEN" else _KEEP
    event = str(values.get("event", ""))
    if event in LOW_QUALITY_EVENTS:
        return event
    return None if event in RECOVERED_QUALITY_EVENTS else _KEEP


def _account_condition(account: BusinessAccount | None) -> tuple[str | None, str]:
    if account is None:
        return None, ""
    if account.ban_state in BAN_STATES:
        return account.ban_state, " ".join(p for p in (account.violation_type, account.ban_date) if p)
    if account.status_event in OFFBOARDING_EVENTS:
        return "OFFBOARDED", account.status_event
    if account.review_decision == "REJECTED":
        return "REVIEW_REJECTED", ""
    if account.restrictions:
        kinds = ", ".join(str(r.get("type", "")) for r in account.restrictions if isinstance(r, dict))
        return "ACCOUNT_RESTRICTION", " ".join(p for p in (kinds, account.violation_type) if p)
    return None, ""


def settle_number_alerts(
    *,
    number_ids: list[int],
    kind: str,
    condition: str | None,
    change: AccountChange | None = None,
    template: MessageTemplate | None = None,
    detail: str = "",
) -> None:
    """Make each number's open alert of this kind (and template) say ``condition``, or none if ``None``; the
    ``change`` it came from, if Meta's (the messaging limit's warning comes from our own count)."""
    now = timezone.now()
    current = {
        alert.number_id: alert
        for alert in NumberAlert.objects.select_for_update().filter(
            number_id__in=number_ids, kind=kind, template=template, resolved_at__isnull=True
        )
    }
    touched: list[int] = []
    raised: list[NumberAlert] = []
    for number_id in number_ids:
        alert = current.get(number_id)
        if alert is not None and alert.condition == condition:
            continue
        if alert is not None:
            NumberAlert.objects.filter(pk=alert.pk).update(resolved_at=now)
            touched.append(number_id)
        if condition is None:
            continue
        try:
            with transaction.atomic():
                made = NumberAlert.objects.create(
                    number_id=number_id,
                    kind=kind,
                    template=template,
                    condition=condition,
                    detail=detail,
                    change=change,
                    raised_at=now,
                )
        except IntegrityError:
            continue  # another worker raised it meanwhile (one open per number, kind and template)
        raised.append(made)
        if number_id not in touched:
            touched.append(number_id)
    _notify_supervisors(raised)
    _publish_open_alerts(touched)


def _notify_supervisors(alerts: list[NumberAlert]) -> None:
    if not alerts:
        return
    supervisors: dict[int, list] = {}
    memberships = NumberMembership.objects.filter(
        number_id__in={a.number_id for a in alerts}, role=MemberRole.SUPERVISOR, user__is_active=True
    ).select_related("user")
    for membership in memberships:
        supervisors.setdefault(membership.number_id, []).append(membership.user)
    made = Notification.objects.bulk_create(
        [
            Notification(recipient=user, kind=NotificationKind.NUMBER_ALERT, alert=alert, created_at=alert.raised_at)
            for alert in alerts
            for user in supervisors.get(alert.number_id, [])
        ]
    )
    for notification in made:
        payload = {
            "notification": notification_snapshot(notification),
            "unread_count": unread_notification_count(user=notification.recipient),
        }
        publish_events(
            number_id=notification.alert.number_id,
            events=[(events.NOTIFICATION_CREATED, payload)],
            user_id=notification.recipient_id,
        )


def _publish_open_alerts(number_ids: list[int]) -> None:
    if not number_ids:
        return
    open_by_number: dict[int, list] = {number_id: [] for number_id in number_ids}
    for alert in open_alerts(numbers=number_ids):
        open_by_number[alert.number_id].append(alert_snapshot(alert))
    for number_id, alerts in open_by_number.items():
        publish_events(
            number_id=number_id,
            events=[(events.NUMBER_ALERTS_CHANGED, {"number_id": number_id, "alerts": alerts})],
        )

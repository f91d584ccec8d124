"""The portfolio's messaging limit as a safeguard (docs/meta.md §10.6): Meta lets a business portfolio reach at
most so many distinct customers a rolling 24 hours with business-initiated messages (templates sent while the
customer service window is closed), across all its numbers. A send that would pass it is refused before it
reaches Meta (or only let through, as the account or MESSAGING_LIMIT_ENFORCEMENT says); at 80 % the numbers'
supervisors are warned once per crossing (a ``limit`` number alert: one open per number, the database says).

Race-safe: the account's row is locked for the rest of the send's transaction, so of two sends for the last
slot the second counts after the first committed. Replies inside the window never come here."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import (
    BusinessAccount,
    BusinessNumber,
    Conversation,
    MemberRole,
    Message,
    MessageStatus,
    Notification,
    NotificationKind,
    NumberAlert,
    NumberAlertKind,
    NumberMembership,
)
from conversations.selectors import PORTFOLIO_USAGE_WINDOW, limit_of, portfolio_usage
from conversations.services.errors import SendRefused

WARN_SHARE = 0.8


def enforcement_of(account: BusinessAccount) -> str:
    return account.limit_enforcement or settings.MESSAGING_LIMIT_ENFORCEMENT


def reserve_business_initiated_send(*, conversation: Conversation) -> None:
    """Called inside the send's transaction before a business-initiated message is queued: refuses it with
    ``messaging_limit_reached`` when the portfolio already reached its limit and this customer is not among
    those reached (a customer reached again takes no new slot), and warns the supervisors at 80 %."""
    waba_id = conversation.number.waba_id
    if not waba_id:
        return
    account = BusinessAccount.objects.select_for_update().filter(waba_id=waba_id).first()
    limit = limit_of(account.messaging_limit) if account else None
    if limit is None:
        return
    now = timezone.now()
    used = portfolio_usage(waba_ids=[waba_id], now=now).get(waba_id, 0)
    reached = (
        Message.objects.filter(
            business_initiated=True,
            timestamp__gte=now - PORTFOLIO_USAGE_WINDOW,
            conversation__contact_id=conversation.contact_id,
            conversation__number__waba_id=waba_id,
        )
        .exclude(status=MessageStatus.FAILED)
        .exists()
    )
    if not reached:
        if used >= limit and enforcement_of(account) == "refuse":
            raise SendRefused(
                "messaging_limit_reached",
                f"This business reached its messaging limit ({limit} customers in 24 hours): Meta would not deliver "
                "this template. Try again once the oldest of today's sends is a day old.",
            )
        used += 1
    review_limit_warning(waba_id=waba_id, used=used, limit=limit)


def review_limit_warning(*, waba_id: str, used: int, limit: int) -> None:
    """Raise the ``limit`` alert on each number of the account once usage reaches 80 % (once per crossing:
    the open alert stays until usage falls below), or end it."""
    numbers = BusinessNumber.objects.filter(waba_id=waba_id)
    open_alerts = NumberAlert.objects.filter(number__in=numbers, kind=NumberAlertKind.LIMIT, resolved_at__isnull=True)
    if used < WARN_SHARE * limit:
        open_alerts.update(resolved_at=timezone.now())
        return
    warned = set(open_alerts.values_list("number_id", flat=True))
    raised = []
    for number_id in numbers.exclude(pk__in=warned).values_list("pk", flat=True):
        try:
            with transaction.atomic():
                raised.append(
                    NumberAlert.objects.create(
                        number_id=number_id, kind=NumberAlertKind.LIMIT, condition=f"{used}/{limit}"
                    )
                )
        except IntegrityError:
            continue  # raised meanwhile: one open per number and kind
    notified: set[int] = set()
    notifications = []
    for alert in raised:
        for membership in NumberMembership.objects.filter(
            number_id=alert.number_id, role=MemberRole.SUPERVISOR, user__is_active=True
        ):
            if membership.user_id not in notified:  # one warning per supervisor, whatever their numbers
                notified.add(membership.user_id)
                notifications.append(
                    Notification(
                        recipient_id=membership.user_id,
                        kind=NotificationKind.NUMBER_ALERT,
                        alert=alert,
                        created_at=alert.raised_at,
                    )
                )
    Notification.objects.bulk_create(notifications)

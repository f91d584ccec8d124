"""The portfolio's messaging limit as a safeguard (docs/meta.md §10.6): Meta lets a business portfolio reach at
most so many distinct customers a rolling 24 hours with business-initiated messages (templates sent while the
customer service window is closed), across all its numbers. A send that would pass it is refused before it
reaches Meta (or only let through, as the account or MESSAGING_LIMIT_ENFORCEMENT says); at 80 % the numbers'
supervisors are warned once per crossing (a ``limit`` number alert: one open per number, the database says).

Race-safe: the account's row is locked for the rest of the send's transaction, so of two sends for the last
slot the second counts after the first committed. Replies inside the window never come here."""

from django.conf import settings
from django.utils import timezone

from conversations.account_events import limit_of
from conversations.models import (
    BusinessAccount,
    BusinessNumber,
    Conversation,
    Message,
    MessageStatus,
    NumberAlertKind,
)
from conversations.selectors import PORTFOLIO_USAGE_WINDOW, messaging_limit_tier, portfolio_usage
from conversations.services.errors import SendRefused
from conversations.services.number_alerts import settle_number_alerts

WARN_SHARE = 0.8
NEAR_LIMIT = "NEAR_LIMIT"  # the limit alert's one condition: raised once per crossing, whatever the count


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
    limit = limit_of(messaging_limit_tier(account=account, number=conversation.number))
    if limit is None:
        return
    if account is None:  # a limit only the number knows: the account's row is still what sends lock
        BusinessAccount.objects.get_or_create(waba_id=waba_id)
        account = BusinessAccount.objects.select_for_update().get(waba_id=waba_id)
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
    """Raise the ``limit`` alert on each number of the account once usage reaches 80 % (once per crossing: the
    open alert stays until usage falls below), or end it, as every number alert is raised and ended."""
    near = used >= WARN_SHARE * limit
    settle_number_alerts(
        number_ids=list(BusinessNumber.objects.filter(waba_id=waba_id).order_by("pk").values_list("pk", flat=True)),
        kind=NumberAlertKind.LIMIT,
        condition=NEAR_LIMIT if near else None,
        detail=f"{used} of {limit} customers in the last 24 hours" if near else "",
    )

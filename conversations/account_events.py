"""What Meta says about a WhatsApp Business Account, its numbers and its templates, as typed values: the
account-level webhook fields (docs/meta.md §10) and a poll of a number's fields on the Graph API.
``webhooks/payloads.py`` builds the webhook ones from Meta's JSON; the domain reads these, never the JSON.

Every enum-like value is kept as received (Meta adds values and keeps sending retired ones): an empty string
means Meta did not send it, or sent it with a type it cannot have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The webhook fields applied to numbers, accounts, templates and contacts' marketing preferences.
PHONE_NUMBER_QUALITY_UPDATE = "phone_number_quality_update"
PHONE_NUMBER_NAME_UPDATE = "phone_number_name_update"
ACCOUNT_UPDATE = "account_update"
ACCOUNT_ALERTS = "account_alerts"
ACCOUNT_REVIEW_UPDATE = "account_review_update"
BUSINESS_CAPABILITY_UPDATE = "business_capability_update"
MESSAGE_TEMPLATE_STATUS_UPDATE = "message_template_status_update"
MESSAGE_TEMPLATE_QUALITY_UPDATE = "message_template_quality_update"
TEMPLATE_CATEGORY_UPDATE = "template_category_update"
USER_PREFERENCES = "user_preferences"
SECURITY = "security"
# Not a webhook field: what a poll of the Graph API found changed (recorded with no delivery).
GRAPH_API_POLL = "graph_api_poll"

ACCOUNT_FIELDS = frozenset(
    {
        PHONE_NUMBER_QUALITY_UPDATE,
        PHONE_NUMBER_NAME_UPDATE,
        ACCOUNT_UPDATE,
        ACCOUNT_ALERTS,
        ACCOUNT_REVIEW_UPDATE,
        BUSINESS_CAPABILITY_UPDATE,
        MESSAGE_TEMPLATE_STATUS_UPDATE,
        MESSAGE_TEMPLATE_QUALITY_UPDATE,
        TEMPLATE_CATEGORY_UPDATE,
        USER_PREFERENCES,
        SECURITY,
    }
)
# Fields that name one number of the account (by display number, or metadata for user_preferences).
NUMBER_FIELDS = frozenset({PHONE_NUMBER_QUALITY_UPDATE, PHONE_NUMBER_NAME_UPDATE, USER_PREFERENCES, SECURITY})


@dataclass(frozen=True)
class QualityUpdate:
    """``phone_number_quality_update``: throughput and messaging-limit moves (quality flags before 2025-10)."""

    event: str  # ONBOARDING, THROUGHPUT_UPGRADE, legacy FLAGGED/UNFLAGGED/UPGRADE/DOWNGRADE, or newer
    current_limit: str  # TIER_2K, ... as received
    old_limit: str
    portfolio_limit: str  # max_daily_conversations_per_business, normalised (see portfolio_limit)


@dataclass(frozen=True)
class NameUpdate:
    """``phone_number_name_update``: the review of a display name."""

    decision: str  # APPROVED, DEFERRED, PENDING, REJECTED, ...
    requested_name: str
    rejection_reason: str


@dataclass(frozen=True)
class Restriction:
    type: str
    expires_at: datetime | None  # Meta sends Unix seconds or an ISO text; None when neither reads


@dataclass(frozen=True)
class AccountUpdate:
    """``account_update``: the account's status (restriction, violation, ban, offboarding, partners, ...)."""

    event: str
    restrictions: tuple[Restriction, ...]
    violation_type: str
    ban_state: str
    ban_date: str  # English text as Meta writes it ("April 17, 2025")


@dataclass(frozen=True)
class AccountAlert:
    """``account_alerts``: a notice about the portfolio or a number (limit increase deferred, OBA, ...)."""

    entity_type: str
    entity_id: str
    severity: str
    status: str
    type: str
    description: str  # free text: shown, never branched on


@dataclass(frozen=True)
class ReviewUpdate:
    """``account_review_update``: Meta's review of the account against its policies; only an ``APPROVED``
    account can use the APIs."""

    decision: str  # APPROVED, REJECTED, PENDING, DEFERRED, ... as received


@dataclass(frozen=True)
class CapabilityUpdate:
    """``business_capability_update``: the portfolio's messaging limit and how many numbers it may have."""

    portfolio_limit: str
    max_phone_numbers: int | None


@dataclass(frozen=True)
class TemplateRef:
    meta_template_id: str  # an integer in webhooks, a string in Graph responses: kept as text
    name: str
    language: str  # as sent (Meta mixes en_US and en-US)


@dataclass(frozen=True)
class TemplateStatusUpdate:
    template: TemplateRef
    event: str  # APPROVED, REJECTED, PAUSED, DISABLED, ... as received
    reason: str
    category: str
    detail: str  # rejection_info or other_info, as one human text


@dataclass(frozen=True)
class TemplateQualityUpdate:
    template: TemplateRef
    previous_score: str
    new_score: str  # GREEN, YELLOW, RED, UNKNOWN, ...


@dataclass(frozen=True)
class TemplateCategoryUpdate:
    """Completed (``previous_category`` set) or impending (``correct_category`` and the time it will switch)."""

    template: TemplateRef
    new_category: str
    previous_category: str
    correct_category: str
    switches_at: datetime | None


@dataclass(frozen=True)
class MarketingPreference:
    """One item of ``user_preferences``: a customer stopped or resumed marketing messages."""

    wa_id: str | None
    user_id: str | None
    profile_name: str
    category: str  # marketing_messages
    value: str  # stop, resume, or newer values (kept, applied as neither)
    timestamp: datetime | None


@dataclass(frozen=True)
class SecurityUpdate:
    """``security``: someone in WhatsApp Manager changed the number's two-step verification PIN, asked for it to be
    reset, or reset it. Whoever holds the PIN can register the number elsewhere: the team must know."""

    event: str  # PIN_CHANGED, PIN_RESET_REQUEST, PIN_REQUEST_SUCCESS, ... as received
    requester: str  # the Business Suite user who asked for a reset ("" when Meta does not say)


AccountUpdateValue = (
    QualityUpdate
    | NameUpdate
    | AccountUpdate
    | AccountAlert
    | ReviewUpdate
    | CapabilityUpdate
    | TemplateStatusUpdate
    | TemplateQualityUpdate
    | TemplateCategoryUpdate
    | MarketingPreference
    | SecurityUpdate
)


@dataclass(frozen=True)
class AccountChangeItem:
    """One account-level change of a delivery, ready to apply."""

    path: str  # where in the delivery, for errors ("entry[0].changes[1]")
    field: str
    waba_id: str  # entry[].id
    # The number it names: display digits (number-scoped fields), or metadata's id (user_preferences).
    display_phone_number: str
    phone_number_id: str
    occurred_at: datetime | None  # entry.time (or the item's own timestamp)
    update: AccountUpdateValue
    raw: dict[str, Any]  # the change's value as received, for the history
    dedupe_key: str  # the same delivery (a redelivery, a replay) has the same key
    # Keys whose values had a type Meta never sends: ignored, the rest applied.
    ignored: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class NumberSnapshot:
    """``GET /{phone-number-id}?fields=...``: what the poll read; "" for fields Meta did not answer."""

    quality_rating: str = ""
    throughput_level: str = ""
    name_status: str = ""
    verified_name: str = ""
    status: str = ""
    messaging_limit_tier: str = ""
    portfolio_limit: str = ""


# The portfolio limit comes as TIER_* text or as a number of unique users (-1 for unlimited) depending on the
# field and API version (docs/meta.md §10.5): one spelling in the state, the raw value stays in the history.
PORTFOLIO_LIMIT_TIERS = {
    "50": "TIER_50",
    "250": "TIER_250",
    "1000": "TIER_1K",
    "2000": "TIER_2K",
    "10000": "TIER_10K",
    "100000": "TIER_100K",
    "-1": "TIER_UNLIMITED",
    "UNLIMITED": "TIER_UNLIMITED",
}


def portfolio_limit(text: str) -> str:
    return PORTFOLIO_LIMIT_TIERS.get(text, text)


# Each tier's limit in distinct customers a day, read off the table above (unlimited has none).
CUSTOMERS_OF_TIER = {tier: int(count) for count, tier in PORTFOLIO_LIMIT_TIERS.items() if count.isdigit()}


def limit_of(tier: str) -> int | None:
    """A messaging limit in distinct customers a day, from Meta's tier (``TIER_1K``, a number, ...); None when
    unlimited or not known (then nothing is counted against it)."""
    tier = portfolio_limit(tier.strip().upper())
    if tier in CUSTOMERS_OF_TIER:
        return CUSTOMERS_OF_TIER[tier]
    return int(tier) if tier.isdigit() and int(tier) > 0 else None

"""What a number alert says to people: a headline and what to do, in plain words, for each thing Meta can say
(``NumberAlert.condition``), and the alert's snapshot for the inbox banner, the Numbers page and the API. Meta's
own words (``detail``, a template's name) travel as data: the pages set them as text, never as markup."""

from typing import TypedDict

from conversations.models import NumberAlert, NumberAlertKind

_QUALITY_LOW = (
    "Customers have blocked or reported this number's messages. Send fewer marketing messages, send them only to "
    "customers who asked for them, and make stopping them easy; if quality stays low Meta lowers the number's "
    "messaging limit."
)

# (headline, what to do) per kind and condition; a condition Meta adds later reads as its kind's default.
_WORDS: dict[str, dict[str, tuple[str, str]]] = {
    NumberAlertKind.QUALITY: {
        "RED": ("Quality is low", _QUALITY_LOW),
        "FLAGGED": ("Quality is low: Meta flagged this number", _QUALITY_LOW),
        "YELLOW": (
            "Quality is dropping",
            "Some customers have blocked or reported this number's messages. Check which templates they get and "
            "send marketing only to customers who asked for it.",
        ),
        "DOWNGRADE": (
            "Meta lowered the messaging limit",
            "Because of low quality, fewer customers can be messaged first each day. Send fewer marketing "
            "messages until quality recovers; replies to customers who write are not limited.",
        ),
    },
    NumberAlertKind.ACCOUNT: {
        "ACCOUNT_RESTRICTION": (
            "The account is restricted",
            "Meta stopped some messaging on this account's numbers (usually starting conversations with "
            "templates) for a while. Replies to customers who write still go out. Check the account's quality "
            "page in Meta Business Suite, and appeal there if you think Meta is wrong.",
        ),
        "DISABLE": (
            "The account is banned",
            "Meta disabled this WhatsApp Business Account: its numbers cannot send messages. Appeal in Meta "
            "Business Suite (Business Support Home).",
        ),
        "SCHEDULE_FOR_DISABLE": (
            "The account is about to be banned",
            "Meta will disable this WhatsApp Business Account for a policy violation. Stop what Meta objects to "
            "and appeal in Meta Business Suite before the date Meta gave.",
        ),
        "REVIEW_REJECTED": (
            "Meta rejected the account's review",
            "The WhatsApp Business Account failed Meta's policy review: its numbers cannot use the API until it "
            "passes. See why in Meta Business Suite (Business Support Home), fix it and request a new review.",
        ),
        "OFFBOARDED": (
            "The account was removed",
            "Meta offboarded this WhatsApp Business Account (or its partner was removed): its numbers can no "
            "longer send messages. Ask your Meta admin to reconnect it.",
        ),
    },
    NumberAlertKind.TEMPLATE: {
        "PAUSED": (
            "A template is paused",
            "Customers reported or blocked messages sent with it, so Meta stopped it for a few hours. Edit it "
            "(clearer wording, fewer sends) or use another template meanwhile.",
        ),
        "DISABLED": (
            "A template is disabled",
            "Meta disabled it after repeated low quality: it cannot be sent any more. Create a new template "
            "with different wording.",
        ),
        "REJECTED": (
            "A template was rejected",
            "Meta did not approve it, so it cannot be sent. Fix what Meta named and submit it again.",
        ),
    },
    NumberAlertKind.LIMIT: {
        "NEAR_LIMIT": (
            "The messaging limit is nearly reached",
            "Customers reached first by this account's numbers in the last 24 hours are over 80 % of what Meta "
            "allows. Past the limit, templates to new customers are refused; replies to customers who write are "
            "not limited. Space out marketing sends, or let yesterday's sends age out.",
        ),
    },
    NumberAlertKind.SECURITY: {
        "PIN_CHANGED": (
            "The number's two-step verification PIN was changed",
            "Someone changed it in WhatsApp Manager. If nobody on your team did, set a new PIN there now and check "
            "who has access to the business portfolio: with the PIN the number can be registered elsewhere.",
        ),
        "PIN_RESET_REQUEST": (
            "A reset of the number's two-step verification PIN was requested",
            "Someone in WhatsApp Manager asked to reset it. If nobody on your team did, check who has access to the "
            "business portfolio and remove anyone who should not have it.",
        ),
        "PIN_REQUEST_SUCCESS": (
            "The number's two-step verification PIN was reset",
            "The PIN was reset from WhatsApp Manager. If nobody on your team did it, set a new PIN now and check who "
            "has access to the business portfolio.",
        ),
    },
}
_DEFAULTS = {
    NumberAlertKind.QUALITY: _WORDS[NumberAlertKind.QUALITY]["RED"],
    NumberAlertKind.ACCOUNT: _WORDS[NumberAlertKind.ACCOUNT]["ACCOUNT_RESTRICTION"],
    NumberAlertKind.TEMPLATE: _WORDS[NumberAlertKind.TEMPLATE]["PAUSED"],
    NumberAlertKind.LIMIT: _WORDS[NumberAlertKind.LIMIT]["NEAR_LIMIT"],
    NumberAlertKind.SECURITY: (
        "The number's two-step verification changed",
        "Meta reported a change to the number's two-step verification in WhatsApp Manager. If nobody on your team "
        "made it, check who has access to the business portfolio.",
    ),
}


def alert_words(*, kind: str, condition: str) -> tuple[str, str]:
    return _WORDS.get(kind, {}).get(condition) or _DEFAULTS[kind]


class AlertPayload(TypedDict):
    id: int
    number_id: int
    kind: str
    condition: str
    title: str
    advice: str
    detail: str
    template: str  # "name (language)" of a template alert, else ""
    raised_at: str


def alert_snapshot(alert: NumberAlert) -> AlertPayload:
    """Needs ``template`` loaded for a template alert (``selectors.open_alerts``)."""
    title, advice = alert_words(kind=alert.kind, condition=alert.condition)
    return {
        "id": alert.pk,
        "number_id": alert.number_id,
        "kind": alert.kind,
        "condition": alert.condition,
        "title": title,
        "advice": advice,
        "detail": alert.detail,
        "template": str(alert.template) if alert.template_id else "",
        "raised_at": alert.raised_at.isoformat(),
    }

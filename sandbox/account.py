"""Meta's account-level webhooks and the Graph API reads of the same state, for the sandbox.

The control API sets what Meta would know about a number, the account and its templates, and each call sends
the webhook Meta sends for that change, in Meta's documented shape (docs/meta.md §10): ``entry[].id`` is the
WABA id, ``entry[].time`` the Unix time, and only ``user_preferences`` carries ``metadata``. ``GET
/{phone-number-id}?fields=...`` and ``GET /{waba-id}?fields=...`` then answer with that state.

Control endpoints (POST, JSON; each answers ``{"webhook_id", "field"}``; ``time`` sets ``entry.time``, to
send an older change late):

- ``number_quality`` ``{phone_number_id, event?, current_limit?, old_limit?, portfolio_limit?, quality_rating?,
  throughput_level?, status?}``: the number's state; a ``phone_number_quality_update`` if ``event`` is given.
- ``number_name`` ``{phone_number_id, decision, requested_verified_name, rejection_reason?}``.
- ``account_update`` ``{event, restriction_info? | violation_info? | ban_info? | ...}``: the value as given.
- ``account_alert`` ``{entity_type, entity_id, alert_info: {...}}``.
- ``account_review`` ``{decision}``: Meta's review of the account (APPROVED, REJECTED, PENDING, DEFERRED).
- ``business_capability`` ``{max_daily_conversations_per_business, max_phone_numbers_per_waba?}``.
- ``template_status`` ``{name, language, event, reason?, rejection_info?, other_info?}``: the template's status too.
- ``template_quality`` ``{name, language, new_quality_score}``.
- ``template_category`` ``{name, language, new_category, previous_category? | correct_category + category_update_timestamp}``.
- ``user_preferences`` ``{phone_number_id, wa_id, user_id?, name?, value: "stop" | "resume"}``.
- ``security`` ``{phone_number_id, event: "PIN_CHANGED" | "PIN_RESET_REQUEST" | "PIN_REQUEST_SUCCESS", requester?}``:
  someone changed the number's two-step verification in WhatsApp Manager.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sandbox.errors import GraphError

# Meta's name_status for a display name review's decision (the Graph API and the webhook spell them apart).
NAME_STATUS_OF_DECISION = {"APPROVED": "APPROVED", "REJECTED": "DECLINED", "PENDING": "PENDING_REVIEW"}
DEFAULT_PORTFOLIO_LIMIT = "TIER_2K"


class AccountControlError(ValueError):
    """A control call the sandbox cannot act on (the server answers 400 with the text)."""


@dataclass
class NumberFields:
    """What ``GET /{phone-number-id}`` answers beyond the display number."""

    verified_name: str = "Sandbox Business"
    quality_rating: str = "GREEN"
    throughput_level: str = "STANDARD"
    name_status: str = "APPROVED"
    status: str = "CONNECTED"
    messaging_limit_tier: str = "TIER_1K"  # the deprecated per-number field (v23.0 and older)


@dataclass
class AccountFields:
    numbers: dict[str, NumberFields] = field(default_factory=dict)
    portfolio_limit: str = DEFAULT_PORTFOLIO_LIMIT
    status_event: str = ""

    def number(self, phone_number_id: str) -> NumberFields:
        return self.numbers.setdefault(phone_number_id, NumberFields())


def number_object(
    *, phone_number_id: str, display: str, fields: NumberFields, portfolio_limit: str, asked: str
) -> dict:
    """A number as ``GET /{phone-number-id}`` shows it: the fields asked for (Meta's default set when none)."""
    every = {
        "id": phone_number_id,
        "display_phone_number": f"+{display}",
        "verified_name": fields.verified_name,
        "quality_rating": fields.quality_rating,
        "code_verification_status": "VERIFIED",
        "platform_type": "CLOUD_API",
        "throughput": {"level": fields.throughput_level},
        "messaging_limit_tier": fields.messaging_limit_tier,
        "whatsapp_business_manager_messaging_limit": portfolio_limit,
        "name_status": fields.name_status,
        "status": fields.status,
    }
    if not asked:
        return {key: value for key, value in every.items() if key != "whatsapp_business_manager_messaging_limit"}
    wanted = [name.strip() for name in asked.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in every]
    if unknown:
        raise GraphError(
            100, f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type (WhatsAppBusinessPhoneNumber)"
        )
    return {"id": phone_number_id, **{name: every[name] for name in wanted}}


def account_object(*, waba_id: str, account: AccountFields, asked: str) -> dict:
    every = {
        "id": waba_id,
        "name": "Sandbox Business Account",
        "whatsapp_business_manager_messaging_limit": account.portfolio_limit,
    }
    wanted = [name.strip() for name in asked.split(",") if name.strip()] or ["id", "name"]
    unknown = [name for name in wanted if name not in every]
    if unknown:
        raise GraphError(
            100, f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type (WhatsAppBusinessAccount)"
        )
    return {"id": waba_id, **{name: every[name] for name in wanted}}


def account_envelope(*, waba_id: str, field_name: str, value: dict, at: int | None = None) -> dict:
    """Meta's envelope for an account-level field: the account's id and the time it fired."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "time": int(at or time.time()), "changes": [{"value": value, "field": field_name}]}],
    }


def _text(payload: dict, key: str, *, required: bool = False) -> str:
    value = payload.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise AccountControlError(f"{key} must be a non-empty string")
    return value


def _only(payload: dict, *keys: str) -> dict:
    return {key: payload[key] for key in keys if key in payload}


def _template(templates: list[dict], payload: dict) -> dict:
    name, language = _text(payload, "name", required=True), _text(payload, "language", required=True)
    for template in templates:
        if template.get("name") == name and template.get("language") == language:
            return template
    raise AccountControlError(f"no template {name} ({language}); set it with POST /_sandbox/config templates")


def _template_ids(template: dict) -> dict:
    # An integer in webhooks, a string in Graph responses (docs/meta.md §10).
    return {
        "message_template_id": int(template["id"]),
        "message_template_name": template["name"],
        "message_template_language": template["language"],
    }


def _number_quality(payload: dict, account: AccountFields, templates: list[dict], display_of) -> tuple[str, dict]:
    phone_number_id = _text(payload, "phone_number_id", required=True)
    fields = account.number(phone_number_id)
    for key in ("quality_rating", "throughput_level", "status"):
        if key in payload:
            setattr(fields, key, _text(payload, key, required=True))
    if "current_limit" in payload:
        fields.messaging_limit_tier = _text(payload, "current_limit", required=True)
    if payload.get("event") == "THROUGHPUT_UPGRADE":
        fields.throughput_level = "HIGH"
    if "portfolio_limit" in payload:
        account.portfolio_limit = _text(payload, "portfolio_limit", required=True)
    if "event" not in payload:
        return "", {}
    value = {"display_phone_number": display_of(phone_number_id), "event": _text(payload, "event", required=True)}
    value.update(_only(payload, "old_limit", "current_limit"))
    if "portfolio_limit" in payload:
        value["max_daily_conversations_per_business"] = account.portfolio_limit
    return "phone_number_quality_update", value


def _number_name(payload: dict, account: AccountFields, templates: list[dict], display_of) -> tuple[str, dict]:
    phone_number_id = _text(payload, "phone_number_id", required=True)
    decision = _text(payload, "decision", required=True)
    requested = _text(payload, "requested_verified_name", required=True)
    fields = account.number(phone_number_id)
    fields.name_status = NAME_STATUS_OF_DECISION.get(decision, decision)
    if decision == "APPROVED":
        fields.verified_name = requested
    return "phone_number_name_update", {
        "display_phone_number": display_of(phone_number_id),
        "decision": decision,
        "requested_verified_name": requested,
        "rejection_reason": payload.get("rejection_reason"),
    }


def _account_update(payload: dict, account: AccountFields, templates: list[dict], display_of) -> tuple[str, dict]:
    account.status_event = _text(payload, "event", required=True)
    return "account_update", {key: value for key, value in payload.items() if key != "time"}


def _account_alert(payload: dict, account: AccountFields, templates: list[dict], display_of) -> tuple[str, dict]:
    if not isinstance(payload.get("alert_info"), dict):
        raise AccountControlError("alert_info must be an object")
    return "account_alerts", _only(payload, "entity_type", "entity_id", "alert_info")


def _account_review(payload: dict, account: AccountFields, templates: list[dict], display_of) -> tuple[str, dict]:
    return "account_review_update", {"decision": _text(payload, "decision", required=True)}


def _business_capability(payload: dict, account: AccountFields, templates: list[dict], display_of) -> tuple[str, dict]:
    limit = payload.get("max_daily_conversations_per_business")
    if limit is None:
        raise AccountControlError("max_daily_conversations_per_business is required")
    account.portfolio_limit = str(limit) if isinstance(limit, str) else f"{limit}"
    return "business_capability_update", _only(
        payload,
        "max_daily_conversations_per_business",
        "max_phone_numbers_per_waba",
        "max_phone_numbers_per_business",
    )


def _template_status(payload: dict, account: AccountFields, templates: list[dict], display_of) -> tuple[str, dict]:
    template = _template(templates, payload)
    event = _text(payload, "event", required=True)
    template["status"] = event
    value = {
        "event": event,
        **_template_ids(template),
        "reason": payload.get("reason", "NONE"),
        "message_template_category": str(template.get("category") or "UTILITY").upper(),
    }
    value.update(_only(payload, "rejection_info", "other_info", "disable_info"))
    return "message_template_status_update", value


def _template_quality(payload: dict, account: AccountFields, templates: list[dict], display_of) -> tuple[str, dict]:
    template = _template(templates, payload)
    previous = str(template.get("quality_score") or "UNKNOWN")
    template["quality_score"] = _text(payload, "new_quality_score", required=True)
    return "message_template_quality_update", {
        "previous_quality_score": previous,
        "new_quality_score": template["quality_score"],
        **_template_ids(template),
    }


def _template_category(payload: dict, account: AccountFields, templates: list[dict], display_of) -> tuple[str, dict]:
    template = _template(templates, payload)
    value = {**_template_ids(template), "new_category": _text(payload, "new_category", required=True)}
    if "correct_category" in payload:
        value.update(_only(payload, "correct_category", "category_update_timestamp"))
    else:
        value["previous_category"] = str(template.get("category") or "")
        template["category"] = value["new_category"]
    return "template_category_update", value


def _user_preferences(payload: dict, account: AccountFields, templates: list[dict], display_of) -> tuple[str, dict]:
    phone_number_id = _text(payload, "phone_number_id", required=True)
    wa_id = _text(payload, "wa_id", required=True)
    choice = _text(payload, "value", required=True)
    identity = {"wa_id": wa_id, **({"user_id": payload["user_id"]} if payload.get("user_id") else {})}
    detail = (
        "User requested to stop marketing messages"
        if choice == "stop"
        else "User requested to resume marketing messages"
    )
    return "user_preferences", {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display_of(phone_number_id), "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": str(payload.get("name") or "Sandbox Customer")}, **identity}],
        "user_preferences": [
            {
                **identity,
                "detail": detail,
                "category": "marketing_messages",
                "value": choice,
                "timestamp": int(payload.get("time") or time.time()),
            }
        ],
    }


def _security(payload: dict, account: AccountFields, templates: list[dict], display_of) -> tuple[str, dict]:
    phone_number_id = _text(payload, "phone_number_id", required=True)
    value = {"display_phone_number": display_of(phone_number_id), "event": _text(payload, "event", required=True)}
    if "requester" in payload:  # Meta names who asked only for a reset
        value["requester"] = _text(payload, "requester", required=True)
    return "security", value


_BUILDERS = {
    "number_quality": _number_quality,
    "number_name": _number_name,
    "account_update": _account_update,
    "account_alert": _account_alert,
    "account_review": _account_review,
    "business_capability": _business_capability,
    "template_status": _template_status,
    "template_quality": _template_quality,
    "template_category": _template_category,
    "user_preferences": _user_preferences,
    "security": _security,
}
CONTROL_NAMES = frozenset(_BUILDERS)


def build_change(
    name: str, payload: dict, *, account: AccountFields, templates: list[dict], display_of
) -> tuple[str, dict]:
    """Apply one control call to the sandbox's state and return the webhook (field, value) Meta would send
    (("", {}) when the call changes only what the Graph API reads)."""
    return _BUILDERS[name](payload, account, templates, display_of)

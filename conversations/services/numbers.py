"""Business numbers as an operator manages them: registering one after Meta confirms the token may use
it, and checking a registered number's health on Meta's side (token, quality, webhook subscription).

Access tokens are secrets: nothing returned from here carries one, so a caller cannot print it by mistake.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from contacts.phones import digits_of
from conversations.graph_api import GraphClient, GraphError, Outcome
from conversations.models import BusinessNumber

# Meta's "unsupported get request" / "object does not exist" (100) and "unknown object" (803, "some of the
# aliases you requested do not exist"): an id this token cannot see, or no such id.
UNKNOWN_OBJECT_CODES = {100, 803}


class NumberVerificationFailed(Exception):
    """Meta did not confirm the number for this token; ``reason`` is stable, the text is for people."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PhoneNumberProfile:
    """What Meta says about a number (``GET /{phone-number-id}``)."""

    display_phone_number: str
    verified_name: str
    quality_rating: str


@dataclass(frozen=True)
class RegisteredNumber:
    number: BusinessNumber
    created: bool
    # None when the check against Meta was skipped.
    profile: PhoneNumberProfile | None
    members: tuple[str, ...]


def verify_phone_number(*, phone_number_id: str, access_token: str) -> PhoneNumberProfile:
    """Ask Meta for the number with this token; raises ``NumberVerificationFailed`` when it will not say."""
    if not access_token:
        raise NumberVerificationFailed("no_token", "no access token: pass --access-token or set META_ACCESS_TOKEN")
    try:
        data = GraphClient(access_token=access_token).phone_number_profile(phone_number_id=phone_number_id)
    except GraphError as error:
        raise _verification_error(error, phone_number_id=phone_number_id) from error
    return PhoneNumberProfile(
        display_phone_number=str(data.get("display_phone_number") or ""),
        verified_name=str(data.get("verified_name") or ""),
        quality_rating=str(data.get("quality_rating") or ""),
    )


def _verification_error(error: GraphError, *, phone_number_id: str) -> NumberVerificationFailed:
    if error.outcome is Outcome.TOKEN_EXPIRED:
        return NumberVerificationFailed(
            "token_invalid", f"Meta says the access token is expired/invalid (190): {error.title}"
        )
    if error.code in UNKNOWN_OBJECT_CODES:
        return NumberVerificationFailed(
            "unknown_number",
            f"Meta does not know phone number id {phone_number_id} for this token ({error.code}): {error.title}",
        )
    if error.outcome is Outcome.RETRY:
        return NumberVerificationFailed("unreachable", f"the Graph API did not answer usably, try again: {error}")
    return NumberVerificationFailed("refused", f"the Graph API refused: {error}")


def register_number(
    *,
    phone_number_id: str,
    display_phone_number: str = "",
    waba_id: str = "",
    name: str = "",
    access_token: str = "",
    member_usernames: list[str] | tuple[str, ...] = (),
    verify: bool = True,
) -> RegisteredNumber:
    """Create or update the ``BusinessNumber`` for ``phone_number_id`` and add members.

    With ``verify`` Meta must first answer ``GET /{phone-number-id}`` with this token (nothing is written
    otherwise); the display number then defaults to Meta's. Empty arguments leave stored values as they
    are, so re-running with fewer options never wipes a token or WABA id. A token Meta accepted (or a
    new one given with ``verify`` off) clears ``needs_reauthorization``: that is the fix the flag asks for.
    The Graph API call happens before the write transaction, so no row stays locked while Meta answers.
    """
    phone_number_id = phone_number_id.strip()
    if not phone_number_id.isdigit():
        raise ValueError(f"the phone number id is digits only (got {phone_number_id!r})")
    display_phone_number = digits_of(display_phone_number)
    if waba_id and not waba_id.isdigit():
        raise ValueError(f"the WhatsApp Business Account id is digits only (got {waba_id!r})")
    users = _members(member_usernames)
    existing = BusinessNumber.objects.filter(phone_number_id=phone_number_id).first()
    if existing is None and not display_phone_number and not verify:
        raise ValueError("a new number needs its display phone number (or let Meta tell it: drop --no-verify)")

    profile = None
    if verify:
        token = access_token or (existing.access_token_or_default if existing else "")
        profile = verify_phone_number(phone_number_id=phone_number_id, access_token=token)
        display_phone_number = display_phone_number or digits_of(profile.display_phone_number)
    changes = {
        "display_phone_number": display_phone_number,
        "waba_id": waba_id,
        "name": name.strip(),
        "access_token": access_token,
    }
    with transaction.atomic():
        number = BusinessNumber.objects.select_for_update().filter(phone_number_id=phone_number_id).first()
        created = number is None
        number = number or BusinessNumber(phone_number_id=phone_number_id)
        for field, value in changes.items():
            if value:
                setattr(number, field, value)
        if profile is not None or access_token:
            number.needs_reauthorization = False
        number.full_clean()
        number.save()
        number.members.add(*users)
        members = tuple(sorted(number.members.values_list("username", flat=True)))
    return RegisteredNumber(number=number, created=created, profile=profile, members=members)


def _members(usernames) -> list:
    usernames = list(dict.fromkeys(u.strip() for u in usernames if u.strip()))
    users = list(get_user_model().objects.filter(username__in=usernames))
    missing = sorted(set(usernames) - {u.username for u in users})
    if missing:
        raise ValueError(f"unknown user(s): {', '.join(missing)}")
    return users


# --- health ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumberHealth:
    number: BusinessNumber
    token_ok: bool
    # Why the token check failed, for people; empty when it passed.
    token_problem: str
    profile: PhoneNumberProfile | None
    # "subscribed (N app(s))", "NOT subscribed (no app receives webhooks)", "unknown (...)".
    subscription: str
    subscription_ok: bool | None
    # True when this check set needs_reauthorization (Meta answered 190).
    flagged_now: bool
    # True when this check cleared it: Meta accepted the token the number sends with (a token rotated where it is
    # kept, e.g. META_ACCESS_TOKEN, or a 190 that Meta no longer gives), so sending resumes.
    cleared_now: bool = False


def check_number_health(*, number: BusinessNumber) -> NumberHealth:
    """Ask Meta about the number and its WABA's webhook subscription.

    A 190 from Meta flags the number ``needs_reauthorization`` (sending stops until a new token is set),
    exactly as a failed send would; a token Meta accepts clears the flag. Never raises for Meta's answers:
    every problem is in the result.
    """
    token_problem = ""
    profile = None
    flagged_now = cleared_now = False
    try:
        profile = verify_phone_number(
            phone_number_id=number.phone_number_id, access_token=number.access_token_or_default
        )
    except NumberVerificationFailed as failure:
        token_problem = failure.detail
        if failure.reason == "token_invalid":
            flagged_now = bool(
                BusinessNumber.objects.filter(pk=number.pk, needs_reauthorization=False).update(
                    needs_reauthorization=True
                )
            )
            number.needs_reauthorization = True
    if profile is not None and number.needs_reauthorization:
        cleared_now = bool(
            BusinessNumber.objects.filter(pk=number.pk, needs_reauthorization=True).update(needs_reauthorization=False)
        )
        number.needs_reauthorization = False
    subscription, subscription_ok = _subscription(number=number, token_ok=profile is not None)
    return NumberHealth(
        number=number,
        token_ok=profile is not None,
        token_problem=token_problem,
        profile=profile,
        subscription=subscription,
        subscription_ok=subscription_ok,
        flagged_now=flagged_now,
        cleared_now=cleared_now,
    )


def _subscription(*, number: BusinessNumber, token_ok: bool) -> tuple[str, bool | None]:
    if not number.waba_id:
        return "unknown (no WhatsApp Business Account id registered)", None
    if not token_ok:
        return "unknown (the token check failed)", None
    try:
        apps = GraphClient.for_number(number).subscribed_apps(waba_id=number.waba_id)
    except GraphError as error:
        # Stand-ins such as the sandbox do not implement the endpoint: not knowing is not a failure.
        if error.code in UNKNOWN_OBJECT_CODES and error.http_status in (400, 404):
            return "unknown (endpoint not available)", None
        return f"unknown ({error})", None
    if not apps:
        return "NOT subscribed (no app receives this account's webhooks)", False
    names = ", ".join(
        str((app.get("whatsapp_business_api_data") or {}).get("name") or app.get("name") or "?") for app in apps
    )
    return f"subscribed ({len(apps)} app(s): {names})", True

"""Meta's Graph API errors as the sandbox answers them (docs/meta.md §5, "Error response").

Every error body has the one shape Meta documents (OAS ``GraphAPIError``)::

    {"error": {"message": "(#131026) Message undeliverable", "type": "OAuthException", "code": 131026,
               "error_data": {"messaging_product": "whatsapp", "details": "..."}, "fbtrace_id": "A..."}}

Clients must act on ``code`` (and ``details``), never on the title or the HTTP status, as Meta says; the
sandbox still answers the statuses Meta uses: 401 for token problems, 400 for parameter and rate-limit
errors (Meta answers 130429 with 400 in practice), 500/503 for its own transient failures.
"""

from __future__ import annotations

import secrets
from typing import Any

# Titles as Meta's error-code table words them (M-ERR).
TITLES: dict[int, str] = {
    1: "API Unknown",
    2: "Service temporarily unavailable",
    4: "Application request limit reached",
    17: "User request limit reached",
    100: "Invalid parameter",
    190: "Invalid OAuth access token",
    341: "Application limit reached",
    613: "Calls to this api have exceeded the rate limit",
    803: "Some of the aliases you requested do not exist",
    80007: "Rate limit issues",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131008: "Required parameter is missing",
    131009: "Parameter value is not valid",
    131016: "Service unavailable",
    131021: "Recipient cannot be sender",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131049: "This message was not delivered to maintain healthy ecosystem engagement.",
    131050: "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on "
    "WhatsApp from your business",
    131051: "Unsupported message type",
    131053: "Media upload error",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    131057: "Account in maintenance mode",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132012: "Parameter format does not match format in the created template",
    132015: "Template is paused",
    132016: "Template is disabled",
}

DETAILS: dict[int, str] = {
    1: "An unknown error occurred. Retry the request.",
    2: "Service temporarily unavailable due to downtime or due to being overloaded.",
    130429: "Cloud API message throughput has been reached.",
    131000: "Message failed to send due to an unknown error.",
    131016: "A service is temporarily unavailable.",
    131026: "Message failed to send because the recipient is not a WhatsApp user, has not accepted the current "
    "Terms of Service, or is using an old WhatsApp version.",
    131047: "Message failed to send because more than 24 hours have passed since the customer last replied to "
    "this number.",
    131056: "Message failed to send because there were too many messages sent from this phone number to the same "
    "phone number in a short period of time.",
}

TRANSIENT_CODES = frozenset({1, 2, 131000, 131016, 131057})


def http_status_for(code: int) -> int:
    if code == 190:
        return 401
    if code == 2:
        return 503
    if code in TRANSIENT_CODES:
        return 500
    return 400


def new_fbtrace_id() -> str:
    return "A" + secrets.token_urlsafe(16).replace("-", "_")


class GraphError(Exception):
    """One error response; raised anywhere in request handling and rendered by the server."""

    def __init__(
        self,
        code: int,
        details: str = "",
        *,
        title: str | None = None,
        http_status: int | None = None,
        subcode: int | None = None,
        user_message: str | None = None,
    ):
        self.user_message = user_message
        self.code = code
        self.title = title or TITLES.get(code, "Error")
        self.details = details or DETAILS.get(code) or self.title
        self.http_status = http_status or http_status_for(code)
        self.subcode = subcode
        super().__init__(f"({code}) {self.title}: {self.details}")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": f"(#{self.code}) {self.title}",
            "type": "OAuthException",
            "code": self.code,
            "error_data": {"messaging_product": "whatsapp", "details": self.details},
            "fbtrace_id": new_fbtrace_id(),
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.user_message:  # template management: Meta's words for the person, with a title
            error["error_user_title"] = self.title
            error["error_user_msg"] = self.user_message
        if self.code in TRANSIENT_CODES:
            error["is_transient"] = True
        return {"error": error}

    def status_item(self) -> dict[str, Any]:
        """The same error as it appears in a ``failed`` status webhook's ``errors[]`` (docs/meta.md §3.4)."""
        return {
            "code": self.code,
            "title": self.title,
            "message": self.title,
            "error_data": {"details": self.details},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        }


def missing(param: str) -> GraphError:
    return GraphError(131008, f"The parameter {param} is required.")


def invalid(param: str, why: str) -> GraphError:
    return GraphError(131009, f"Param {param} {why}")


def invalid_token() -> GraphError:
    return GraphError(190, "Invalid OAuth access token - Cannot parse access token", subcode=None)


def expired_token() -> GraphError:
    return GraphError(
        190,
        "Error validating access token: Session has expired.",
        title="Error validating access token: Session has expired",
        subcode=463,
    )


def unsupported(method: str, object_id: str) -> GraphError:
    return GraphError(
        100,
        f"Object with ID '{object_id}' does not exist, cannot be loaded due to missing permissions, or does not "
        "support this operation. Please read the Graph API documentation at "
        "https://developers.facebook.com/docs/graph-api",
        title=f"Unsupported {method.lower()} request",
        subcode=33,
    )


def unknown_alias(object_id: str) -> GraphError:
    """What Graph answers for a path segment that is not a numeric id: it takes it for an alias (a username)."""
    title = f"{TITLES[803]}: {object_id}"
    return GraphError(803, title, title=title, http_status=404)

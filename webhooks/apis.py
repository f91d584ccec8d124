"""``GET|POST /api/webhook``: Meta's handshake and webhook deliveries.

POST contract (docs/meta.md §2, §11): size first (413), then the signature over the raw bytes (401
missing, 403 wrong), then UTF-8 JSON (400); the raw event is stored in the request and a drain is
asked for on commit (webhooks.services, webhooks.drain); 200 at once. Database down: 503 so Meta retries. Redis down:
still 200, the event is stored and the periodic sweep has it processed.
"""

import hashlib
import hmac
import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from webhooks.services import store_webhook_event

logger = logging.getLogger(__name__)


_RECEIVED = b'{"status":"received","event_id":%d}'


def is_valid_handshake(*, mode: str, token: str, verify_token: str) -> bool:
    """Meta's subscription handshake names our verify token (compared in constant time)."""
    if mode != "subscribe" or not verify_token:
        return False
    return hmac.compare_digest(token.encode(), verify_token.encode())


def is_valid_signature(*, raw_body: bytes, header: str, app_secret: str) -> bool:
    """``X-Hub-Signature-256`` is the HMAC-SHA256 of the raw bytes exactly as received: Meta signs its own escaped
    serialisation, so a re-serialised body would not verify (docs/meta.md §2). Compared in constant time."""
    if not app_secret or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.strip().lower())


def read_json_object(raw_body: bytes) -> dict | None:
    """The body as a JSON object, or ``None`` when it is not UTF-8 text holding one."""
    try:
        payload = json.loads(raw_body.decode("utf-8"))
    except (ValueError, RecursionError):
        # ValueError: bad UTF-8, bad JSON, or an integer past Python's 4,300 digits; RecursionError: nesting
        # deeper than the parser's stack (a signed body is still only text we refuse).
        return None
    return payload if isinstance(payload, dict) else None


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "detail": detail}}, status=status)


class _AlwaysJson(BaseContentNegotiation):
    """Meta reads nothing of our answer but its status: no negotiation per delivery."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@extend_schema(exclude=True)  # Meta's endpoint, not part of the staff API
class WhatsAppWebhookApi(APIView):
    # Meta authenticates with the HMAC, not with our users; and Meta must never be throttled.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    # The raw bytes are read once, for the signature; DRF's parsers and renderers have nothing to do.
    parser_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _AlwaysJson

    @property
    def default_response_headers(self) -> dict[str, str]:
        # Meta reads nothing but the status of its deliveries; DRF's Allow header, worked out and set on
        # every answer, was 5 % of the webhook's CPU (callgrind). OPTIONS and GET keep it.
        if self.request.method == "POST":
            return {}
        return super().default_response_headers

    def perform_authentication(self, request):
        # No authenticators: DRF would still build an AnonymousUser per delivery that nothing reads. DRF's
        # documented way to leave request.user lazy.
        pass

    def get(self, request):
        if not is_valid_handshake(
            mode=request.GET.get("hub.mode", ""),
            token=request.GET.get("hub.verify_token", ""),
            verify_token=settings.META_VERIFY_TOKEN,
        ):
            return HttpResponse("Forbidden", status=403, content_type="text/plain")
        return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")

    def post(self, request):
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > settings.WEBHOOK_MAX_BODY_BYTES:
            return _error(413, "payload_too_large", "webhook bodies are limited to 4 MB")
        try:
            raw_body = request.body
        except RequestDataTooBig:
            return _error(413, "payload_too_large", "webhook bodies are limited to 4 MB")

        signature = request.META.get("HTTP_X_HUB_SIGNATURE_256", "").strip()
        if not signature:
            return _error(401, "signature_missing", "X-Hub-Signature-256 header is required")
        if not is_valid_signature(raw_body=raw_body, header=signature, app_secret=settings.META_APP_SECRET):
            logger.warning("webhook signature mismatch (is META_APP_SECRET current?)")
            return _error(403, "signature_invalid", "X-Hub-Signature-256 does not match the body")

        payload = read_json_object(raw_body)
        if payload is None:
            return _error(400, "invalid_json", "the body is not a JSON object in UTF-8")

        try:
            event_id = store_webhook_event(raw_body=raw_body, payload=payload, signature=signature)
        except DatabaseError:
            logger.exception("could not store webhook event; answering 503 so Meta retries")
            return _error(503, "storage_unavailable", "try again later")
        # The answer's shape never changes: formatted, not serialized (JsonResponse was 6 % of the CPU).
        return HttpResponse(_RECEIVED % event_id, content_type="application/json")

"""Meta's side of webhook authentication: the ``X-Hub-Signature-256`` header it sends with each delivery, the
HMAC-SHA256 of the raw body with the app secret (docs/meta.md §2). The sandbox, the simulator, the bench and the
tests sign with it; the webhook view checks it (webhooks/apis.py)."""

import hashlib
import hmac


def sign_body(*, raw_body: bytes, app_secret: str) -> str:
    """The header value Meta would send for this body."""
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()

"""Meta's webhook authentication: the verify-token handshake and the X-Hub-Signature-256 HMAC.

Both compare in constant time. The HMAC is computed over the raw request bytes exactly as received:
Meta signs its own escaped serialisation, so a re-serialised body would not verify (docs/meta.md §2).
"""
import hashlib
import hmac

SIGNATURE_PREFIX = "sha256="


def sign_body(*, raw_body: bytes, app_secret: str) -> str:
    """The header value Meta would send for this body; used by the simulator and the tests."""
    return SIGNATURE_PREFIX + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def is_valid_signature(*, raw_body: bytes, header: str, app_secret: str) -> bool:
    if not app_secret or not header.startswith(SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(sign_body(raw_body=raw_body, app_secret=app_secret), header.strip().lower())


def is_valid_handshake(*, mode: str, token: str, verify_token: str) -> bool:
    if mode != "subscribe" or not verify_token:
        return False
    return hmac.compare_digest(token.encode(), verify_token.encode())

"""The pages' Content-Security-Policy."""

from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings

# Where the static files come from: the app itself, or also a CDN's origin when STATIC_URL is absolute.
_static = urlsplit(settings.STATIC_URL)
STATIC_SOURCES = f"'self' {_static.scheme}://{_static.netloc}" if _static.netloc else "'self'"

# Pages load only the app's own ES modules and stylesheet (no inline script, style attribute or other origin);
# the socket is same-origin ('self' covers ws: and wss: of the page's host). Customer text reaches the DOM as
# text only, and this policy is the second line should that ever slip.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        f"script-src {STATIC_SOURCES}",
        f"style-src {STATIC_SOURCES}",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# Swagger UI's page (/api/docs/) starts itself with an inline script.
API_DOCS_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    f"script-src {STATIC_SOURCES}", f"script-src {STATIC_SOURCES} 'unsafe-inline'"
)


class ContentSecurityPolicyMiddleware:
    """``Content-Security-Policy`` on every HTML answer that does not set its own (media files and the API docs
    do)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response and response.get("Content-Type", "").startswith("text/html"):
            response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response


def content_security_policy(policy: str):
    """A view's own policy, kept by ``ContentSecurityPolicyMiddleware`` (e.g. a third-party page with an inline
    script)."""

    def decorate(view):
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            response["Content-Security-Policy"] = policy
            return response

        return wraps(view)(wrapped)

    return decorate

"""The WSGI handler gunicorn serves: Django's, with a shorter middleware chain for Meta's webhook deliveries.

Each of Meta's POSTs went through all of ``settings.MIDDLEWARE`` for nothing it uses: the webhook authenticates
by the body's HMAC, not by session or user; DRF views are exempt from CSRF; it never shows a message; and Meta,
not a browser, reads its answer, so HSTS, nosniff, referrer, opener and frame headers protect nobody. Skipping
it took a web process from 1,806k to 1,580k instructions per webhook, -12.5 % (callgrind, ``manage.py bench
--phases instructions``). POSTs to the webhook's path go through ``settings.WEBHOOK_MIDDLEWARE`` instead; every
other request, the webhook's handshake GET included, through the whole chain as before.

Kept for the webhook, by the handler itself: the ``Host`` header is checked against ``ALLOWED_HOSTS`` (as
``CommonMiddleware`` does for every request), a delivery that did not come over HTTPS is redirected to it
(``SecurityMiddleware``'s request half, with ``SECURE_SSL_REDIRECT``), and every answer says its length
(``CommonMiddleware``'s response half: without a ``Content-Length`` gunicorn sends an HTTP/1.1 answer chunked,
three writes to the socket instead of two).

And the webhook's URL is resolved once, when the handler loads (the URL map does not change while a process
runs), instead of trying every pattern before it on each delivery: 1,580k → 1,477k instructions.

Under Daphne (the embedded ``make run``) the webhook takes the whole chain: this is the production HTTP path.
"""
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import get_resolver, reverse
from django.utils.module_loading import import_string


class InboxWSGIHandler(WSGIHandler):
    """Django's ``WSGIHandler``; ``POST``s to the webhook's path go through ``settings.WEBHOOK_MIDDLEWARE``."""

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async)
        self.webhook_path = reverse("webhook")
        self._webhook_match = get_resolver().resolve(self.webhook_path)
        self._https_redirect = SecurityMiddleware(self._get_response)
        self._sized = CommonMiddleware(self._get_response)
        handler = convert_exception_to_response(self._get_webhook_response)
        for middleware_path in reversed(settings.WEBHOOK_MIDDLEWARE):
            middleware = import_string(middleware_path)(handler)
            # Django calls these hooks from the chain it builds itself; this one is only nested calls.
            hooks = [hook for hook in ("process_view", "process_exception", "process_template_response")
                     if hasattr(middleware, hook)]
            if hooks:
                raise ImproperlyConfigured(
                    f"WEBHOOK_MIDDLEWARE: {middleware_path} has {', '.join(hooks)}, which the webhook's chain never calls"
                )
            handler = convert_exception_to_response(middleware)
        self._webhook_chain = handler
        # Django's get_response (urlconf, closers, error logging) calls this chain: it picks one of the two.
        self._whole_chain, self._middleware_chain = self._middleware_chain, self._pick_chain

    def _pick_chain(self, request):
        if request.method == "POST" and request.path_info == self.webhook_path:
            return self._sized.process_response(request, self._webhook_chain(request))
        return self._whole_chain(request)

    def resolve_request(self, request):
        # Every pattern before the webhook's tried and a ResolverMatch built, per delivery: 6.5 % of a webhook.
        if request.path_info == self.webhook_path and not hasattr(request, "urlconf"):
            request.resolver_match = self._webhook_match
            return self._webhook_match
        return super().resolve_request(request)

    def _get_webhook_response(self, request):
        request.get_host()  # DisallowedHost (400) for a Host not in ALLOWED_HOSTS, as on every other path
        # Django's _get_response still runs the whole chain's view hooks: CSRF's, which DRF views are exempt from.
        return self._https_redirect.process_request(request) or self._get_response(request)

"""The webhook's fast path, fenced here: the two things a delivery does that plain Django does slowly.

Figures: instructions per webhook handed to the WSGI application in one process (``manage.py bench --phases
instructions``; callgrind, repeatable to about 1 %).

1. ``InboxWSGIHandler``, the WSGI handler gunicorn serves: Django's, with a shorter middleware chain for Meta's
   POSTs. They went through all of ``settings.MIDDLEWARE`` for nothing they use: the webhook authenticates by
   the body's HMAC, not by session or user; DRF views are exempt from CSRF; it never shows a message; and Meta,
   not a browser, reads the answer, so HSTS, nosniff, referrer, opener and frame headers protect nobody.
   Skipping it took a web process from 1,806k to 1,580k instructions per webhook (-12.5 %), and resolving the
   webhook's URL once, when the handler loads, to 1,477k (-6.5 %). POSTs to the webhook's path go through
   ``settings.WEBHOOK_MIDDLEWARE`` instead; every other request, the handshake GET included, through the whole
   chain. Kept for the webhook by the handler itself: the ``Host`` header is checked against ``ALLOWED_HOSTS``,
   a delivery that did not come over HTTPS is redirected to it (``SECURE_SSL_REDIRECT``), and every answer
   says its length (without it gunicorn sends an HTTP/1.1 answer chunked, three writes instead of two).
   Under Daphne (the embedded ``make run``) the webhook takes the whole chain.
2. ``insert_webhook_event``: the event's INSERT on psycopg's connection, not through the ORM's ``create`` and
   Django's per-request connection health check (a ``SELECT 1`` per delivery): 2,077k -> 1,279k instructions
   per webhook (-38 %). A connection found dead is replaced and the INSERT tried once more; that can store a
   delivery twice if the first commit landed before the connection broke, which processing absorbs, as it
   does Meta's retries.
"""

import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import get_resolver, reverse
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

_INSERT_EVENT = (
    "INSERT INTO webhooks_webhookevent"
    " (received_at, raw_body, signature, phone_number_id, request_id, state, attempts, error, item_errors)"
    " VALUES (now(), %s, %s, %s, %s, 'pending', 0, '', '[]') RETURNING id"
)


def insert_webhook_event(*, raw_body: str, signature: str, phone_number_id: str, request_id: str) -> int | None:
    """Store a pending event on PostgreSQL in autocommit (committed before Meta hears 200) and return its id;
    ``None`` elsewhere (SQLite, or inside a caller's transaction: the ORM then, which commits with it)."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql" or not db.get_autocommit():
        return None
    params = (raw_body, signature, phone_number_id, request_id)
    db.ensure_connection()
    try:
        return _execute(db, params)
    except OperationalError:
        if not db.connection.closed:
            raise
    logger.warning("database connection was closed; reconnecting to store the webhook")
    db.close()
    db.ensure_connection()
    return _execute(db, params)


def _execute(db, params: tuple[str, str, str, str]) -> int:
    # Not prepared behind a pooler that loses prepared statements (DATABASE_PREPARED_STATEMENTS; psycopg prepares
    # only on a cursor that binds server-side, which Django's are not). What a pooler refuses is raised as
    # OperationalError naming the setting (database/pgbouncer.py, in wrap_database_errors): a 503, Meta retries.
    with db.wrap_database_errors:
        return db.connection.execute(_INSERT_EVENT, params, prepare=settings.DATABASE_PREPARED_STATEMENTS).fetchone()[0]


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
            hooks = [
                hook
                for hook in ("process_view", "process_exception", "process_template_response")
                if hasattr(middleware, hook)
            ]
            if hooks:
                raise ImproperlyConfigured(
                    f"WEBHOOK_MIDDLEWARE: {middleware_path} has {', '.join(hooks)},"
                    " which the webhook's chain never calls"
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

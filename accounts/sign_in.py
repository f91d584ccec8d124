"""One limit on sign-in attempts, whichever way in: the inbox's /login/, the admin's /admin/login/ and the API's
token endpoints (/api/auth/token/, /api/auth/token/refresh/).

Failed attempts are counted per client address and per username (the refresh endpoint has no username: its
address alone) against ``SIGN_IN_FAILURE_RATE`` (API_THROTTLE_AUTH, DRF's rate syntax, e.g. ``10/min``): the
first attempt opens a window of that length, and once either count is full, that address or that username is
refused (429 with Retry-After) until the window ends. Guessing one account's password from many addresses is
stopped by its username count, many accounts from one address by the address count. An attempt is counted
before it is checked, so parallel guesses cannot slip past the limit, and given back when it succeeds.

The counters live in Django's cache: Redis in production, shared by every gunicorn worker. While it cannot be
reached, attempts are let through uncounted (a warning logged each time), as the API's throttles are
(config/throttling.py): refusing every sign-in during a Redis outage would lock the whole team out, and passwords
are still checked. The limit holds again as soon as Redis answers.
"""

import contextlib
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.core.cache import cache
from django.dispatch import receiver
from django.shortcuts import render
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# What Django's Redis cache raises when Redis cannot be reached (refused, reset, timed out).
_CACHE_UNREACHABLE = (RedisError, OSError)


def client_ip(request) -> str:
    """The address of the client that sent ``request``, as far as the deployment's own proxies vouch for it:
    DRF's rule, read from ``REST_FRAMEWORK["NUM_PROXIES"]`` (= ``TRUSTED_PROXY_COUNT``). With 0 (``make run``,
    nothing in front) the peer address, an X-Forwarded-For header being the client's own word; with N proxies,
    each appending the address it saw, the N-th entry from the right."""
    return BaseThrottle().get_ident(request)


class TooManySignInAttempts(Exception):
    def __init__(self, retry_after: int):
        super().__init__("Too many failed sign-in attempts.")
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignInAttempt:
    counters: tuple[str, ...]

    def succeeded(self) -> None:
        """A successful sign-in is not a failure: give back what the attempt counted."""
        try:
            for key in self.counters:
                with contextlib.suppress(ValueError):  # its window has ended meanwhile
                    cache.decr(key)
        except _CACHE_UNREACHABLE:
            logger.warning("sign-in success not given back: the cache is unreachable", exc_info=True)


def _parse_rate(rate: str) -> tuple[int, int]:
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0]]


def start_sign_in_attempt(request, *, username: str | None) -> SignInAttempt:
    """Count one attempt against the client's address and ``username``; raise ``TooManySignInAttempts`` when
    either has used up its failures for this window. Call ``succeeded()`` on the result when it succeeds."""
    limit, window = _parse_rate(settings.SIGN_IN_FAILURE_RATE)
    subjects = [f"ip:{client_ip(request)}"]
    if username:
        # Hashed: a username can be long or hold characters a cache key must not.
        subjects.append("user:" + hashlib.sha256(username.casefold().encode()).hexdigest())
    counted = []
    try:
        for subject in subjects:
            key = f"sign-in-failures:{subject}"
            # The first attempt opens the window; the count and the window's end expire together.
            now = time.time()
            if cache.add(key, 0, timeout=window):
                cache.set(f"{key}:ends", now + window, timeout=window)
            try:
                count = cache.incr(key)
            except ValueError:  # the window ended between add and incr
                count = 1
                cache.set(key, count, timeout=window)
                cache.set(f"{key}:ends", now + window, timeout=window)
            counted.append(key)
            if count > limit:
                ends = cache.get(f"{key}:ends", now + window)
                raise TooManySignInAttempts(max(1, math.ceil(ends - now)))
    except _CACHE_UNREACHABLE:
        logger.warning("sign-in attempt not counted: the cache is unreachable", exc_info=True)
    return SignInAttempt(counters=tuple(counted))


@receiver(user_logged_in, dispatch_uid="accounts.sign_in.mark_signed_in")
def _mark_signed_in(sender, request, user, **kwargs):
    if request is not None:
        request.signed_in_now = True


def sign_in_limited(view):
    """A sign-in form view (Django's LoginView, the admin's login) behind ``start_sign_in_attempt``: a POST over
    the limit gets a readable 429 page. Success is the view logging the user in (``user_logged_in``), not an
    authenticated ``request.user``: someone already signed in must not guess other accounts unlimited."""

    @wraps(view)
    def limited_view(request, *args, **kwargs):
        if request.method != "POST":
            return view(request, *args, **kwargs)
        try:
            attempt = start_sign_in_attempt(request, username=request.POST.get(get_user_model().USERNAME_FIELD))
        except TooManySignInAttempts as refusal:
            page = render(
                request, "registration/too_many_attempts.html", {"retry_after": refusal.retry_after}, status=429
            )
            page["Retry-After"] = str(refusal.retry_after)
            return page
        response = view(request, *args, **kwargs)
        if getattr(request, "signed_in_now", False):
            attempt.succeeded()
        return response

    return limited_view

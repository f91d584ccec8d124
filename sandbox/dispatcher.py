"""Signed webhook deliveries to the app, on a timer queue, retried the way Meta retries (docs/meta.md §4).

One background thread pops jobs when they fall due and POSTs them one at a time, so webhooks scheduled
in order arrive in order (the sandbox shuffles them on purpose only when asked to). A delivery that fails
(connection error, timeout or any non-2xx answer) is queued again after the next of the configured retry
delays with the *identical* bytes and signature, as Meta resends "immediately, then a few more times with
decreasing frequency"; after the last delay it is dropped and logged. Meta's own schedule spans 7 days and
is undocumented; the sandbox's delays are seconds so tests and demos can watch retries happen.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from sandbox.signing import sign_body

logger = logging.getLogger("sandbox")

DELIVERY_LOG_LIMIT = 5000


@dataclass
class DeliveryTarget:
    url: str
    retry_delays: list[float]
    timeout: float


@dataclass
class WebhookJob:
    id: int
    body: bytes
    headers: dict[str, str]
    summary: dict[str, Any]
    generation: int
    attempts: int = 0
    outcome: str = "pending"  # pending | delivered | dropped
    responses: list[str] = field(default_factory=list)

    def as_log(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.summary,
            "attempts": self.attempts,
            "outcome": self.outcome,
            "responses": list(self.responses),
        }


def signed_headers(body: bytes, *, app_secret: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "facebookexternalua",
        "X-Hub-Signature-256": sign_body(raw_body=body, app_secret=app_secret),
        # The legacy SHA-1 header Graph webhooks still carry (docs/meta.md §2); apps should ignore it.
        "X-Hub-Signature": "sha1=" + hmac.new(app_secret.encode(), body, hashlib.sha1).hexdigest(),
    }


class WebhookDispatcher:
    def __init__(self, *, target: Callable[[], DeliveryTarget]):
        self._target = target
        self._heap: list[tuple[float, int, WebhookJob]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._generation = 0
        self._log: deque[WebhookJob] = deque(maxlen=DELIVERY_LOG_LIMIT)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._session = requests.Session()
        self._session.trust_env = False  # a local app; no proxy from the environment

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self._session.close()

    def schedule(self, *, body: bytes, app_secret: str, summary: dict[str, Any], delay: float) -> WebhookJob:
        with self._cond:
            job = WebhookJob(
                id=next(self._ids),
                body=body,
                headers=signed_headers(body, app_secret=app_secret),
                summary=summary,
                generation=self._generation,
            )
            self._log.append(job)
            self._push(job, delay)
            return job

    def clear(self) -> None:
        """Drop every pending delivery and the log (the control API's reset)."""
        with self._cond:
            self._generation += 1
            self._heap.clear()
            self._log.clear()

    def log(self) -> list[dict[str, Any]]:
        with self._cond:
            return [job.as_log() for job in self._log]

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def _push(self, job: WebhookJob, delay: float) -> None:
        heapq.heappush(self._heap, (time.monotonic() + max(delay, 0.0), next(self._seq), job))
        self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, job = heapq.heappop(self._heap)
            try:
                self._deliver(job)
            except Exception:  # the thread must survive anything one delivery does
                logger.exception("webhook %s: unexpected error while delivering", job.id)

    def _deliver(self, job: WebhookJob) -> None:
        target = self._target()
        job.attempts += 1
        label = f"webhook {job.id} ({job.summary.get('kind')} {job.summary.get('status') or ''})".replace(" )", ")")
        if not target.url:
            result, ok = "no webhook url configured", False
        else:
            try:
                response = self._session.post(target.url, data=job.body, headers=job.headers, timeout=target.timeout)
                result, ok = f"HTTP {response.status_code}", 200 <= response.status_code < 300
            except requests.RequestException as exc:
                result, ok = f"{type(exc).__name__}: {str(exc)[:160]}", False
        with self._cond:
            if job.generation != self._generation:
                return  # reset while in flight
            job.responses.append(result)
            if ok:
                job.outcome = "delivered"
                logger.info("%s delivered to %s on attempt %s", label, target.url, job.attempts)
                return
            if job.attempts <= len(target.retry_delays):
                delay = target.retry_delays[job.attempts - 1]
                logger.warning("%s attempt %s failed (%s); retrying in %ss", label, job.attempts, result, delay)
                self._push(job, delay)
            else:
                job.outcome = "dropped"
                logger.error("%s dropped after %s attempts (last: %s)", label, job.attempts, result)

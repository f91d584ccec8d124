"""Probes for load balancers and Prometheus: ``/healthz``, ``/readyz``, ``/metrics``.

- ``/healthz``: the process answers; no I/O, so a slow database never gets a healthy process restarted.
- ``/readyz``: the database, Redis (``REDIS_URL`` or Sentinel, when set), a Celery worker answering a ping and the
  oldest pending webhook event younger than ``READYZ_MAX_PENDING_WEBHOOK_AGE_SECONDS``; 200 when all pass,
  503 naming the failing checks otherwise. For probes inside the network: nginx answers it 404 to the public.
  With ``DATABASE_REPLICA_URL`` it shows the read replica's state too, never failing on it: the primary serves.
- ``/metrics``: Prometheus text format (rendered by prometheus_client), only with
  ``Authorization: Bearer <INTERNAL_API_TOKEN>``; 404 when no token is configured, so the endpoint does not exist
  unless an operator turned it on.
"""

import hmac
import logging
import time
from collections.abc import Callable, Iterator

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from conversations.models import BusinessNumber, Direction, Message
from conversations.selectors import number_health
from database.replica import REPLICA, replica_configured, replica_status
from ops.redis_client import NoRedisMaster, redis_client, redis_configured
from realtime.connections import open_sockets
from webhooks.models import WebhookEvent, WebhookEventState

CELERY_QUEUE = "celery"

logger = logging.getLogger(__name__)


class ProbeFailed(Exception):
    """A check's own finding, worded for the operator and safe to show in the probe's answer."""


@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {}


def check_database_replica() -> dict:
    """The read replica's state, for the operator: never a failure, the primary serves what it would."""
    status = replica_status()
    reading = {"state": status.state, "reads": "replica" if status.alias == REPLICA else "primary"}
    if status.lag_seconds is not None:
        reading["lag_seconds"] = round(status.lag_seconds, 1)
    if status.error:
        reading["error"] = f"{status.error} (details in the log)"
    return reading


def check_redis() -> dict:
    try:
        redis_client(timeout=1).ping()
    except NoRedisMaster as error:
        # The answer says which setting to check; the log adds the sentinels' addresses and the master's name.
        logger.warning("readiness check redis failed: %s", error)
        raise ProbeFailed(error.summary) from None
    return {}


def check_celery_worker() -> dict:
    from config.celery import app as celery_app

    # limit=1: return as soon as one worker answered instead of waiting the whole timeout for all.
    replies = celery_app.control.ping(timeout=settings.READYZ_CELERY_PING_TIMEOUT_SECONDS, limit=1)
    if not replies:
        raise ProbeFailed("no Celery worker answered a ping")
    return {"workers": sorted(name for reply in replies for name in reply)}


def oldest_pending_webhook_age() -> float | None:
    oldest = WebhookEvent.objects.filter(state=WebhookEventState.PENDING).aggregate(at=Min("received_at"))["at"]
    return None if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())


def check_webhook_lag() -> dict:
    age = oldest_pending_webhook_age()
    limit = settings.READYZ_MAX_PENDING_WEBHOOK_AGE_SECONDS
    if age is not None and age > limit:
        raise ProbeFailed(f"oldest pending webhook event is {age:.0f}s old (limit {limit:.0f}s)")
    return {"oldest_pending_seconds": None if age is None else round(age, 1)}


def _run(name: str, check: Callable[[], dict]) -> dict:
    """One check's result. An exception's text (host names, database names, driver messages) goes to the log,
    not into the answer: the answer names only its kind."""
    started = time.monotonic()
    try:
        result = {"ok": True, **check()}
    except ProbeFailed as failure:
        result = {"ok": False, "error": str(failure)}
    except Exception as exc:  # a probe reports every failure, it never raises
        logger.warning("readiness check %s failed", name, exc_info=True)
        result = {"ok": False, "error": f"{type(exc).__name__} (details in the log)"}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _run("database", check_database)}
    if replica_configured():
        checks["database_replica"] = _run("database_replica", check_database_replica)
    if redis_configured():
        checks["redis"] = _run("redis", check_redis)
        if checks["redis"]["ok"]:
            checks["celery_worker"] = _run("celery_worker", check_celery_worker)
        else:
            # The ping goes through Redis: with Redis down it could only hang until its timeout.
            checks["celery_worker"] = {"ok": False, "error": "skipped: Redis (the broker) is unreachable"}
    if checks["database"]["ok"]:
        checks["webhook_lag"] = _run("webhook_lag", check_webhook_lag)
    else:
        checks["webhook_lag"] = {"ok": False, "error": "skipped: the database is unreachable"}
    failing = sorted(name for name, result in checks.items() if not result["ok"])
    body = {"status": "fail" if failing else "ok", "failing": failing, "checks": checks}
    return JsonResponse(body, status=503 if failing else 200)


def _bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def celery_queue_depth() -> int | None:
    """Tasks waiting in the broker's default queue; ``None`` when there is no broker (tasks run in-process)."""
    if not redis_configured():
        return None
    return int(redis_client(timeout=1).llen(CELERY_QUEUE))


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.INTERNAL_API_TOKEN:
        return HttpResponse("Not Found", status=404, content_type="text/plain")
    token = _bearer_token(request)
    if token is None:
        response = HttpResponse("Unauthorized", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = "Bearer"
        return response
    if not hmac.compare_digest(token.encode(), settings.INTERNAL_API_TOKEN.encode()):
        return HttpResponse("Forbidden", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)


def metrics_registry() -> CollectorRegistry:
    """What one scrape reads. Built per scrape: which parts there are follows the settings (a broker, PostgreSQL),
    and the process's own default registry (process and GC metrics) stays out of it."""
    registry = CollectorRegistry(auto_describe=False)  # no describe(): registering reads nothing
    registry.register(InboxCollector())
    registry.register(NumbersCollector())
    if redis_configured():
        registry.register(RedisCollector())
    if connection.vendor == "postgresql":
        registry.register(DatabaseCollector(connection))
    return registry


BROKER_UP_HELP = "1 when the Celery broker answered."
OUTBOUND_STATUSES = ("pending", "unconfirmed", "sent", "delivered", "read", "played", "failed")


class InboxCollector:
    """Webhook events, the Celery queue, open sockets and outbound messages."""

    def collect(self) -> Iterator[Metric]:
        by_state = dict(WebhookEvent.objects.values_list("state").annotate(n=Count("id")).order_by())
        yield CounterMetricFamily(
            "inbox_webhooks_received_total",
            "Webhook deliveries stored (rows in the webhook event table).",
            value=sum(by_state.values()),
        )
        for state in (WebhookEventState.PROCESSED, WebhookEventState.FAILED, WebhookEventState.UNROUTABLE):
            yield CounterMetricFamily(
                f"inbox_webhooks_{state.value}_total",
                f"Webhook events in state {state.value}.",
                value=by_state.get(state.value, 0),
            )
        yield GaugeMetricFamily(
            "inbox_webhooks_pending",
            "Webhook events stored but not processed yet.",
            value=by_state.get(WebhookEventState.PENDING.value, 0),
        )
        yield GaugeMetricFamily(
            "inbox_webhook_processing_lag_seconds",
            "Age of the oldest pending webhook event (0 when none).",
            value=oldest_pending_webhook_age() or 0.0,
        )
        try:
            depth = celery_queue_depth()
        except redis.RedisError:
            yield GaugeMetricFamily("inbox_celery_broker_up", BROKER_UP_HELP, value=0)
        else:
            if depth is not None:
                yield GaugeMetricFamily("inbox_celery_broker_up", BROKER_UP_HELP, value=1)
                yield GaugeMetricFamily("inbox_celery_queue_depth", "Tasks waiting in the Celery queue.", value=depth)
        yield GaugeMetricFamily(
            "inbox_websockets_open", "Inbox WebSockets open across every Daphne process.", value=open_sockets()
        )
        outbound = dict(
            Message.objects.filter(direction=Direction.OUTBOUND)
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        )
        by_status = GaugeMetricFamily(
            "inbox_outbound_messages", "Outbound messages by their current status.", labels=["status"]
        )
        for status in OUTBOUND_STATUSES:
            by_status.add_metric([status], outbound.get(status, 0))
        yield by_status


class NumbersCollector:
    """Each number's standing with Meta, as the Numbers page reads it (selectors.number_health, a few queries
    however many numbers): its quality, the portfolio's messaging limit, its account's templates by status."""

    def collect(self) -> Iterator[Metric]:
        quality = GaugeMetricFamily(
            "inbox_number_quality",
            "Quality Meta rates the number with: 3 green, 2 yellow, 1 red, 0 not rated.",
            labels=["phone_number_id", "rating"],
        )
        limit = GaugeMetricFamily(
            "inbox_number_messaging_limit",
            "Distinct customers a day the number's portfolio may reach with business-initiated messages "
            "(-1: unlimited or not known).",
            labels=["phone_number_id", "tier"],
        )
        used = GaugeMetricFamily(
            "inbox_number_messaging_limit_used",
            "Distinct customers the number's portfolio reached with business-initiated messages in 24 hours.",
            labels=["phone_number_id"],
        )
        templates = GaugeMetricFamily(
            "inbox_number_templates",
            "The number's account's templates by status.",
            labels=["phone_number_id", "status"],
        )
        for health in number_health(numbers=BusinessNumber.objects.all()):
            number = health["phone_number_id"]
            quality.add_metric([number, health["quality"]["rating"]], health["quality"]["score"])
            messaging = health["messaging_limit"]
            limit.add_metric([number, messaging["tier"]], -1 if messaging["limit"] is None else messaging["limit"])
            used.add_metric([number], messaging["used_24h"])
            for status, count in sorted(health["templates"]["counts"].items()):
                templates.add_metric([number, status], count)
        yield from (quality, limit, used, templates)


class RedisCollector:
    """Redis holds the broker's queue and the channel layer: memory near its limit means evictions (lost
    tasks and events) or refused writes, depending on its ``maxmemory-policy``."""

    def collect(self) -> Iterator[Metric]:
        try:
            info = redis_client(timeout=1).info()
        except redis.RedisError:
            yield GaugeMetricFamily("inbox_redis_up", "1 when Redis answered.", value=0)
            return
        yield GaugeMetricFamily("inbox_redis_up", "1 when Redis answered.", value=1)
        yield GaugeMetricFamily("inbox_redis_memory_used_bytes", "Memory Redis uses.", value=info.get("used_memory", 0))
        yield GaugeMetricFamily(
            "inbox_redis_memory_max_bytes", "Redis maxmemory (0: no limit).", value=info.get("maxmemory", 0)
        )
        yield GaugeMetricFamily(
            "inbox_redis_connected_clients", "Clients connected to Redis.", value=info.get("connected_clients", 0)
        )
        yield CounterMetricFamily(
            "inbox_redis_evicted_keys_total",
            "Keys Redis evicted to stay under maxmemory.",
            value=info.get("evicted_keys", 0),
        )


# The slowest statements by mean time, when pg_stat_statements is installed (CREATE EXTENSION pg_stat_statements,
# with shared_preload_libraries = 'pg_stat_statements'); a query id is looked up in the view for its text.
SLOW_STATEMENTS_SHOWN = 5


class DatabaseCollector:
    """Connections, size and, with pg_stat_statements, the slowest statements of ``db``'s database (a Django or
    a psycopg connection)."""

    def __init__(self, db):
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() GROUP BY 1"
            )
            by_state = cursor.fetchall()
            cursor.execute("SELECT pg_database_size(current_database()), current_setting('max_connections')::int")
            size, max_connections = cursor.fetchone()
            cursor.execute(
                "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements' AND 'pg_stat_statements'"
                " = ANY(string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))"
            )
            # Installed but not preloaded, its view raises: counted as off.
            statements_on = cursor.fetchone() is not None
            slowest = []
            if statements_on:
                cursor.execute(
                    "SELECT queryid, mean_exec_time / 1000.0, calls FROM pg_stat_statements"
                    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls >= 10"
                    " ORDER BY mean_exec_time DESC LIMIT %s",
                    [SLOW_STATEMENTS_SHOWN],
                )
                slowest = cursor.fetchall()
        connections = GaugeMetricFamily(
            "inbox_database_connections", "Connections to this database by state (pg_stat_activity).", labels=["state"]
        )
        for state, count in by_state:
            connections.add_metric([state], count)
        yield connections
        yield GaugeMetricFamily("inbox_database_max_connections", "PostgreSQL max_connections.", value=max_connections)
        yield GaugeMetricFamily("inbox_database_size_bytes", "Size of this database on disk.", value=size)
        yield GaugeMetricFamily(
            "inbox_database_statement_stats_enabled",
            "1 when pg_stat_statements is loaded and installed here.",
            value=1 if statements_on else 0,
        )
        if statements_on:
            mean_seconds = GaugeMetricFamily(
                "inbox_database_slowest_statement_mean_seconds",
                f"Mean time of the {SLOW_STATEMENTS_SHOWN} slowest statements (10+ calls), "
                "by pg_stat_statements query id.",
                labels=["queryid"],
            )
            for queryid, mean, _calls in slowest:
                mean_seconds.add_metric([str(queryid)], mean)
            yield mean_seconds

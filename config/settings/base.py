"""All settings, read from the environment once, here.

With neither ``DATABASE_URL`` nor ``REDIS_URL`` the app runs embedded (SQLite, an in-process channel
layer, Celery tasks run in-process) so ``make run`` works on any machine with Python. With them set it
runs the real topology: PostgreSQL, Redis as Celery broker and channel layer, a separate worker.
Every variable is documented in ``.env.example``.
"""

import importlib.util
import warnings
from pathlib import Path
from urllib.parse import quote

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=True) and (BASE_DIR / ".env").exists():
    # The process environment wins over .env (django-environ only fills in what is unset).
    environ.Env.read_env(BASE_DIR / ".env")

# --- General -----------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-dev-key-change-me-0123456789abcdefghijklmnop")
PORT = env.int("PORT", default=8000)
FRONTEND_URL = env("FRONTEND_URL", default=f"http://localhost:{PORT}")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[FRONTEND_URL])

INSTALLED_APPS = [
    "config.apps.ProjectConfig",  # first: its ready() installs the psycopg adapters before any connection
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "corsheaders",
    "contacts",
    "conversations",
    "webhooks",
    "realtime",
    "ops",  # check_meta, inbox_stats: the operator's reports across the apps
    "sandbox",  # manage.py meta_sandbox and simulate_inbound: Meta's stand-in for make run and the tests
]
# manage.py bench, where the checkout has it (the production image leaves it out: .dockerignore).
if importlib.util.find_spec("bench") is not None:
    INSTALLED_APPS.append("bench")

MIDDLEWARE = [
    # First, so every line logged for a request carries its id (X-Request-ID in and out).
    "ops.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before CommonMiddleware, so a preflight is answered before anything else looks at it.
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
]
# Meta's webhook POSTs under gunicorn take only these (webhooks/fastpath.py says what else is kept, and why).
WEBHOOK_MIDDLEWARE = ["ops.logs.RequestIdMiddleware"]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Fail fast when PostgreSQL is unreachable: the webhook answers 503 and Meta retries.
        DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
            "DATABASE_CONNECT_TIMEOUT", default=3
        )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "OPTIONS": {"timeout": 20},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A PostgreSQL streaming replica of DATABASE_URL, optional: searches and reports read it (database/replica.py says
# which, and when they fall back to the primary); nothing else does.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="").strip()
# A replica further behind than this, or not answering, is passed over for the primary, with a warning.
DATABASE_REPLICA_MAX_LAG_SECONDS = env.float("DATABASE_REPLICA_MAX_LAG_SECONDS", default=30.0)
# How long a process trusts its last look at the replica's state (one lag query, one warning, per interval).
DATABASE_REPLICA_CHECK_SECONDS = env.float("DATABASE_REPLICA_CHECK_SECONDS", default=5.0)
if DATABASE_REPLICA_URL:
    try:
        _replica = env.db_url_config(DATABASE_REPLICA_URL)
    except ValueError:  # e.g. a port that is not a number
        _replica = {}
    if _replica.get("ENGINE") != "django.db.backends.postgresql" or not _replica.get("NAME"):
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URL must be postgres://user@host:port/database, a streaming replica of DATABASE_URL"
        )
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs DATABASE_URL: a replica of PostgreSQL, not of SQLite")
    DATABASES["replica"] = _replica | {
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        # Short: a replica that does not answer costs a search this long once per check, then the primary serves.
        "OPTIONS": {**_replica.get("OPTIONS", {}), "connect_timeout": 2},
    }

# PgBouncer in front of PostgreSQL (docs/pgbouncer.md). "transaction": its pool_mode = transaction, where each
# transaction may run on another server connection, so no server-side cursors and, unless DATABASE_PREPARED_STATEMENTS
# says that this PgBouncer keeps them (1.21+ with max_prepared_statements), no prepared statements
# (database/pgbouncer.py says what else was checked). "session" or unset: nothing to change.
DATABASE_PGBOUNCER = env("DATABASE_PGBOUNCER", default="").strip().lower()
if DATABASE_PGBOUNCER not in ("", "session", "transaction"):
    raise ImproperlyConfigured(
        f"DATABASE_PGBOUNCER must be transaction or session (PgBouncer's pool_mode), not {DATABASE_PGBOUNCER!r}"
        + (": statement pooling cannot run transactions" if DATABASE_PGBOUNCER == "statement" else "")
    )
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=DATABASE_PGBOUNCER != "transaction")
for _alias, _database in DATABASES.items():
    if _database["ENGINE"] != "django.db.backends.postgresql":
        continue
    if DATABASE_PGBOUNCER == "transaction":
        _database["DISABLE_SERVER_SIDE_CURSORS"] = True
    if not DATABASE_PREPARED_STATEMENTS:
        if _database.get("OPTIONS", {}).get("prepare_threshold") is not None:
            raise ImproperlyConfigured(
                f"the {_alias} database's URL sets prepare_threshold, and DATABASE_PREPARED_STATEMENTS is off"
                + (" (DATABASE_PGBOUNCER=transaction turns it off)" if DATABASE_PGBOUNCER == "transaction" else "")
                + ": remove it, or set DATABASE_PREPARED_STATEMENTS=1 where PgBouncer keeps prepared statements"
            )
        # Django's default, pinned: psycopg then prepares nothing by itself.
        _database.setdefault("OPTIONS", {})["prepare_threshold"] = None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# A CDN's URL in production (e.g. https://cdn.example.com/static/, in front of nginx's /static/): pages then load
# the hashed files from it, and the pages' Content-Security-Policy allows its origin (config/middleware.py).
STATIC_URL = env("STATIC_URL", default="static/")
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# The app serves its own static files (a handful of ES modules and one stylesheet) through WhiteNoise,
# so Daphne alone is a working server; the files are read from the app directories, no build step.
WHITENOISE_USE_FINDERS = True
# Until `collectstatic` has run (production does, in its image) the finders serve everything.
warnings.filterwarnings("ignore", message="No directory at")
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
# Media files (customers' and staff's attachments) live under MEDIA_ROOT, or in an S3-compatible bucket
# when MEDIA_S3_BUCKET is set. Either way they are private: staff get them through /media/<message id>/.
MEDIA_S3_BUCKET = env("MEDIA_S3_BUCKET", default="")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if MEDIA_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            "endpoint_url": env("MEDIA_S3_ENDPOINT_URL", default=None),
            "region_name": env("MEDIA_S3_REGION", default=None),
            "access_key": env("MEDIA_S3_ACCESS_KEY_ID", default=None),
            "secret_key": env("MEDIA_S3_SECRET_ACCESS_KEY", default=None),
            "default_acl": "private",
            "file_overwrite": False,
        },
    }

# The admin `manage.py seed_demo` creates on a fresh install (only when no superuser exists yet).
DEMO_ADMIN_PASSWORD = env("DEMO_ADMIN_PASSWORD", default="admin")

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/inbox/"
LOGOUT_REDIRECT_URL = "/login/"

# Meta sends webhook bodies of up to 3 MB; Django's default cap (2.5 MB) would reject real deliveries.
WEBHOOK_MAX_BODY_BYTES = 4 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BODY_BYTES

# LOG_FORMAT=json: one JSON object per line with request_id, webhook_event_id and celery_task_id when the
# line belongs to one (ops/logs.py); production.py makes json the default.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "ops.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": env("LOG_FORMAT", default="plain")},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# --- Redis: Celery broker, channel layer and cache ---------------------------------------------
# One Redis, either at REDIS_URL or, highly available, the master REDIS_SENTINEL_MASTER that the sentinels
# REDIS_SENTINELS (host:port,host:port,...) elect: the broker, the channel layer, the cache and the app's own
# clients (ops/redis_client.py) all follow it through a failover. Passwords: REDIS_PASSWORD for the master and its
# replicas (requirepass), REDIS_SENTINEL_PASSWORD for the sentinels; with REDIS_URL the password is in the URL.
REDIS_URL = env("REDIS_URL", default="")
REDIS_SENTINEL_MASTER = env("REDIS_SENTINEL_MASTER", default="").strip()
REDIS_PASSWORD = env("REDIS_PASSWORD", default="")
REDIS_SENTINEL_PASSWORD = env("REDIS_SENTINEL_PASSWORD", default="")


def _sentinel_addresses(value: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` (an IPv6 host in brackets) as (host, port) pairs; anything else stops start-up."""
    addresses = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        host, _, port = item.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            host = ""  # an IPv6 address without its brackets: where its port starts is a guess
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(
                f"REDIS_SENTINELS must be a comma-separated list of host:port (e.g. h1:26379,h2:26379), not {value!r}"
            )
        addresses.append((host, int(port)))
    return addresses


REDIS_SENTINELS = _sentinel_addresses(env("REDIS_SENTINELS", default=""))
if bool(REDIS_SENTINELS) != bool(REDIS_SENTINEL_MASTER):
    raise ImproperlyConfigured("REDIS_SENTINELS and REDIS_SENTINEL_MASTER are set together or not at all")
if REDIS_SENTINELS and REDIS_URL:
    raise ImproperlyConfigured("set REDIS_URL or REDIS_SENTINELS (with REDIS_SENTINEL_MASTER), not both")
if (REDIS_PASSWORD or REDIS_SENTINEL_PASSWORD) and not REDIS_SENTINELS:
    raise ImproperlyConfigured(
        "REDIS_PASSWORD and REDIS_SENTINEL_PASSWORD go with REDIS_SENTINELS; with REDIS_URL the password is in the URL"
    )
# Seconds to reach a Redis or a sentinel and to wait for its answer: a dead one fails a request, never hangs it.
REDIS_CONNECT_TIMEOUT = 2
REDIS_SOCKET_TIMEOUT = 2
# For the connections to the sentinels themselves (redis-py's, kombu's and channels-redis's sentinel_kwargs). No
# retries: a sentinel that does not answer is passed over for the next one at once (redis-py's default retries each
# command 3 times with a backoff of seconds, and a discovery asks one sentinel after the other).
REDIS_SENTINEL_OPTIONS = {
    "retry": None,
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
    **({"password": REDIS_SENTINEL_PASSWORD} if REDIS_SENTINEL_PASSWORD else {}),
}
# Code that runs later asks ops.redis_client.redis_configured() (tests switch REDIS_URL on and off).
_redis_configured = bool(REDIS_URL or REDIS_SENTINELS)
EMBEDDED = not (DATABASE_URL and _redis_configured)
# Beat's schedule in a thread of the embedded Daphne (config/bin/run sets it; ops/embedded_beat.py says why).
EMBEDDED_BEAT = EMBEDDED and env.bool("EMBEDDED_BEAT", default=False)

if REDIS_SENTINELS:
    # kombu's sentinel transport: one URL per sentinel, the master's password in them (kombu reads the first's).
    _auth = f":{quote(REDIS_PASSWORD, safe='')}@" if REDIS_PASSWORD else ""
    CELERY_BROKER_URL = ";".join(
        f"sentinel://{_auth}{f'[{host}]' if ':' in host else host}:{port}/0" for host, port in REDIS_SENTINELS
    )
else:
    CELERY_BROKER_URL = REDIS_URL or "memory://"
if _redis_configured:
    # kombu's own Redis transports, less a crash of the worker when its broker dies (ops/broker.py).
    CELERY_BROKER_TRANSPORT = f"ops.broker:{'SentinelTransport' if REDIS_SENTINELS else 'Transport'}"
CELERY_TASK_ALWAYS_EAGER = not _redis_configured
CELERY_TASK_EAGER_PROPAGATES = False
# Tasks run in-process (embedded): a retry waits its backoff on a timer thread, as it would in the broker
# under a worker, instead of running at once (config.celery.InboxTask).
EAGER_RETRIES_WAIT = CELERY_TASK_ALWAYS_EAGER
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# On a lost broker connection, cancel running late-ack tasks (a drain runs for seconds): their messages
# go back to the queue. Without it the worker later tried to ack on the dead channel and exited with
# "Unrecoverable error" (kombu; the fault drill that stops Redis mid-stream). Celery 6's default.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 180
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redelivery of unacked (acks_late) tasks after a worker dies; kept far above every countdown.
    "visibility_timeout": 3600,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
if REDIS_SENTINELS:
    CELERY_BROKER_TRANSPORT_OPTIONS |= {"master_name": REDIS_SENTINEL_MASTER, "sentinel_kwargs": REDIS_SENTINEL_OPTIONS}
# The webhook answers Meta within its latency budget even when Redis is down: the event is already
# stored and the sweep below enqueues it later, so publishing must give up quickly, not retry for long.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
# Graph API retries (sends, media downloads): exponential backoff from this base, with jitter.
TASK_RETRY_BACKOFF_SECONDS = env.float("TASK_RETRY_BACKOFF_SECONDS", default=2.0)
TASK_RETRY_BACKOFF_MAX_SECONDS = 300
MEDIA_DOWNLOAD_MAX_RETRIES = env.int("MEDIA_DOWNLOAD_MAX_RETRIES", default=6)
WEBHOOK_SWEEP_INTERVAL_SECONDS = env.float("WEBHOOK_SWEEP_INTERVAL_SECONDS", default=30.0)
# An event still pending this long after it was stored makes the sweep request a drain.
WEBHOOK_SWEEP_GRACE_SECONDS = env.float("WEBHOOK_SWEEP_GRACE_SECONDS", default=60.0)
# Processing drains (webhooks/drain.py): events per round (one batch), drains at most at once, seconds
# a drain runs before it yields the worker, seconds the first drain waits for more work before it stops,
# and how long a drain's flag outlives a worker that died holding it.
WEBHOOK_DRAIN_BATCH = env.int("WEBHOOK_DRAIN_BATCH", default=500)
WEBHOOK_DRAIN_CONCURRENCY = env.int("WEBHOOK_DRAIN_CONCURRENCY", default=2)
WEBHOOK_DRAIN_SECONDS = env.float("WEBHOOK_DRAIN_SECONDS", default=20.0)
WEBHOOK_DRAIN_LINGER_SECONDS = env.float("WEBHOOK_DRAIN_LINGER_SECONDS", default=1.0)
WEBHOOK_DRAIN_CLAIM_SECONDS = env.int("WEBHOOK_DRAIN_CLAIM_SECONDS", default=60)
# Outbound work whose task was lost (Redis down when a reply, a media download or a read receipt was
# enqueued; a retry that never came back) is enqueued again by a sweep this often, once it has waited this long.
OUTBOUND_SWEEP_INTERVAL_SECONDS = env.float("OUTBOUND_SWEEP_INTERVAL_SECONDS", default=30.0)
OUTBOUND_SWEEP_GRACE_SECONDS = env.float("OUTBOUND_SWEEP_GRACE_SECONDS", default=60.0)
# A conversation snoozed until a time is reopened by a sweep this often; the same sweep hands waiting
# conversations to members with room (auto-assignment's safety net for a task lost with Redis).
CONVERSATION_SWEEP_INTERVAL_SECONDS = env.float("CONVERSATION_SWEEP_INTERVAL_SECONDS", default=30.0)
# A user is online for auto-assignment while one of their inbox sockets was seen this recently; an open socket
# says so every PRESENCE_REFRESH_SECONDS, so a socket whose Daphne died counts no more after the TTL.
PRESENCE_TTL_SECONDS = env.float("PRESENCE_TTL_SECONDS", default=90.0)
PRESENCE_REFRESH_SECONDS = env.float("PRESENCE_REFRESH_SECONDS", default=30.0)
NUMBER_POLL_INTERVAL_SECONDS = env.float("NUMBER_POLL_INTERVAL_SECONDS", default=3600.0)
# A business-initiated template past the portfolio's messaging limit: "refuse" it before it reaches Meta, or
# "warn" only; an account's own choice (admin) wins.
MESSAGING_LIMIT_ENFORCEMENT = env.str("MESSAGING_LIMIT_ENFORCEMENT", default="refuse")
CELERY_BEAT_SCHEDULE = {
    "sweep-conversation-timers": {
        "task": "conversations.tasks.sweep_conversations_task",
        "schedule": CONVERSATION_SWEEP_INTERVAL_SECONDS,
    },
    "sweep-unprocessed-webhook-events": {
        "task": "webhooks.tasks.sweep_pending_webhook_events",
        "schedule": WEBHOOK_SWEEP_INTERVAL_SECONDS,
    },
    "sweep-stranded-outbound-work": {
        "task": "conversations.tasks.sweep_outbound_work_task",
        "schedule": OUTBOUND_SWEEP_INTERVAL_SECONDS,
    },
    "flush-expired-tokens": {"task": "ops.flush_expired_tokens", "schedule": 24 * 3600},
    # Meta's number fields (quality, limits, name review) read on the Graph API, in case a webhook was lost.
    "poll-business-numbers": {
        "task": "conversations.tasks.poll_numbers_task",
        "schedule": NUMBER_POLL_INTERVAL_SECONDS,
    },
}

if _redis_configured:
    # Shared across processes: e.g. the typing-indicator rate limit holds across every Daphne.
    _cache_options = {"socket_connect_timeout": REDIS_CONNECT_TIMEOUT, "socket_timeout": REDIS_SOCKET_TIMEOUT}
    _channel_host = REDIS_URL
    if REDIS_SENTINELS:
        # Django's Redis cache takes a pool class: redis-py's Sentinel pool, built from these options.
        _cache_options |= {
            "pool_class": "ops.redis_client.SentinelCachePool",
            "sentinels": REDIS_SENTINELS,
            "master_name": REDIS_SENTINEL_MASTER,
            "sentinel_kwargs": REDIS_SENTINEL_OPTIONS,
            **({"password": REDIS_PASSWORD} if REDIS_PASSWORD else {}),
        }
        # No socket timeout on the layer's own connections (a receive blocks for seconds), as with REDIS_URL;
        # a connect timeout, though: after a failover the old master's host may not even refuse.
        _channel_host = {
            "sentinels": REDIS_SENTINELS,
            "master_name": REDIS_SENTINEL_MASTER,
            "sentinel_kwargs": REDIS_SENTINEL_OPTIONS,
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
            **({"password": REDIS_PASSWORD} if REDIS_PASSWORD else {}),
        }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL or f"sentinel://{REDIS_SENTINEL_MASTER}",
            "OPTIONS": _cache_options,
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [_channel_host], "capacity": 1500, "expiry": 30},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Client addresses and sign-in limits ---------------------------------------------------------
# How many proxies of this deployment stand in front of the app, each appending to X-Forwarded-For: 0 under
# `make run` (the header is then the client's own word and ignored), 1 behind nginx (docker-compose.yml and
# config/deploy/systemd set it). Every per-address limit takes the client address from it (accounts.sign_in.client_ip,
# DRF's NUM_PROXIES below).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_COUNT must be 0 or more, not {TRUSTED_PROXY_COUNT}")
# Failed sign-ins allowed per client address and per username, inbox, admin and API tokens alike (accounts/sign_in.py).
SIGN_IN_FAILURE_RATE = env("API_THROTTLE_AUTH", default="10/min")

# --- Cross-origin requests -----------------------------------------------------------------------
# None by default: the pages call the API from their own origin, and browsers refuse other sites' reads. A browser
# app on another origin needs its origin listed; it then authenticates with a JWT in the Authorization header, never
# with the session cookie (no credentials cross origins). Meta's webhook is a server, not a browser: not concerned.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_CREDENTIALS = False
CORS_URLS_REGEX = r"^/api/(?!webhook).*$"

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "config.throttling.AnonRateThrottle",
        "config.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="60/min"),
        "user": env("API_THROTTLE_USER", default="1200/min"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "WhatsApp Number API Manager",
    "DESCRIPTION": "Team inbox for WhatsApp Business numbers: conversations, messages, contacts, replies.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema and its docs page describe every endpoint: for signed-in staff only (session or JWT).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.document_unsupported_media_type",
    ],
}

# Empty counts as unset: the tokens are then signed with SECRET_KEY, never with an empty key.
JWT_SECRET = env("JWT_SECRET", default="")
if not JWT_SECRET.strip():
    JWT_SECRET = SECRET_KEY
SIMPLE_JWT = {
    "SIGNING_KEY": JWT_SECRET,
    # Each refresh hands out a new refresh token and revokes the one sent (token_blacklist).
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # Tokens carry a hash of the password hash: a password change revokes every token issued before it.
    "CHECK_REVOKE_TOKEN": True,
    # Refreshing checks the user as every request does (active, password unchanged): config.api.
    "TOKEN_REFRESH_SERIALIZER": "config.api.RevocableTokenRefreshSerializer",
}

# --- Meta WhatsApp Cloud API -------------------------------------------------------------------
META_VERIFY_TOKEN = env("META_VERIFY_TOKEN", default="")
META_APP_SECRET = env("META_APP_SECRET", default="")
META_ACCESS_TOKEN = env("META_ACCESS_TOKEN", default="")
META_PHONE_NUMBER_ID = env("META_PHONE_NUMBER_ID", default="")
META_BUSINESS_ACCOUNT_ID = env("META_BUSINESS_ACCOUNT_ID", default="")
# The Meta app that takes template media samples (the Resumable Upload API: POST /{app-id}/uploads).
META_APP_ID = env("META_APP_ID", default="")
META_DISPLAY_PHONE_NUMBER = env("META_DISPLAY_PHONE_NUMBER", default="")
META_GRAPH_API_URL = env("META_GRAPH_API_URL", default="https://graph.facebook.com")
META_GRAPH_API_VERSION = env("META_GRAPH_API_VERSION", default="v23.0")
# Seconds to wait for Meta's answer once a request is sent (uploads and media downloads wait longer). A send
# whose answer does not come in time is not resent: it may have gone out (conversations/services/outbound.py).
META_GRAPH_API_READ_TIMEOUT = env.float("META_GRAPH_API_READ_TIMEOUT", default=20.0)
# Where media downloads (which carry the access token) may go: https hosts, each with its subdomains, or
# exact origins such as the sandbox's http://127.0.0.1:8787. Meta's media URLs are on lookaside.fbsbx.com.
META_MEDIA_HOSTS = env.list("META_MEDIA_HOSTS", default=["fbsbx.com", "fbcdn.net", "whatsapp.net"])

# --- Operations: health, metrics, logs -----------------------------------------------------------
LOG_FORMAT = LOGGING["handlers"]["console"]["formatter"]
# Bearer token for GET /metrics (Prometheus); empty = /metrics answers 404.
INTERNAL_API_TOKEN = env("INTERNAL_API_TOKEN", default="")
# /readyz fails when the oldest pending webhook event is older than this (the sweep retries after 60 s).
READYZ_MAX_PENDING_WEBHOOK_AGE_SECONDS = env.float("READYZ_MAX_PENDING_WEBHOOK_AGE_SECONDS", default=300.0)
# /readyz waits this long for a Celery worker to answer a ping.
READYZ_CELERY_PING_TIMEOUT_SECONDS = env.float("READYZ_CELERY_PING_TIMEOUT_SECONDS", default=1.0)


# --- Error tracking -------------------------------------------------------------------------------
# Sentry when SENTRY_DSN is set; off otherwise. The SDK finds Django, Celery and Redis by itself.
SENTRY_DSN = env("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT", default="production"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        send_default_pii=False,  # customers' messages and phone numbers stay out of error reports
        # Nor frames' local variables: they hold message bodies, and the Graph API token itself (an argument,
        # requests' headers, the raw request bytes http.client buffers), where no scrubbing by name reaches.
        include_local_variables=False,
    )

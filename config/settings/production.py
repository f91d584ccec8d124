"""Production: base.py plus hardening. ``DJANGO_SETTINGS_MODULE=config.settings.production``.

Behind nginx, which terminates TLS and sets ``X-Forwarded-Proto``. HTTP (pages, admin, API, webhook) runs on
gunicorn (``config.wsgi``), the WebSockets on Daphne (``config.asgi``) with ``DJANGO_DB_POOL=1``.
Start-up stops with ``ImproperlyConfigured`` naming the variable when a required one is missing, so a
half-configured deployment never serves a request; ``manage.py check --deploy`` passes without warnings.
"""

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DATABASES, INTERNAL_API_TOKEN, JWT_SECRET, LOGGING, META_APP_SECRET, STATIC_ROOT, STORAGES, env

REQUIRED = ("DJANGO_SECRET_KEY", "FRONTEND_URL", "META_APP_SECRET", "META_VERIFY_TOKEN", "DATABASE_URL")
for _name in REQUIRED:
    if not env(_name, default="").strip():
        raise ImproperlyConfigured(f"{_name} must be set in production (see .env.example and README.md, Production)")
# Redis: at REDIS_URL or through Sentinel (base.py refuses half a sentinel pair).
if not REDIS_URL.strip() and not REDIS_SENTINELS:  # noqa: F405
    raise ImproperlyConfigured(
        "REDIS_URL must be set in production, or REDIS_SENTINELS and REDIS_SENTINEL_MASTER"
        " (see .env.example and README.md, Production)"
    )

# --- Secrets ------------------------------------------------------------------------------------


def require_strong_secret(name: str, value: str, *, min_length: int, hint: str) -> None:
    """One rule for every secret: not a development value (base.py's default starts with "insecure-", Django's
    generated keys with "django-insecure-"), at least ``min_length`` characters, and not one character repeated
    (check --deploy's W009 rules for SECRET_KEY)."""
    if value.startswith(("insecure-", "django-insecure-")) or len(value) < min_length or len(set(value)) < 5:
        raise ImproperlyConfigured(f"{name} is a development key or too weak: {hint}")


_RANDOM_50 = "use 50+ random characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'"
SECRET_KEY = env("DJANGO_SECRET_KEY")
require_strong_secret("DJANGO_SECRET_KEY", SECRET_KEY, min_length=50, hint=_RANDOM_50)
# base.py: an unset or empty JWT_SECRET is DJANGO_SECRET_KEY; a JWT_SECRET of its own must be as strong.
require_strong_secret("JWT_SECRET", JWT_SECRET, min_length=50, hint=_RANDOM_50)
# Meta's app secrets are 32 hexadecimal characters (App Dashboard, App settings, Basic).
require_strong_secret(
    "META_APP_SECRET", META_APP_SECRET, min_length=32, hint="copy the app secret from Meta's App Dashboard"
)
# Empty: /metrics answers 404. Set: it is the only guard of /metrics.
if INTERNAL_API_TOKEN:
    require_strong_secret(
        "INTERNAL_API_TOKEN",
        INTERNAL_API_TOKEN,
        min_length=32,
        hint="use 32+ random characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'",
    )
DEBUG = False

# --- Hosts and origins, from FRONTEND_URL -------------------------------------------------------
FRONTEND_URL = env("FRONTEND_URL").rstrip("/")
_frontend = urlsplit(FRONTEND_URL)
if _frontend.scheme != "https" or not _frontend.hostname:
    raise ImproperlyConfigured(f"FRONTEND_URL must be the public https:// URL of the app, not {FRONTEND_URL!r}")
# The container and systemd health checks call gunicorn/Daphne directly with Host: localhost.
ALLOWED_HOSTS = list(
    dict.fromkeys([_frontend.hostname, *env.list("DJANGO_ALLOWED_HOSTS", default=[]), "localhost", "127.0.0.1"])
)
CSRF_TRUSTED_ORIGINS = list(
    dict.fromkeys([f"https://{_frontend.netloc}", *env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])])
)

# --- HTTPS only ---------------------------------------------------------------------------------
# nginx terminates TLS and always overwrites X-Forwarded-Proto (config/deploy/nginx.conf); never expose gunicorn
# or Daphne directly, or a client could claim https itself.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
# Load balancers and container health checks probe over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Static files: collected at image build, compressed and content-hashed ----------------------
WHITENOISE_USE_FINDERS = False
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "config.storage.StaticFilesStorage"}}

# --- Database connections ----------------------------------------------------------------------
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production (postgres://...)")
if env.bool("DJANGO_DB_POOL", default=False):
    # Daphne (ASGI): Django closes connections at the end of every request under ASGI, and a persistent
    # connection per Daphne thread would be opened and dropped constantly; psycopg's pool keeps a few open
    # and hands them out instead (Django 5.1+, needs psycopg[pool]). Pooling excludes CONN_MAX_AGE.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env.int("DJANGO_DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DJANGO_DB_POOL_MAX_SIZE", default=10),
        "timeout": env.float("DJANGO_DB_POOL_TIMEOUT", default=10.0),
    }
else:
    # gunicorn (sync workers) and Celery: one connection per process, kept for DJANGO_CONN_MAX_AGE
    # seconds and checked before reuse (base.py sets both from the environment).
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind PgBouncer's transaction pooling (DATABASE_PGBOUNCER=transaction) both of the above hold: CONN_MAX_AGE or
# psycopg's pool keep client connections to PgBouncer, which shares its few server connections among them, and what
# they set when they connect is the time zone, which PgBouncer tracks per client. A role assumed for the session
# (assume_role, a SET ROLE) is not: it would stay on one server connection, for whichever client gets it next.
if DATABASE_PGBOUNCER == "transaction":  # noqa: F405
    for _alias, _database in DATABASES.items():
        if _database["OPTIONS"].get("assume_role"):
            raise ImproperlyConfigured(
                f"the {_alias} database's URL sets assume_role, a SET ROLE for the session, which PgBouncer's"
                " transaction pooling (DATABASE_PGBOUNCER=transaction) hands to other clients: connect as that role"
            )

# --- Logs: one JSON object per line unless LOG_FORMAT=plain -------------------------------------
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT

# collectstatic writes here; nginx serves it (config/deploy/nginx.conf), WhiteNoise too when reached directly.
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(STATIC_ROOT))

"""``config.settings.production``, loaded by real ``manage.py``/``python`` processes as a deployment would."""

import configparser
import json
import re

import pytest
import yaml

from tests.production.conftest import HOST, ROOT, SECRET_KEY, manage, production_env, python

SETTINGS_DUMP = """
import json, django
django.setup()
from django.conf import settings as s
db = s.DATABASES["default"]
print(json.dumps({
    "DEBUG": s.DEBUG, "ALLOWED_HOSTS": s.ALLOWED_HOSTS, "CSRF_TRUSTED_ORIGINS": s.CSRF_TRUSTED_ORIGINS,
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT, "SECURE_PROXY_SSL_HEADER": list(s.SECURE_PROXY_SSL_HEADER),
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS, "SECURE_HSTS_INCLUDE_SUBDOMAINS": s.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "SECURE_HSTS_PRELOAD": s.SECURE_HSTS_PRELOAD, "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE, "STATICFILES": s.STORAGES["staticfiles"]["BACKEND"],
    "CONN_MAX_AGE": db["CONN_MAX_AGE"], "CONN_HEALTH_CHECKS": db["CONN_HEALTH_CHECKS"],
    "POOL": db.get("OPTIONS", {}).get("pool"), "LOG_FORMAT": s.LOG_FORMAT,
    "JWT_SIGNING_KEY": s.SIMPLE_JWT["SIGNING_KEY"], "TRUSTED_PROXY_COUNT": s.TRUSTED_PROXY_COUNT,
    "NUM_PROXIES": s.REST_FRAMEWORK["NUM_PROXIES"],
}))
"""


def _settings(**env_overrides) -> dict:
    result = python(SETTINGS_DUMP, env=production_env(**env_overrides))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_has_no_deployment_warning():
    result = manage("check", "--deploy", "--fail-level", "ERROR", env=production_env())
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    ids = set(re.findall(r"\(([a-z_]+\.[WE]\d+)\)", output))
    assert ids == set(), output


def test_https_hsts_cookies_hosts_and_origins():
    s = _settings(
        DJANGO_ALLOWED_HOSTS="inbox-internal.example.net", DJANGO_CSRF_TRUSTED_ORIGINS="https://other.example.com"
    )
    assert s["DEBUG"] is False
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert (s["SECURE_HSTS_SECONDS"], s["SECURE_HSTS_INCLUDE_SUBDOMAINS"], s["SECURE_HSTS_PRELOAD"]) == (
        31_536_000,
        True,
        True,
    )
    assert s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"]
    assert s["ALLOWED_HOSTS"][:2] == [HOST, "inbox-internal.example.net"]
    assert s["CSRF_TRUSTED_ORIGINS"] == [f"https://{HOST}", "https://other.example.com"]
    assert s["STATICFILES"] == "config.storage.StaticFilesStorage"
    assert s["LOG_FORMAT"] == "json"


def test_persistent_connections_for_gunicorn_and_celery_pool_for_daphne():
    s = _settings()
    assert (s["CONN_MAX_AGE"], s["CONN_HEALTH_CHECKS"], s["POOL"]) == (60, True, None)
    pooled = _settings(DJANGO_DB_POOL="1")
    assert pooled["CONN_MAX_AGE"] == 0
    assert pooled["POOL"]["max_size"] == 10


def test_daphne_settings_really_use_psycopg_pool():
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "connection.ensure_connection()\n"
        "print(type(connection.pool).__name__)"
    )
    result = python(code, env=production_env(DJANGO_DB_POOL="1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ConnectionPool"


@pytest.mark.parametrize(
    "name", ["DJANGO_SECRET_KEY", "FRONTEND_URL", "META_APP_SECRET", "META_VERIFY_TOKEN", "DATABASE_URL", "REDIS_URL"]
)
def test_missing_required_variable_stops_start_up_naming_it(name):
    result = manage("check", env=production_env(**{name: None}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{name} must be set in production" in result.stderr


def test_an_empty_required_variable_counts_as_missing():
    result = manage("check", env=production_env(META_APP_SECRET="  "))
    assert result.returncode != 0
    assert "META_APP_SECRET must be set in production" in result.stderr


@pytest.mark.parametrize(
    "secret_key",
    [
        "insecure-dev-key-change-me-0123456789abcdefghijklmnop",  # base.py's development default
        "django-insecure-" + "x1y2z3" * 10,
        "short-but-random-Q9",
    ],
)
def test_development_or_weak_secret_key_is_refused(secret_key):
    result = manage("check", env=production_env(DJANGO_SECRET_KEY=secret_key))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is a development key or too weak" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JWT_SECRET", "a"),
        ("JWT_SECRET", "insecure-dev-key-change-me-0123456789abcdefghijklmnop"),
        ("JWT_SECRET", "x" * 60),  # long, but one character
        ("META_APP_SECRET", "prod-app-secret"),
        ("INTERNAL_API_TOKEN", "metrics-token"),
    ],
)
def test_weak_secrets_are_refused_naming_them(name, value):
    result = manage("check", env=production_env(**{name: value}))
    assert result.returncode != 0
    assert f"{name} is a development key or too weak" in result.stderr


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_jwt_secret_counts_as_unset_and_tokens_are_signed_with_the_secret_key(value):
    assert _settings(JWT_SECRET=value)["JWT_SIGNING_KEY"] == SECRET_KEY


def test_strong_secrets_and_an_empty_metrics_token_start():
    jwt_secret = "J7wq-" + SECRET_KEY[::-1]
    s = _settings(JWT_SECRET=jwt_secret, META_APP_SECRET="9f86d081884c7d659a2feaa0c55ad015", INTERNAL_API_TOKEN="")
    assert s["JWT_SIGNING_KEY"] == jwt_secret


def test_one_proxy_count_for_every_client_address():
    s = _settings()
    assert (s["TRUSTED_PROXY_COUNT"], s["NUM_PROXIES"]) == (0, 0)  # nothing in front unless the deployment says so
    s = _settings(TRUSTED_PROXY_COUNT="1")
    assert (s["TRUSTED_PROXY_COUNT"], s["NUM_PROXIES"]) == (1, 1)


def test_the_deployments_behind_nginx_count_it_as_one_proxy():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("web", "ws"):
        assert compose["services"][name]["environment"]["TRUSTED_PROXY_COUNT"] == "${TRUSTED_PROXY_COUNT:-1}"
    for unit in ("inbox-web", "inbox-ws"):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str
        parser.read(ROOT / "config" / "deploy" / "systemd" / f"{unit}.service")
        assert "TRUSTED_PROXY_COUNT=1" in parser["Service"]["Environment"].split()
    # nginx appends the address it saw, so the last X-Forwarded-For entry is the one to trust; it never passes the
    # client's header on unchanged nor lets a location go without it.
    nginx = (ROOT / "config" / "deploy" / "nginx.conf").read_text()
    proxied = nginx.count("proxy_pass ")
    assert nginx.count("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;") == proxied == 2
    assert "$http_x_forwarded_for" not in nginx


def test_base_default_secret_key_never_reaches_production():
    # The variable unset: base.py would fall back to its development key; production must refuse to start.
    result = python("import django; django.setup()", env=production_env(DJANGO_SECRET_KEY=None))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


def test_frontend_url_must_be_https():
    result = manage("check", env=production_env(FRONTEND_URL="http://inbox.example.com"))
    assert result.returncode != 0
    assert "FRONTEND_URL must be the public https:// URL" in result.stderr


def test_sqlite_is_refused():
    result = manage("check", env=production_env(DATABASE_URL="sqlite:////tmp/x.sqlite3"))
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr


def test_collectstatic_hashes_compresses_and_rewrites_module_imports(tmp_path):
    result = manage("collectstatic", "--noinput", env=production_env(DJANGO_STATIC_ROOT=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    app_js = manifest["js/app.js"]
    assert re.fullmatch(r"js/app\.[0-9a-f]{12}\.js", app_js)
    assert (tmp_path / f"{app_js}.gz").exists()
    assert (tmp_path / manifest["css/inbox.css"]).exists()
    # The entry module imports the hashed modules, so a deploy cannot mix new and cached old code.
    assert f'from "./{manifest["js/api.js"].removeprefix("js/")}"' in (tmp_path / app_js).read_text()


def test_a_cdn_static_url_serves_the_pages_hashed_files_from_it_and_the_policy_allows_its_origin(tmp_path):
    cdn = "https://cdn.example.net/inbox-static/"
    env = production_env(DJANGO_STATIC_ROOT=str(tmp_path), STATIC_URL=cdn)
    assert manage("collectstatic", "--noinput", env=env).returncode == 0
    page = python(
        "import django, json; django.setup()\n"
        "from django.test import Client\n"
        f"response = Client().get('/login/', HTTP_HOST='{HOST}', secure=True)\n"
        "print(json.dumps([response.status_code, response['Content-Security-Policy'], response.content.decode()]))",
        env=env,
    )
    assert page.returncode == 0, page.stderr
    status, policy, html = json.loads(page.stdout.strip().splitlines()[-1])
    assert status == 200
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    assert f'href="{cdn}{manifest["css/inbox.css"]}"' in html  # hashed names: the CDN may cache them for ever
    assert (
        "script-src 'self' https://cdn.example.net;" in policy and "style-src 'self' https://cdn.example.net;" in policy
    )

"""Redis's settings (config/settings/base.py, Redis section), loaded by real processes from the environment as a
deployment loads them: REDIS_URL as it always was, or REDIS_SENTINELS with REDIS_SENTINEL_MASTER for the broker,
the channel layer, the cache and the app's own clients alike; a bad value stops start-up naming the setting."""

import json
import os
import socket
from collections.abc import Iterator

import pytest

from tests.production.conftest import manage, production_env, python
from tests.redis_sentinel import RedisGroup, running_group

DUMP = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "EMBEDDED": s.EMBEDDED, "EAGER": s.CELERY_TASK_ALWAYS_EAGER, "BROKER": s.CELERY_BROKER_URL,
    "TRANSPORT": {k: v for k, v in s.CELERY_BROKER_TRANSPORT_OPTIONS.items() if k != "sentinel_kwargs"},
    "CACHE": s.CACHES["default"], "LAYER": s.CHANNEL_LAYERS["default"],
}, default=repr))
"""


def base_env(**overrides: str) -> dict[str, str]:
    """A process on config.settings.base with only these of the Redis variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "META_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_READ_DOT_ENV_FILE="0",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
        **overrides,
    )
    return env


def loaded(env: dict[str, str]) -> dict:
    result = python(DUMP, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_plain_redis_url_configures_everything_as_before_with_timeouts_on_the_cache():
    s = loaded(base_env(REDIS_URL="redis://127.0.0.1:6379/3"))
    assert (s["EMBEDDED"], s["EAGER"], s["BROKER"]) == (False, False, "redis://127.0.0.1:6379/3")
    assert s["TRANSPORT"] == {"visibility_timeout": 3600, "socket_connect_timeout": 2, "socket_timeout": 5}
    assert s["LAYER"]["CONFIG"] == {"hosts": ["redis://127.0.0.1:6379/3"], "capacity": 1500, "expiry": 30}
    assert s["CACHE"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/3",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }


def test_without_redis_it_runs_embedded_and_sentinels_count_as_redis():
    assert loaded(base_env())["EMBEDDED"] is True
    s = loaded(base_env(REDIS_SENTINELS="10.0.0.1:26379, [fd00::2]:26380", REDIS_SENTINEL_MASTER="inbox"))
    assert (s["EMBEDDED"], s["EAGER"]) == (False, False)
    assert s["BROKER"] == "sentinel://10.0.0.1:26379/0;sentinel://[fd00::2]:26380/0"
    assert s["TRANSPORT"] == {
        "visibility_timeout": 3600,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "master_name": "inbox",
    }
    [host] = s["LAYER"]["CONFIG"]["hosts"]
    assert (host["sentinels"], host["master_name"]) == ([["10.0.0.1", 26379], ["fd00::2", 26380]], "inbox")
    assert (s["LAYER"]["CONFIG"]["capacity"], s["LAYER"]["CONFIG"]["expiry"]) == (1500, 30)
    assert s["CACHE"]["OPTIONS"]["pool_class"] == "ops.redis_client.SentinelCachePool"
    assert s["CACHE"]["OPTIONS"]["socket_timeout"] == 2


@pytest.mark.parametrize(
    "value", ["redis1", "redis1:", "redis1:port", "redis1:26379,redis2", "::1:26379", "h:0", "h:70000"]
)
def test_a_malformed_sentinel_list_stops_start_up_naming_it(value):
    result = python("import django; django.setup()", env=base_env(REDIS_SENTINELS=value, REDIS_SENTINEL_MASTER="m"))
    assert result.returncode != 0
    assert "ImproperlyConfigured: REDIS_SENTINELS must be a comma-separated list of host:port" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_SENTINELS": "h1:26379"}, "REDIS_SENTINELS and REDIS_SENTINEL_MASTER are set together or not at all"),
        (
            {"REDIS_SENTINEL_MASTER": "inbox"},
            "REDIS_SENTINELS and REDIS_SENTINEL_MASTER are set together or not at all",
        ),
        (
            {"REDIS_SENTINELS": "h1:26379", "REDIS_SENTINEL_MASTER": "inbox", "REDIS_URL": "redis://h2:6379/0"},
            "set REDIS_URL or REDIS_SENTINELS (with REDIS_SENTINEL_MASTER), not both",
        ),
        ({"REDIS_URL": "redis://h2:6379/0", "REDIS_PASSWORD": "pw"}, "REDIS_PASSWORD and REDIS_SENTINEL_PASSWORD go"),
    ],
)
@pytest.mark.parametrize("module", ["config.settings.base", "config.settings.test", "config.settings.production"])
def test_half_a_sentinel_configuration_stops_every_settings_module(module, env, message):
    process_env = production_env(**{"REDIS_URL": None, "DJANGO_SETTINGS_MODULE": module, **env})
    result = python("import django; django.setup()", env=process_env)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr


def test_production_takes_the_sentinel_pair_for_redis_url_and_refuses_neither():
    sentinels = {"REDIS_SENTINELS": "10.0.0.1:26379,10.0.0.2:26379", "REDIS_SENTINEL_MASTER": "inbox"}
    assert manage("check", env=production_env(REDIS_URL=None, **sentinels)).returncode == 0
    refused = manage("check", env=production_env(REDIS_URL=None))
    assert refused.returncode != 0
    assert "REDIS_URL must be set in production, or REDIS_SENTINELS and REDIS_SENTINEL_MASTER" in refused.stderr


def test_the_cache_gives_up_on_a_redis_that_never_answers():
    """A Redis that accepts connections and says nothing (a hung server, a half-open link) fails a cache read in
    the socket timeout; without one the request waited forever."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel completes connections; nobody answers
        code = (
            "import time, django; django.setup()\n"
            "from django.core.cache import cache\n"
            "started = time.monotonic()\n"
            "try:\n    cache.get('anything')\n"
            "except Exception as error:\n    print(type(error).__name__, round(time.monotonic() - started, 1))\n"
        )
        result = python(code, env=base_env(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0"), timeout=30)
    assert result.returncode == 0, result.stderr
    kind, seconds = result.stdout.split()
    assert kind == "TimeoutError" and float(seconds) < 10


@pytest.fixture(scope="module")
def protected_group() -> Iterator[RedisGroup]:
    """A master with a password, its sentinel with another."""
    with running_group(replicas=0, sentinels=1, password="master-secret", sentinel_password="sentinel-secret") as group:
        yield group


def test_the_broker_the_layer_the_cache_and_the_app_reach_the_master_through_sentinels_with_passwords(
    protected_group,
):
    code = """
import json, django
django.setup()
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from config.celery import app
from ops.redis_client import redis_client

cache.set("settings-test", "cached", 30)
layer = get_channel_layer()

async def round_trip():
    name = await layer.new_channel()
    await layer.send(name, {"type": "hello"})
    return (await layer.receive(name))["type"]

with app.connection_for_write() as connection:
    queue = connection.SimpleQueue("settings-test")
    queue.put({"n": 1})
    broker = queue.get(timeout=5).payload
    queue.close()
print(json.dumps({
    "cache": cache.get("settings-test"),
    "layer": async_to_sync(round_trip)(),
    "broker": broker,
    "client": redis_client(timeout=1).info("server")["tcp_port"],
}))
"""
    result = python(code, env=base_env(**protected_group.settings))
    assert result.returncode == 0, result.stderr
    master = protected_group.master_port()
    assert json.loads(result.stdout) == {"cache": "cached", "layer": "hello", "broker": {"n": 1}, "client": master}
    assert protected_group.server(master).exists(":1:settings-test")  # the cache's key, on the master


def test_a_wrong_sentinel_password_is_named(protected_group):
    env = base_env(**{**protected_group.settings, "REDIS_SENTINEL_PASSWORD": "wrong"})
    code = (
        "import django; django.setup()\n"
        "from ops.redis_client import redis_client\n"
        "try:\n    redis_client(timeout=1).ping()\n"
        "except Exception as error:\n    print(type(error).__name__, error)\n"
    )
    result = python(code, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "NoRedisMaster the sentinels of REDIS_SENTINELS refused the password: check REDIS_SENTINEL_PASSWORD"
    ), result.stdout

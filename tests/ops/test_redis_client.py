"""ops/redis_client.py against a real Redis under Sentinel (a master, a replica, one sentinel: tests/redis_sentinel.py):
the client follows a failover by itself, and when the sentinels give no master it says why and which setting to
check, in the log and in /readyz."""

from collections.abc import Iterator

import pytest

from ops.redis_client import NoRedisMaster, redis_client
from tests.e2e.conftest import free_port
from tests.redis_sentinel import RedisGroup, running_group, wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def redis_group() -> Iterator[RedisGroup]:
    with running_group(replicas=1, sentinels=1) as group:
        yield group


@pytest.fixture
def sentinel_settings(settings, redis_group):
    settings.REDIS_URL = ""
    settings.REDIS_SENTINELS = [("127.0.0.1", port) for port in redis_group.sentinels]
    settings.REDIS_SENTINEL_MASTER = redis_group.master_name
    return settings


def test_a_master_name_no_sentinel_knows_is_named_in_the_log_and_in_readyz(client, sentinel_settings, caplog):
    sentinel_settings.REDIS_SENTINEL_MASTER = "inbox-misspelt"
    with pytest.raises(NoRedisMaster) as raised:
        redis_client(timeout=1).ping()
    assert "knows a master named 'inbox-misspelt': check REDIS_SENTINEL_MASTER" in str(raised.value)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["celery_worker", "redis"]
    assert body["checks"]["redis"]["error"] == "no sentinel knows a master of the name REDIS_SENTINEL_MASTER gives"
    assert "check REDIS_SENTINEL_MASTER" in caplog.text and "inbox-misspelt" in caplog.text


def test_sentinels_that_do_not_answer_are_named_in_readyz(client, sentinel_settings):
    sentinel_settings.REDIS_SENTINELS = [("127.0.0.1", free_port()), ("127.0.0.1", free_port())]
    body = client.get("/readyz").json()
    assert body["checks"]["redis"]["error"] == "no sentinel of REDIS_SENTINELS answered"


def test_readyz_and_the_queue_depth_go_to_the_master(client, sentinel_settings, redis_group):
    master = redis_group.server(redis_group.master_port())
    master.delete("celery")
    master.rpush("celery", "a task")
    try:
        sentinel_settings.READYZ_CELERY_PING_TIMEOUT_SECONDS = 0.3
        body = client.get("/readyz").json()
        assert body["checks"]["redis"]["ok"] is True, body  # no worker here: only the broker's ping fails
        from ops.stats import celery_queue_depth

        assert celery_queue_depth() == (1, "")
    finally:
        master.delete("celery")


def test_the_client_follows_the_master_through_a_failover(sentinel_settings, redis_group):
    """Last in this module: it leaves the group with a master and no replica."""
    client = redis_client(timeout=1)
    client.set("failover-test", "written before")
    wait_until(
        lambda: client.wait(1, 500) == 1, timeout=10, what="the replica to have it"
    )  # WAIT under the 1 s timeout
    old_port = redis_group.kill_master()
    errors = []

    def writes_again() -> bool:
        try:
            return client.set("failover-test:after", "written after")
        except Exception as error:
            errors.append(error)
            raise

    wait_until(writes_again, timeout=30, what="the client to write to the new master")
    new_port = redis_group.master_port()
    assert new_port != old_port
    assert client.info("server")["tcp_port"] == new_port
    assert client.get("failover-test") == b"written before"
    # Between the master's death and the promotion the client said what was going on.
    down = [error for error in errors if isinstance(error, NoRedisMaster)]
    assert down and down[0].summary.startswith("the sentinels see the Redis master down"), errors

"""A highly available Redis as real processes for the tests: a master, its replicas (``--replicaof``) and
sentinels (``redis-sentinel``, each with its own config file), all on free ports in a temporary directory,
stopped by PID. The sentinels notice a dead master within a second and fail over within a few."""

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.e2e.conftest import free_port, stop_process

# The sentinels call a master down after this long without an answer; a failover that stalls is retried after
# the timeout. Short, so a drill fails over within seconds (production keeps Redis's defaults or its own).
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


def wait_until(condition, *, timeout: float, what: str):
    """``condition()``'s first true result; Redis errors (a master gone, a failover under way) count as not yet."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            if result := condition():
                return result
        except (redis.RedisError, OSError) as error:
            last_error = error
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})")


@dataclass
class RedisGroup:
    workdir: Path
    master_name: str = "inbox"
    password: str = ""
    sentinel_password: str = ""
    servers: dict[int, subprocess.Popen] = field(default_factory=dict)
    sentinels: dict[int, subprocess.Popen] = field(default_factory=dict)

    def start(self, *, replicas: int = 1, sentinels: int = 3) -> "RedisGroup":
        master = self._server()
        for _ in range(replicas):
            self._server("--replicaof", "127.0.0.1", str(master))
        quorum = sentinels // 2 + 1
        for _ in range(sentinels):
            self._sentinel(master, quorum)
        wait_until(
            lambda: self._settled(replicas), timeout=30, what="the sentinels to know each other and the replicas"
        )
        return self

    def stop(self) -> None:
        for process in [*self.sentinels.values(), *self.servers.values()]:
            stop_process(process)

    @property
    def settings(self) -> dict:
        """What the app's environment says about this group (config/settings/base.py)."""
        values = {
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinels),
            "REDIS_SENTINEL_MASTER": self.master_name,
        }
        if self.password:
            values["REDIS_PASSWORD"] = self.password
        if self.sentinel_password:
            values["REDIS_SENTINEL_PASSWORD"] = self.sentinel_password
        return values

    def sentinel(self, port: int | None = None) -> redis.Redis:
        port = port or next(port for port, process in self.sentinels.items() if process.poll() is None)
        return redis.Redis(port=port, password=self.sentinel_password or None, socket_timeout=2, decode_responses=True)

    def master_port(self) -> int:
        """The master's port, as the sentinels now see it."""
        return int(self.sentinel().sentinel_get_master_addr_by_name(self.master_name)[1])

    @property
    def url(self) -> str:
        """The current master's URL (for what talks to Redis directly, e.g. tests/e2e's quiet_stack_after_test)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.master_port()}/0"

    def server(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.password or None, socket_timeout=2)

    def kill_master(self) -> int:
        """SIGKILL the master (no goodbye to its clients or replicas); returns its port."""
        port = self.master_port()
        process = self.servers.pop(port)
        process.kill()
        process.wait(timeout=10)
        return port

    def wait_for_failover(self, *, old_port: int, timeout: float = 30) -> int:
        """Until every sentinel names a new master that answers as one; returns its port."""

        def promoted() -> int | None:
            ports = {
                int(self.sentinel(port).sentinel_get_master_addr_by_name(self.master_name)[1])
                for port in self.sentinels
            }
            if len(ports) != 1 or old_port in ports:
                return None
            [port] = ports
            return port if self.server(port).info("replication")["role"] == "master" else None

        return wait_until(promoted, timeout=timeout, what="the sentinels to promote a replica")

    def _server(self, *args: str) -> int:
        port = free_port()
        auth = ["--requirepass", self.password, "--masterauth", self.password] if self.password else []
        self.servers[port] = self._spawn(
            shutil.which("redis-server") or "redis-server",
            *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", str(self.workdir), "--dbfilename", f"dump-{port}.rdb", *auth, *args),
        )
        wait_until(lambda: self.server(port).ping(), timeout=10, what=f"redis-server on {port}")
        return port

    def _sentinel(self, master_port: int, quorum: int) -> int:
        port = free_port()
        name = self.master_name
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {self.workdir}",
            f"sentinel monitor {name} 127.0.0.1 {master_port} {quorum}",
            f"sentinel down-after-milliseconds {name} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {name} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {name} 1",
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {name} {self.password}")
        if self.sentinel_password:
            # The sentinels talk to each other with it too.
            lines += [f"requirepass {self.sentinel_password}", f"sentinel sentinel-pass {self.sentinel_password}"]
        config = self.workdir / f"sentinel-{port}.conf"  # sentinels rewrite their own file: one each
        config.write_text("\n".join(lines) + "\n")
        self.sentinels[port] = self._spawn(shutil.which("redis-sentinel") or "redis-sentinel", str(config))
        wait_until(lambda: self.sentinel(port).ping(), timeout=10, what=f"redis-sentinel on {port}")
        return port

    def _settled(self, replicas: int) -> bool:
        """Every sentinel knows the others (a failover needs a quorum of them) and every replica."""
        for port in self.sentinels:
            sentinel = self.sentinel(port)
            if sentinel.sentinel_master(self.master_name)["num-other-sentinels"] < len(self.sentinels) - 1:
                return False
            known = sentinel.sentinel_slaves(self.master_name)
            if sum(not (r["is_sdown"] or r["is_odown"]) for r in known) < replicas:
                return False
        return True

    def _spawn(self, *command: str) -> subprocess.Popen:
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - the child owns it
        with contextlib.closing(log):
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@contextlib.contextmanager
def running_group(*, replicas: int, sentinels: int, **options) -> Iterator[RedisGroup]:
    """A group started in a directory of its own, stopped and removed afterwards."""
    group = RedisGroup(workdir=Path(tempfile.mkdtemp(prefix="redis-sentinel-")), **options)
    try:
        yield group.start(replicas=replicas, sentinels=sentinels)
    finally:
        group.stop()
        shutil.rmtree(group.workdir, ignore_errors=True)

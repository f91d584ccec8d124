"""Processes the bench starts and stops itself, by PID: redis-server, gunicorn, Daphne, a Celery worker.

Each runs in its own session (process group) so stopping it also stops its children (gunicorn's and
Celery's workers); nothing the bench did not start is ever signalled.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, *, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except OSError as exc:
            last = exc
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})")


def http_status(
    port: int, path: str, *, method: str = "GET", body: bytes = b"", headers: dict | None = None, timeout: float = 5
) -> int:
    """One plain HTTP/1.1 request; the status code (stdlib only, no keep-alive)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers={"X-Forwarded-Proto": "https", **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB (from /proc)."""
    total = 0
    for p in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def descendants(pid: int) -> list[int]:
    children = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            children.extend(int(c) for c in text)
    except OSError:
        return []
    return children + [d for c in children for d in descendants(c)]


def _own_and_reaped_cpu(pid: int) -> float:
    """User + system CPU of a process, plus that of the children it has reaped (cutime/cstime): a gunicorn
    worker replaced or a PostgreSQL backend that exited still counts, through its parent."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its descendants, those that exited included."""
    total = 0.0
    for p in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            total += _own_and_reaped_cpu(p)
    return total


def postgres_cpu_seconds() -> float:
    """CPU time of the PostgreSQL server: every live postgres process, plus the backends that exited
    (reaped by the postmaster, so counted in its cutime/cstime)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            if text.split("(", 1)[1].rsplit(")", 1)[0].startswith("postgres"):
                total += _own_and_reaped_cpu(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass
class Processes:
    logs: Path
    started: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], *, env: dict[str, str]) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started.append((name, process))
        return process

    def stop(self, process: subprocess.Popen, *, timeout: float = 15.0) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        self.started = [(n, p) for n, p in self.started if p is not process]

    def stop_all(self) -> None:
        for _name, process in reversed(list(self.started)):
            with contextlib.suppress(ProcessLookupError):
                self.stop(process)

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds so far of each process the bench started (with its children), PostgreSQL's, and this
        process's with its reaped children (the load generator: this process, or wrk once it has exited)."""
        snapshot = {name: cpu_seconds(process.pid) for name, process in self.started}
        snapshot["postgres"] = postgres_cpu_seconds()
        own = os.times()
        snapshot["load generator"] = own.user + own.system + own.children_user + own.children_system
        return snapshot

    def check_alive(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}; last log lines:\n{tail}")


def start_redis(procs: Processes, port: int) -> subprocess.Popen:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on the PATH (apt-get install -y redis-server)")
    process = procs.start(
        "redis",
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(procs.logs),
            "--maxclients",
            "20000",
        ],
        env=dict(os.environ),
    )

    def answers():
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    wait_for(answers, timeout=10, what="redis-server")
    return process


def web_argv(port: int, workers: int) -> tuple[list[str], str]:
    """The project's production HTTP entry ``config/bin/web`` (gunicorn, config.wsgi) when it exists, else gunicorn
    directly with the same essentials. Returns the argv and a label for the table."""
    if (ROOT / "config" / "bin" / "web").exists() and os.environ.get("BENCH_NO_BIN_WEB") != "1":
        return [str(ROOT / "config" / "bin" / "web")], f"config/bin/web (gunicorn, {workers} sync workers)"
    return [
        str(BIN / "gunicorn"),
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--timeout",
        "30",
    ], f"gunicorn {workers} sync workers"


def start_web(
    procs: Processes, *, port: int, workers: int, env: dict[str, str], name: str = "gunicorn"
) -> tuple[subprocess.Popen, str]:
    # config/bin/web reads WEB_BIND, WEB_WORKERS and PYTHON; the direct gunicorn command gets them as flags.
    env = dict(env, WEB_BIND=f"127.0.0.1:{port}", WEB_WORKERS=str(workers), PYTHON=sys.executable)
    argv, label = web_argv(port, workers)
    process = procs.start(name, argv, env=env)
    wait_for(
        lambda: (procs.check_alive() or True) and http_status(port, "/api/webhook") == 403, timeout=40, what="gunicorn"
    )
    return process, label


def start_daphne(procs: Processes, *, port: int, env: dict[str, str]) -> subprocess.Popen:
    env = dict(env, DJANGO_DB_POOL="1")
    process = procs.start(
        "daphne", [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"], env=env
    )
    wait_for(
        lambda: (procs.check_alive() or True) and http_status(port, "/api/webhook") == 403, timeout=40, what="daphne"
    )
    return process


def start_worker(procs: Processes, *, concurrency: int, env: dict[str, str], name: str = "worker") -> subprocess.Popen:
    process = procs.start(
        name,
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--hostname",
            f"{name}@%h",  # two on one machine are two nodes
            "--loglevel",
            "warning",
            "--concurrency",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env=env,
    )
    # --loglevel warning hides "ready."; ask the worker itself instead.
    wait_for(
        lambda: (procs.check_alive() or True) and _worker_pings(env), timeout=60, what="celery worker", interval=0.5
    )
    return process


def _worker_pings(env: dict[str, str]) -> bool:
    from celery import Celery

    app = Celery(broker=env["REDIS_URL"])
    try:
        return bool(app.control.ping(timeout=0.5))
    finally:
        app.close()


# --- the bench database ---------------------------------------------------------------------------


def recreate_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

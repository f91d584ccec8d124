"""The read replica (database/replica.py) on real PostgreSQL streaming replication.

A primary of the tests' own (initdb on a free port, in a temporary directory) and its replica (``pg_basebackup -R``),
both started with ``pg_ctl`` and stopped by PID; Daphne serves the app on them with ``DATABASE_REPLICA_URL``. Both
servers log every statement with the client's ``application_name`` (``PGAPPNAME`` of each process): that log is how
the tests tell which database answered a request, as an operator reading it would.
"""

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings

from sandbox.simulation import envelope, message_change, signed_request
from tests.e2e.conftest import free_port, stack_env, start_daphne, stop_process, wait_for
from tests.production.conftest import manage as run_manage
from tests.production.conftest import production_env, python

NUMBER = {"phone_number_id": "427715309981234", "display_phone_number": "15557730142"}
WABA = "318273645502211"
DATABASE = "inbox"
WEB = "inbox-web"  # the server's application_name in both statement logs
MAX_LAG = 2.0
CHECK_EVERY = 3.0
PASSWORD = "replica-test-password"


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's server programs (Debian's /usr/lib/postgresql/<version>/bin)."""
    found = sorted(
        (path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")),
        key=lambda path: int(path.parent.name),
    )
    assert found, "no PostgreSQL server programs in /usr/lib/postgresql: apt-get install postgresql"
    return found[-1]


def as_owner() -> list[str]:
    """PostgreSQL refuses to run as root: as root, the clusters belong to the postgres user."""
    if os.geteuid() != 0:
        return []
    owner = pwd.getpwnam("postgres")
    return ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--init-groups"]


@dataclass
class Cluster:
    bin: Path
    data: Path
    port: int

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.data.name}.log"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def run(self, program: str, *args: str) -> None:
        subprocess.run([*as_owner(), str(self.bin / program), *args], check=True, capture_output=True, timeout=120)

    def configure(self, **options: str) -> None:
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = '{value}'\n" for name, value in options.items())

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    @property
    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        """Fast shutdown by the postmaster's PID (SIGINT), waited for."""
        if not (self.data / "postmaster.pid").exists():
            return
        pid = self.pid
        os.kill(pid, signal.SIGINT)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=60, what=f"PostgreSQL {pid} to stop")

    def connect(self, dbname: str = DATABASE) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True, application_name="test"
        )

    def log_size(self) -> int:
        return self.log.stat().st_size

    def statements(self, since: int, *, by: str = WEB) -> list[str]:
        """What ``by`` sent this server since the log was ``since`` bytes long."""
        with self.log.open("rb") as log:
            log.seek(since)
            lines = log.read().decode(errors="replace").splitlines()
        return [line for line in lines if line.startswith(f"{by}|") and "statement:" in line]


@dataclass
class Replication:
    primary: Cluster
    replica: Cluster

    def caught_up(self) -> bool:
        with self.primary.connect() as primary, self.replica.connect() as replica:
            # The insert position, not the write one: a drain commits with synchronous_commit off, so its WAL may
            # still be in the primary's buffers, neither written nor sent.
            (sent,) = primary.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
            (replayed,) = replica.execute("SELECT pg_last_wal_replay_lsn()").fetchone()
            (behind,) = primary.execute("SELECT %s::pg_lsn > %s::pg_lsn", [sent, replayed]).fetchone()
            return not behind


@pytest.fixture(scope="module")
def replication() -> Iterator[Replication]:
    pg = postgres_bin()
    workdir = Path(tempfile.mkdtemp(prefix="replica-test-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    primary = Cluster(pg, workdir / "primary", free_port())
    replica = Cluster(pg, workdir / "replica", free_port())
    try:
        primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        # initdb's pg_hba.conf trusts replication connections from 127.0.0.1; wal_level is replica by default.
        primary.configure(
            port=str(primary.port),
            listen_addresses="127.0.0.1",
            unix_socket_directories=str(workdir),
            fsync="off",  # a throw-away cluster
            log_statement="all",
            log_line_prefix="%a|",
        )
        primary.start()
        with primary.connect("postgres") as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        replica.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-D", str(replica.data),
            "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        replica.configure(port=str(replica.port))
        replica.start()
        with replica.connect() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        yield Replication(primary, replica)
    finally:
        replica.stop()
        primary.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def manage(replication: Replication, *args: str, app: str, **env: str) -> subprocess.CompletedProcess:
    environment = stack_env(
        database_url=replication.primary.url,
        redis_url="",
        DATABASE_REPLICA_URL=replication.replica.url,
        DATABASE_REPLICA_MAX_LAG_SECONDS=str(MAX_LAG),
        PGAPPNAME=app,
        **env,
    )
    return run_manage(*args, env=environment, timeout=180)


@dataclass
class Server:
    base_url: str
    log: Path

    def log_size(self) -> int:
        return self.log.stat().st_size

    def logged(self, since: int) -> str:
        with self.log.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")


@pytest.fixture(scope="module")
def server(replication) -> Iterator[Server]:
    for args in (
        ("migrate", "--noinput"),
        ("createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com"),
        ("register_number", "--no-verify", "--phone-number-id", NUMBER["phone_number_id"],
         "--display-phone-number", NUMBER["display_phone_number"], "--waba-id", WABA, "--name", "Support"),
    ):  # fmt: skip
        done = manage(replication, *args, app="setup", DJANGO_SUPERUSER_PASSWORD=PASSWORD)
        assert done.returncode == 0, done.stderr
    logs = Path(tempfile.mkdtemp(prefix="replica-test-logs-"))
    env = stack_env(
        database_url=replication.primary.url,
        redis_url="",  # embedded Celery: a webhook is applied in the request that stores it
        DATABASE_REPLICA_URL=replication.replica.url,
        DATABASE_REPLICA_MAX_LAG_SECONDS=str(MAX_LAG),
        DATABASE_REPLICA_CHECK_SECONDS=str(CHECK_EVERY),
        WEBHOOK_DRAIN_LINGER_SECONDS="0",
        PGAPPNAME=WEB,
    )
    daphne, base_url = start_daphne(env=env, logs=logs)
    try:
        yield Server(base_url, logs / "daphne.log")
    finally:
        stop_process(daphne)
        shutil.rmtree(logs, ignore_errors=True)


@pytest.fixture(scope="module")
def api(server) -> requests.Session:
    tokens = requests.post(
        f"{server.base_url}/api/auth/token/", json={"username": "admin", "password": PASSWORD}, timeout=30
    ).json()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {tokens['access']}"
    return session


def customer_writes(server: Server, primary: Cluster, *, wa_id: str, name: str) -> None:
    """A customer's message, delivered and applied: the contact is on the primary when this returns (a replica
    caught up before the drain committed would not have it yet)."""
    change = message_change(**NUMBER, wa_id=wa_id, name=name, content={"text": {"body": f"Hello, {name} here"}})
    body, headers = signed_request(envelope(waba_id=WABA, changes=[change]), app_secret=settings.META_APP_SECRET)
    assert requests.post(f"{server.base_url}/api/webhook", data=body, headers=headers, timeout=30).status_code == 200

    def stored() -> bool:
        with primary.connect() as conn:
            return conn.execute("SELECT 1 FROM contacts_contact WHERE wa_id = %s", [wa_id]).fetchone() is not None

    wait_for(stored, timeout=30, what=f"{name}'s message to be applied")


def search(api: requests.Session, server: Server, text: str) -> list[str]:
    """The API's contact search: the names found."""
    response = api.get(f"{server.base_url}/api/contacts/", params={"q": text}, timeout=30)
    assert response.status_code == 200, response.text
    return [contact["profile_name"] for contact in response.json()["results"]]


def readyz(server: Server) -> dict:
    response = requests.get(f"{server.base_url}/readyz", timeout=30)
    assert response.status_code == 200, response.text  # the replica's state never fails readiness
    body = response.json()
    assert body["failing"] == [], body
    return body["checks"]["database_replica"]


def customers_written(api: requests.Session, server: Server) -> int:
    """Customers who wrote, one message each, as the live list (the primary) has them."""
    return len(api.get(f"{server.base_url}/api/conversations/", timeout=30).json()["results"])


def inbox_stats(replication: Replication) -> tuple[dict, str]:
    done = manage(replication, "inbox_stats", "--json", app="inbox-stats")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


@pytest.mark.e2e
def test_searches_and_reports_read_the_replica_and_the_live_inbox_the_primary(replication, server, api):
    customer_writes(server, replication.primary, wa_id="447700900461", name="Amara Okafor")
    wait_for(replication.caught_up, timeout=30, what="the replica to replay the new contact")
    primary_from, replica_from = replication.primary.log_size(), replication.replica.log_size()

    assert search(api, server, "Okaf") == ["Amara Okafor"]

    # The search's own statement, its pattern in it, went to the replica; the primary never saw it.
    assert any("%Okaf%" in line for line in replication.replica.statements(replica_from))
    assert not any("%Okaf%" in line for line in replication.primary.statements(primary_from))

    primary_from, replica_from = replication.primary.log_size(), replication.replica.log_size()
    listed = api.get(f"{server.base_url}/api/conversations/", timeout=30).json()["results"]
    assert [c["contact"]["name"] for c in listed] == ["Amara Okafor"]
    thread = api.get(f"{server.base_url}/api/conversations/{listed[0]['id']}/messages/", timeout=30).json()
    assert [m["text"] for m in thread["results"]] == ["Hello, Amara Okafor here"]
    page = signed_in(server).get(f"{server.base_url}/inbox/{listed[0]['id']}/", timeout=30)
    assert page.status_code == 200 and "Amara Okafor" in page.text

    # The live inbox, list, thread and page: every statement on the primary, none on the replica.
    assert any("conversations_conversation" in line for line in replication.primary.statements(primary_from))
    assert replication.replica.statements(replica_from) == []

    replica_from, primary_from = replication.replica.log_size(), replication.primary.log_size()
    stats, _ = inbox_stats(replication)

    assert stats["database"] == "replica"
    assert stats["numbers"][0]["messages_in_24h"] == customers_written(api, server)
    assert any(
        "webhooks_webhookevent" in line for line in replication.replica.statements(replica_from, by="inbox-stats")
    )
    assert replication.primary.statements(primary_from, by="inbox-stats") == []
    state = readyz(server)
    assert (state["ok"], state["state"], state["reads"]) == (True, "ok", "replica") and state["lag_seconds"] <= MAX_LAG


def signed_in(server: Server) -> requests.Session:
    """A browser's session: the sign-in form, as staff use it."""
    session = requests.Session()
    session.get(f"{server.base_url}/login/", timeout=30)
    response = session.post(
        f"{server.base_url}/login/",
        data={"username": "admin", "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{server.base_url}/login/"},
        timeout=30,
    )
    assert response.status_code == 200 and response.url.endswith("/inbox/"), response.text[:500]
    return session


@pytest.mark.e2e
def test_a_replica_behind_the_bound_is_passed_over_for_the_primary_with_a_warning(replication, server, api):
    with replication.replica.connect() as replica:
        replica.execute("SELECT pg_wal_replay_pause()")
    try:
        log_from, primary_from = server.log_size(), replication.primary.log_size()
        customer_writes(server, replication.primary, wa_id="27820001234", name="Bongani Dlamini")

        # Found once the replica is further behind than the bound and the server has looked again: from the
        # primary, which has the new contact the paused replica has not replayed.
        wait_for(
            lambda: search(api, server, "Dlamin") == ["Bongani Dlamini"], timeout=60, what="the search to find him"
        )

        assert any("%Dlamin%" in line for line in replication.primary.statements(primary_from))
        warned = re.findall(r"WARNING database\.replica read replica \S+ \(DATABASE_REPLICA_URL\) is [\d.]+s behind "
                            r"the primary \(DATABASE_REPLICA_MAX_LAG_SECONDS=2\); searches and reports read the primary",
                            server.logged(log_from))  # fmt: skip
        assert warned, server.logged(log_from)[-3000:]
        state = readyz(server)
        assert (state["state"], state["reads"]) == ("lagging", "primary") and state["lag_seconds"] > MAX_LAG, state
        stats, stderr = inbox_stats(replication)
        # The fresh message counted: read from the primary.
        assert stats["database"] == "primary"
        assert stats["numbers"][0]["messages_in_24h"] == customers_written(api, server)
        assert "at start: read replica" in stderr and "behind the primary" in stderr, stderr
    finally:
        with replication.replica.connect() as replica:
            replica.execute("SELECT pg_wal_replay_resume()")

    # Caught up again, the replica answers searches again.
    wait_for(lambda: readyz(server)["state"] == "ok", timeout=60, what="/readyz to see the replica caught up")
    replica_from = replication.replica.log_size()
    assert search(api, server, "Dlamin") == ["Bongani Dlamini"]
    assert any("%Dlamin%" in line for line in replication.replica.statements(replica_from))


@pytest.mark.e2e
def test_a_replica_that_is_down_is_passed_over_for_the_primary_and_readyz_says_so(replication, server, api):
    customer_writes(server, replication.primary, wa_id="8613800138000", name="Chen Wei")
    wait_for(replication.caught_up, timeout=30, what="the replica to replay the new contact")
    log_from = server.log_size()
    replication.replica.stop()
    try:
        replica_down(replication, server, api, log_from)
    finally:
        replication.replica.start()

    # Back, the replica answers searches again.
    wait_for(lambda: readyz(server)["state"] == "ok", timeout=60, what="/readyz to see the replica back")
    replica_from = replication.replica.log_size()
    assert search(api, server, "Chen W") == ["Chen Wei"]
    assert any("%Chen W%" in line for line in replication.replica.statements(replica_from))


def replica_down(replication: Replication, server: Server, api: requests.Session, log_from: int) -> None:
    started = time.monotonic()
    # Every search answered, by the primary, from the first one after the replica went away.
    for _ in range(20):
        assert search(api, server, "Chen W") == ["Chen Wei"]
    elapsed = time.monotonic() - started

    warnings = re.findall(r"WARNING database\.replica read replica \S+ \(DATABASE_REPLICA_URL\) does not answer: "
                          r"OperationalError: .*; searches and reports read the primary", server.logged(log_from))  # fmt: skip
    assert warnings, server.logged(log_from)[:3000]
    # One warning per look at the replica, not one per search.
    assert len(warnings) <= 1 + elapsed / CHECK_EVERY, (len(warnings), elapsed)
    assert readyz(server) | {"ms": 0} == {
        "ok": True,
        "state": "down",
        "reads": "primary",
        "error": "OperationalError (details in the log)",
        "ms": 0,
    }
    listed = api.get(f"{server.base_url}/api/conversations/", timeout=30)
    assert listed.status_code == 200 and len(listed.json()["results"]) >= 1

    stats, stderr = inbox_stats(replication)
    assert stats["database"] == "primary"
    # A process that starts while the replica does not answer says so at once, naming the setting.
    assert "at start: read replica" in stderr and "(DATABASE_REPLICA_URL) does not answer" in stderr, stderr


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_the_benchs_search_page_reads_the_replica_and_its_inbox_pages_the_primary(replication):
    primary, replica = replication.primary, replication.replica
    replica_from = replica.log_size()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_"))}
    result = run_manage(
        "bench", "--phases", "pages", "--database", "bench_replica",
        "--pg", f"postgres://postgres@127.0.0.1:{primary.port}/postgres",
        "--replica-pg", f"postgres://postgres@127.0.0.1:{replica.port}/postgres",
        "--conversations", "30", "--messages", "300", "--page-runs", "1", "--web-workers", "1",
        "--worker-concurrency", "1", "--sockets", "1",
        env={**env, "PGAPPNAME": "bench"}, timeout=540,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    rows = {cells[2].strip(): cells[6].strip() for cells in (line.split("|") for line in result.stdout.splitlines())
            if len(cells) > 6}  # fmt: skip
    # The search and its conversations' labels on the replica; the session and the user's numbers, as every
    # request's, on the primary.
    assert re.search(r"; queries on default \d+, replica 2;", rows["page /api/conversations/?q=: server time"]), rows
    assert re.search(r"; queries on default \d+;", rows["page /inbox/: server time"]), rows
    assert re.search(r"; queries on default \d+;", rows["page /inbox/<id>/: server time"]), rows
    assert any("%Customer 7%" in line for line in replica.statements(replica_from, by="bench"))


@pytest.mark.parametrize(
    "url",
    [
        "replica.internal:5432/inbox",
        "mysql://replica.internal/inbox",
        "postgres://replica.internal:port/inbox",
        "postgres://replica.internal:5432",
    ],
)
def test_a_replica_url_that_is_not_a_postgresql_database_stops_start_up(url):
    result = python("import django; django.setup()", env=production_env(DATABASE_REPLICA_URL=url))

    assert result.returncode == 1
    assert "ImproperlyConfigured: DATABASE_REPLICA_URL must be postgres://user@host:port/database" in result.stderr


def test_a_replica_that_does_not_answer_at_start_is_a_warning_naming_the_setting():
    nowhere = f"postgres://postgres@127.0.0.1:{free_port()}/inbox"

    result = run_manage("check", "--deploy", "--fail-level", "ERROR", env=production_env(DATABASE_REPLICA_URL=nowhere))

    assert result.returncode == 0, result.stderr
    assert "at start: read replica 127.0.0.1:" in result.stderr
    assert "/inbox (DATABASE_REPLICA_URL) does not answer: OperationalError: " in result.stderr

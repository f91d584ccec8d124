"""The app behind PgBouncer in transaction pooling, as Debian ships it (1.18: no prepared statements in that mode).

A PgBouncer of the test's own runs in front of the test database with ``pool_mode = transaction`` and two server
connections for every client, handed out in turn (``server_round_robin``), so consecutive transactions of one
client run on different server connections whenever they can: whatever a session keeps past its transaction is
lost every time, not only under load. The production processes (``config/bin/web``, ``worker``, ``ws``) reach
PostgreSQL only through it. With ``DATABASE_PGBOUNCER=transaction`` webhooks are stored once each and drained,
and the API, the inbox page, the admin and the socket answer; without it the admin's user page fails, with a log
line naming the setting; with prepared statements asked for (``?prepare_threshold=0``) and left on, the worker
says which setting to change and keeps the events pending until it is."""

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.db import SessionStore
from django.test import override_settings
from websockets.sync.client import connect as websocket_connect

from conversations.models import Message
from realtime.events import MESSAGE_CREATED
from sandbox.simulation import envelope, message_change, new_wamid, signed_request
from tests.e2e.conftest import BIN, NUMBER, WABA, RedisServer, free_port, stop_process, wait_for
from tests.factories import BusinessNumberFactory, UserFactory
from tests.production.conftest import APP_SECRET, HOST, SECRET_KEY, manage, production_env, start_process
from webhooks.models import WebhookEvent, WebhookEventState

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PGBOUNCER = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/sbin")
NGINX_HEADERS = {"Host": HOST, "X-Forwarded-Proto": "https"}
HINT = "a pooler in transaction mode (PgBouncer's pool_mode = transaction)"


@dataclass
class PgBouncer:
    port: int
    database: str
    user: str

    def url(self, query: str = "") -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{self.database}{query}"

    def show(self, what: str) -> list[dict]:
        """``SHOW <what>`` on PgBouncer's admin console, rows as dicts."""
        admin = f"postgres://{self.user}@127.0.0.1:{self.port}/pgbouncer"
        # The console speaks only the simple query protocol.
        with psycopg.connect(admin, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
            cursor = conn.execute(f"SHOW {what}")
            columns = [column.name for column in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def answers(self) -> bool:
        try:
            return bool(self.show("VERSION"))
        except psycopg.OperationalError:  # not listening yet
            return False

    def pool(self) -> dict:
        return next(row for row in self.show("POOLS") if row["database"] == self.database)

    def run_transactions(self, count: int) -> None:
        with psycopg.connect(self.url(), autocommit=True, prepare_threshold=None) as conn:
            for _ in range(count):
                conn.execute("SELECT 1")

    def open_both_server_connections(self) -> None:
        """Two transactions at once make PgBouncer open its second server connection; handed out in turn from
        then on, one client's consecutive transactions alternate between the two."""
        holding = [psycopg.connect(self.url(), prepare_threshold=None) for _ in range(2)]
        try:
            pids = {conn.execute("SELECT pg_backend_pid()").fetchone()[0] for conn in holding}
            for conn in holding:
                conn.commit()  # a client that leaves mid-transaction has its server connection closed
        finally:
            for conn in holding:
                conn.close()
        assert len(pids) == 2
        wait_for(lambda: self.pool()["sv_idle"] == 2, timeout=10, what=f"two idle server connections ({self.pool()})")


@pytest.fixture(scope="module")
def pgbouncer(e2e_database_url) -> Iterator[PgBouncer]:
    db = settings.DATABASES["default"]
    workdir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    workdir.chmod(0o755)  # PgBouncer refuses to run as root: as root, the test runs it as nobody
    (workdir / "userlist.txt").write_text(f'"{db["USER"]}" "{db["PASSWORD"] or ""}"\n')
    port = free_port()
    (workdir / "pgbouncer.ini").write_text(
        f"""[databases]
{db["NAME"]} = host={db["HOST"] or "127.0.0.1"} port={db["PORT"] or 5432} dbname={db["NAME"]}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/userlist.txt
admin_users = {db["USER"]}
pool_mode = transaction
; a few server connections shared by every process of the app
default_pool_size = 2
min_pool_size = 2
; in turn rather than the last used first, and never held back for a check: one client's transactions alternate
server_round_robin = 1
server_check_delay = 3600
max_client_conn = 200
"""
    )
    for name in ("userlist.txt", "pgbouncer.ini"):
        (workdir / name).chmod(0o644)
    command = [PGBOUNCER, *(["-u", "nobody"] if os.geteuid() == 0 else []), str(workdir / "pgbouncer.ini")]
    process = subprocess.Popen(
        command,
        stdout=open(workdir / "pgbouncer.log", "ab"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    bouncer = PgBouncer(port=port, database=db["NAME"], user=db["USER"])
    try:
        wait_for(bouncer.answers, timeout=15, what="pgbouncer")
        assert "PgBouncer 1." in json.dumps(bouncer.show("VERSION"))
        yield bouncer
    finally:
        # Its server connections would keep the test database from being dropped.
        stop_process(process)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class App:
    """The production processes, each reaching PostgreSQL through PgBouncer."""

    env: dict[str, str]
    logs: Path
    web_port: int
    ws_port: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, *names: str) -> None:
        for name in names:
            self.processes[name] = start_process(name, env=self.env, log=self.logs / f"{name}.log")
        if "web" in names:
            wait_for(lambda: requests.get(f"{self.base_url}/healthz", timeout=1).ok, timeout=40, what="gunicorn")
        if "ws" in names:
            healthz = f"http://127.0.0.1:{self.ws_port}/healthz"
            wait_for(lambda: requests.get(healthz, timeout=1).ok, timeout=40, what="daphne")
        if "worker" in names:
            wait_for(lambda: b"ready." in (self.logs / "worker.log").read_bytes(), timeout=40, what="celery worker")

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process)
        self.processes.clear()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def post_webhook(self, payload: dict) -> requests.Response:
        body, headers = signed_request(payload, app_secret=APP_SECRET)
        return requests.post(
            f"{self.base_url}/api/webhook", data=body, headers={**headers, **NGINX_HEADERS}, timeout=15
        )

    def get(self, path: str, *, headers: dict | None = None, **kwargs) -> requests.Response:
        return requests.get(
            f"{self.base_url}{path}", headers={**NGINX_HEADERS, **(headers or {})}, timeout=15, **kwargs
        )


@pytest.fixture(scope="module")
def static_root() -> Iterator[Path]:
    """collectstatic's output, once: production pages name the hashed files of its manifest."""
    root = Path(tempfile.mkdtemp(prefix="pgbouncer-static-"))
    collected = manage("collectstatic", "--noinput", env=production_env(DJANGO_STATIC_ROOT=str(root)))
    assert collected.returncode == 0, collected.stderr
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def app_factory(pgbouncer, static_root) -> Iterator:
    work = Path(tempfile.mkdtemp(prefix="pgbouncer-app-"))
    redis = RedisServer(port=free_port(), workdir=str(work))
    redis.start()
    apps: list[App] = []

    def make(*, database_url: str, **overrides: str) -> App:
        web_port, ws_port = free_port(), free_port()
        env = production_env(
            DATABASE_URL=database_url,
            REDIS_URL=redis.url,
            PYTHON=str(BIN / "python"),
            DJANGO_STATIC_ROOT=str(static_root),
            META_GRAPH_API_URL="http://127.0.0.1:9",
            WEB_BIND=f"127.0.0.1:{web_port}",
            WS_BIND_HOST="127.0.0.1",
            WS_PORT=str(ws_port),
            API_THROTTLE_AUTH="10000/min",
            API_THROTTLE_ANON="10000/min",
            LOG_FORMAT="plain",
            **overrides,
        )
        app = App(env=env, logs=work, web_port=web_port, ws_port=ws_port)
        apps.append(app)
        return app

    try:
        yield make
    finally:
        for app in apps:
            app.stop()
        redis.stop()
        if os.environ.get("E2E_KEEP_LOGS"):
            print(f"pgbouncer test logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def superuser(username: str = "pgb-admin"):
    user = UserFactory(username=username, is_superuser=True, is_staff=True)
    user.password = make_password("pw-for-tests", hasher="pbkdf2_sha256")  # production's hasher
    user.save(update_fields=["password"])
    return user


def session_cookie(user) -> dict[str, str]:
    with override_settings(SECRET_KEY=SECRET_KEY):  # the servers' key signs the session
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
    return {settings.SESSION_COOKIE_NAME: session.session_key}


def customer_message(wa_id: str, text: str, *, name: str = "Amara Okafor") -> tuple[str, dict]:
    wamid = new_wamid()
    change = message_change(**NUMBER, wa_id=wa_id, wamid=wamid, name=name, content={"text": {"body": text}})
    return wamid, envelope(waba_id=WABA, changes=[change])


def all_processed() -> bool:
    return not WebhookEvent.objects.filter(state=WebhookEventState.PENDING).exists()


def test_the_whole_app_through_pgbouncer_transaction_pooling(pgbouncer, app_factory):
    BusinessNumberFactory(**NUMBER, waba_id=WABA)
    admin = superuser()
    pgbouncer.open_both_server_connections()
    app = app_factory(database_url=pgbouncer.url(), DATABASE_PGBOUNCER="transaction", WEB_WORKERS="2")
    app.start("web", "ws", "worker")

    tokens = requests.post(
        f"{app.base_url}/api/auth/token/",
        json={"username": admin.username, "password": "pw-for-tests"},
        headers=NGINX_HEADERS,
        timeout=15,
    ).json()
    bearer = {"Authorization": f"Bearer {tokens['access']}"}

    # A socket on Daphne (psycopg's pool, through PgBouncer too) hears the messages as the worker applies them.
    heard: list[dict] = []
    with websocket_connect(
        f"ws://127.0.0.1:{app.ws_port}/ws/inbox/?token={tokens['access']}", open_timeout=15
    ) as socket:

        def listen() -> None:
            try:
                while True:
                    heard.append(json.loads(socket.recv()))
            except Exception:  # closed at the end of the test
                return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()

        customers = {f"4477009{n:05d}": f"Customer {n}" for n in range(5)}
        deliveries = [
            (wa_id, f"hello {i} from {name}", *customer_message(wa_id, f"hello {i} from {name}", name=name))
            for i in range(6)
            for wa_id, name in customers.items()
        ]
        # Meta redelivers: every fifth delivery twice, as concurrent POSTs from several clients.
        posts = [payload for *_rest, payload in deliveries] + [payload for *_rest, payload in deliveries[::5]]
        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(app.post_webhook, posts))
        assert [r.status_code for r in responses] == [200] * len(posts), [r.text for r in responses if not r.ok]
        event_ids = [r.json()["event_id"] for r in responses]

        wait_for(all_processed, timeout=60, what="the worker's drains to process every event")
        # Each POST stored once, each processed without an error; a redelivered message applied once.
        assert sorted(WebhookEvent.objects.values_list("pk", flat=True)) == sorted(event_ids)
        assert set(WebhookEvent.objects.values_list("state", flat=True)) == {WebhookEventState.PROCESSED}
        assert not WebhookEvent.objects.exclude(item_errors=[]).exists()
        assert sorted(Message.objects.values_list("wamid", flat=True)) == sorted(wamid for _, _, wamid, _ in deliveries)

        conversations = app.get("/api/conversations/?page_size=50", headers=bearer).json()["results"]
        assert len(conversations) == len(customers)
        assert {c["unread_count"] for c in conversations} == {6}
        thread = app.get(f"/api/conversations/{conversations[0]['id']}/messages/?page_size=50", headers=bearer).json()[
            "results"
        ]
        assert len(thread) == 6 and all(m["text"].startswith("hello ") for m in thread)
        assert app.get("/api/conversations/unread-total/", headers=bearer).json() == {"unread_total": len(deliveries)}

        cookies = session_cookie(admin)
        inbox = app.get("/inbox/", cookies=cookies)
        assert inbox.status_code == 200 and "Customer 0" in inbox.text
        # Django's form choices read with .iterator(): without server-side cursors here, as the setting says.
        user_page = app.get(f"/admin/auth/user/{admin.pk}/change/", cookies=cookies)
        assert user_page.status_code == 200 and "Can add user" in user_page.text

        wait_for(
            lambda: {wamid for _, _, wamid, _ in deliveries} <= heard_wamids(heard),
            timeout=30,
            what="the socket to hear every message",
        )

    # Every process went through PgBouncer, which ran all of it on its two server connections.
    clients = [c for c in pgbouncer.show("CLIENTS") if c["database"] == pgbouncer.database]
    servers = [s for s in pgbouncer.show("SERVERS") if s["database"] == pgbouncer.database]
    assert len(servers) == 2 and len(clients) >= 5, (len(servers), len(clients))
    assert HINT not in app.log("web") + app.log("worker") + app.log("ws")


def heard_wamids(heard: list[dict]) -> set[str]:
    return {event["payload"]["message"]["wamid"] for event in list(heard) if event["type"] == MESSAGE_CREATED}


def test_without_the_setting_pgbouncer_loses_the_admins_cursor_and_the_log_names_the_setting(pgbouncer, app_factory):
    BusinessNumberFactory(**NUMBER, waba_id=WABA)
    admin = superuser()
    pgbouncer.open_both_server_connections()
    app = app_factory(database_url=pgbouncer.url(), WEB_WORKERS="1")  # no DATABASE_PGBOUNCER
    app.start("web")

    # The webhook's INSERT needs nothing PgBouncer drops...
    _wamid, payload = customer_message("447700900461", "hello")
    response = app.post_webhook(payload)
    assert response.status_code == 200
    assert WebhookEvent.objects.filter(pk=response.json()["event_id"]).exists()
    # ...but the admin's choices declare a cursor in one transaction and read it in the next, on the other server
    # connection.
    user_page = app.get(f"/admin/auth/user/{admin.pk}/change/", cookies=session_cookie(admin))
    assert user_page.status_code == 500
    log = wait_for(lambda: HINT in app.log("web") and app.log("web"), what="the error's log line")
    [line] = [line for line in log.splitlines() if HINT in line][:1]
    assert "cursor" in line and HINT in line and "set DATABASE_PGBOUNCER=transaction" in line, line


def test_prepared_statements_left_on_behind_pgbouncer_1_18_name_the_setting_and_keep_the_events(pgbouncer, app_factory):
    BusinessNumberFactory(**NUMBER, waba_id=WABA)
    pgbouncer.open_both_server_connections()
    # An operator who asked for prepared statements (psycopg prepares the drain's server-bound statements on their
    # first execution) on a PgBouncer that does not keep them across its server connections.
    app = app_factory(
        database_url=pgbouncer.url("?prepare_threshold=0"),
        DATABASE_PGBOUNCER="transaction",
        DATABASE_PREPARED_STATEMENTS="1",
        WEB_WORKERS="1",
        WORKER_CONCURRENCY="1",
    )
    app.start("web", "worker")

    def refused() -> bool:
        return HINT in app.log("worker")

    wamids = []
    for n in range(20):  # each round runs on one server connection or the other: soon the one without
        wamid, payload = customer_message("447700900461", f"hello {n}")
        assert app.post_webhook(payload).status_code == 200
        wamids.append(wamid)
        wait_for(lambda: refused() or all_processed(), timeout=30, what="the drain")
        if refused():
            break
        # The web process and the drain could take turns in step, the drain's transactions always on the server
        # connection that prepared its statements: a few transactions of the test's own shift them.
        pgbouncer.run_transactions(n % 3)
    line = next(line for line in app.log("worker").splitlines() if HINT in line)
    assert 'prepared statement "_pg3_' in line and HINT in line, line
    assert "set DATABASE_PREPARED_STATEMENTS=0, or max_prepared_statements in pgbouncer.ini" in line, line
    # A configuration error, not the deliveries': none failed or recorded an error; they wait for the fix.
    assert not WebhookEvent.objects.filter(state=WebhookEventState.FAILED).exists()
    assert not WebhookEvent.objects.exclude(item_errors=[]).exists()

    # As the message says: prepared statements off (the default with DATABASE_PGBOUNCER=transaction).
    app.stop()
    fixed = app_factory(
        database_url=pgbouncer.url(),
        DATABASE_PGBOUNCER="transaction",
        WEB_WORKERS="1",
        WORKER_CONCURRENCY="1",
        WEBHOOK_SWEEP_INTERVAL_SECONDS="1",
        WEBHOOK_SWEEP_GRACE_SECONDS="1",
        BEAT_SCHEDULE=str(app.logs / "beat-schedule"),
    )
    fixed.start("worker", "beat")
    wait_for(all_processed, timeout=60, what="the sweep to have the kept events drained")
    assert sorted(Message.objects.values_list("wamid", flat=True)) == sorted(wamids)
    assert not WebhookEvent.objects.exclude(item_errors=[]).exists()

"""The real topology for end-to-end tests: Daphne and a Celery worker (with beat) as real processes,
the real PostgreSQL test database, and a Redis server of the tests' own on a free port (so a test can
stop and restart it). Everything started here is stopped here, by PID."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from celery import Celery
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.db import SessionStore
from kombu.exceptions import OperationalError as KombuOperationalError
from playwright.sync_api import Browser, Page, sync_playwright

from sandbox.simulation import signed_request
from tests.e2e.axe import axe_source
from tests.factories import BusinessNumberFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
# The business number of the shared sample payloads (tests/webhooks/payloads).
NUMBER = {"phone_number_id": "427715309981234", "display_phone_number": "15557730142"}
WABA = "318273645502211"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], *, timeout: float = 15.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except (requests.RequestException, OSError) as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def stop_process(process: subprocess.Popen, *, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


class Api:
    """The read API over HTTP, as a staff client would use it."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        # The servers run production settings, whose hashers do not include the tests' fast MD5.
        user = UserFactory(username="e2e-admin", is_superuser=True)
        user.password = make_password("pw-for-tests", hasher="pbkdf2_sha256")
        user.save(update_fields=["password"])
        tokens = requests.post(
            f"{base_url}/api/auth/token/", json={"username": "e2e-admin", "password": "pw-for-tests"}, timeout=10
        ).json()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {tokens['access']}"

    def conversations(self) -> list[dict]:
        return self.session.get(f"{self.base_url}/api/conversations/?page_size=200", timeout=10).json()["results"]

    def messages(self, conversation_id: int) -> list[dict]:
        url = f"{self.base_url}/api/conversations/{conversation_id}/messages/?page_size=200"
        return self.session.get(url, timeout=10).json()["results"]

    def all_messages(self) -> list[dict]:
        return [m for c in self.conversations() for m in self.messages(c["id"])]

    def send(self, conversation_id: int, **kwargs) -> requests.Response:
        url = f"{self.base_url}/api/conversations/{conversation_id}/messages/"
        if "files" in kwargs:
            return self.session.post(url, data=kwargs.get("data"), files=kwargs["files"], timeout=10)
        return self.session.post(url, json=kwargs, timeout=10)


class SandboxControl:
    """The Meta sandbox's control API (``/_sandbox/``), as the tests steer it."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def control(self, method: str, name: str, body: dict | None = None):
        response = requests.request(method, f"{self.base_url}/_sandbox/{name}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def configure(self, **changes):
        return self.control("POST", "config", changes)


SANDBOX_TOKEN = "sandbox-access-token"


class Sandbox(SandboxControl):
    def sent(self) -> list[dict]:
        return self.control("GET", "messages")

    def reads(self) -> list[dict]:
        return self.control("GET", "reads")

    def customer_writes(self, *, wa_id: str = "447700900461", name: str = "Amara Okafor", **kwargs) -> str:
        body = {**NUMBER, "wa_id": wa_id, "name": name, **kwargs}
        return self.control("POST", "inbound", body)["wamid"]


@pytest.fixture(scope="module")
def sandbox_process(e2e_database_url) -> Iterator[Sandbox]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "meta_sandbox",
            "--port",
            str(port),
            "--webhook-url",
            "http://127.0.0.1:9/api/webhook",
            "--app-secret",
            settings.META_APP_SECRET,
            "--access-token",
            SANDBOX_TOKEN,
            "--status-delay",
            "0.2",
            "--phone-number-id",
            NUMBER["phone_number_id"],
            "--display-phone-number",
            NUMBER["display_phone_number"],
            "--waba-id",
            WABA,
        ],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_READ_DOT_ENV_FILE": "0",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    sandbox = Sandbox(f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=1).ok, timeout=30, what="sandbox")
        yield sandbox
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def sandbox_stack_overrides(sandbox_process) -> dict[str, str]:
    return {
        "META_GRAPH_API_URL": sandbox_process.base_url,
        "META_MEDIA_HOSTS": sandbox_process.base_url,
        "META_ACCESS_TOKEN": SANDBOX_TOKEN,
        "META_APP_ID": "100000000000001",  # as make run's: media samples of templates go to the app
    }


@pytest.fixture(scope="module")
def sandbox_config() -> dict:
    """What a test module adds to the sandbox's configuration (``POST /_sandbox/config``) after each reset."""
    return {}


@pytest.fixture
def sandbox(sandbox_process, stack, sandbox_config) -> Sandbox:
    """The Meta sandbox, reset, sending its webhooks to this module's stack (which ``sandbox_stack_overrides``
    points at it)."""
    sandbox_process.control("POST", "reset")
    sandbox_process.configure(webhook_url=f"{stack.base_url}/api/webhook", status_delay=0.2, **sandbox_config)
    return sandbox_process


@pytest.fixture(scope="module")
def axe() -> str:
    """axe-core's source, for the accessibility checks (tests/e2e/axe.py)."""
    return axe_source()


@dataclass
class RedisServer:
    port: int
    workdir: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self._answers, timeout=10, what="redis-server")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def _answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")


@dataclass
class Stack:
    base_url: str
    redis: RedisServer
    env: dict[str, str]
    logs: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def post_webhook(self, payload: dict, *, secret: str | None = None, timeout: float = 10) -> requests.Response:
        body, headers = signed_request(payload, app_secret=secret or settings.META_APP_SECRET)
        return requests.post(f"{self.base_url}/api/webhook", data=body, headers=headers, timeout=timeout)


def stack_env(*, database_url: str, redis_url: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "DJANGO_", "DATABASE_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_READ_DOT_ENV_FILE="0",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        META_APP_SECRET=settings.META_APP_SECRET,
        META_VERIFY_TOKEN=settings.META_VERIFY_TOKEN,
        META_GRAPH_API_URL=settings.META_GRAPH_API_URL,
        WEBHOOK_SWEEP_INTERVAL_SECONDS="1",
        WEBHOOK_SWEEP_GRACE_SECONDS="1",
        # A killed worker's drain flag goes stale in 3 s (refreshed every 2 s while its drain lives).
        WEBHOOK_DRAIN_CLAIM_SECONDS="6",
        DJANGO_CONN_MAX_AGE="0",
        PYTHONUNBUFFERED="1",
        # Retries a test can wait for: Graph API backoff from 0.2 s, two media download retries.
        TASK_RETRY_BACKOFF_SECONDS="0.2",
        # Every e2e test logs in over HTTP from 127.0.0.1; the throttle itself is tested in-process.
        API_THROTTLE_AUTH="10000/min",
        API_THROTTLE_ANON="10000/min",
        MEDIA_DOWNLOAD_MAX_RETRIES="2",
    )
    env.update(overrides)
    return env


def start_daphne(
    *, env: dict[str, str], logs: Path, name: str = "daphne", port: int | None = None
) -> tuple[subprocess.Popen, str]:
    port = port or free_port()
    process = subprocess.Popen(
        [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=open(logs / f"{name}.log", "ab"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{base_url}/api/webhook", timeout=1).status_code == 403, timeout=30, what=name)
    return process, base_url


def start_worker(*, env: dict[str, str], logs: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--beat",
            "--loglevel",
            "info",
            "--concurrency",
            "4",
            "--schedule",
            str(logs / "celerybeat-schedule"),
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(logs / "worker.log", "wb"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for(lambda: b"ready." in (logs / "worker.log").read_bytes(), timeout=40, what="celery worker")
    return process


@pytest.fixture(scope="session")
def e2e_database_url(django_db_setup) -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def number(stack):
    return BusinessNumberFactory(**NUMBER, waba_id=WABA)


@pytest.fixture
def api(stack, number) -> Api:
    return Api(stack.base_url)


@pytest.fixture(scope="module")
def stack_overrides() -> dict[str, str]:
    """Environment a test module adds to its stack (e.g. the Meta sandbox's URL)."""
    return {}


@pytest.fixture(scope="module")
def stack(e2e_database_url, stack_overrides) -> Iterator[Stack]:
    logs = Path(tempfile.mkdtemp(prefix="e2e-logs-"))
    redis = RedisServer(port=free_port(), workdir=str(logs))
    redis.start()
    env = stack_env(database_url=e2e_database_url, redis_url=redis.url, **stack_overrides)
    daphne, base_url = start_daphne(env=env, logs=logs)
    worker = start_worker(env=env, logs=logs)
    stack = Stack(base_url=base_url, redis=redis, env=env, logs=logs, processes=[daphne, worker])
    try:
        yield stack
    finally:
        for process in stack.processes:
            stop_process(process)
        redis.stop()
        if os.environ.get("E2E_KEEP_LOGS"):
            print(f"e2e logs kept in {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make around it
    # are still plain synchronous calls (the documented escape hatch for Playwright with Django).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def staff_member(username: str, *numbers) -> object:
    user = UserFactory(username=username, first_name=username.capitalize())
    user.password = make_password("pw-for-tests", hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])
    for number in numbers:
        number.members.add(user)
    return user


def logged_in_page(browser: Browser, base_url: str, user, *, notifications: bool = False, **context_options) -> Page:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    context = browser.new_context(base_url=base_url, **context_options)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": base_url}])
    if notifications:
        context.grant_permissions(["notifications"], origin=base_url)
    return context.new_page()


@pytest.fixture(autouse=True)
def quiet_stack_after_test(request):
    """Before the test database is flushed, let the servers finish what the test set in motion (queued
    tasks, late status webhooks from the sandbox): a TRUNCATE racing a worker's transaction deadlocks."""
    yield
    if "stack" not in request.fixturenames:
        return
    stack = request.getfixturevalue("stack")
    if "sandbox_process" in request.fixturenames:
        request.getfixturevalue("sandbox_process").control("POST", "reset")  # drops webhooks it has not sent yet
    import redis as redis_client

    from webhooks.models import WebhookEvent, WebhookEventState
    from webhooks.tasks import drain_webhook_events_task

    broker = redis_client.Redis.from_url(stack.redis.url)
    # A Celery app of its own for the stack's broker (the project's app here is eager, on no broker); not the
    # current app, or this process's shared tasks would publish to it.
    control = Celery(broker=stack.redis.url, set_as_current=False)

    def worker_busy() -> bool:
        """Tasks the worker holds: retries waiting for their countdown (not in the queue any more) and running
        ones, except drains, which only poll one table once idle. A worker that does not answer (killed by
        a fault drill) holds nothing."""
        inspect = control.control.inspect(timeout=1, limit=1)
        held = [*((inspect.scheduled() or {}).values()), *((inspect.active() or {}).values())]
        names = [(task.get("request") or task).get("name", "") for tasks in held for task in tasks]
        return any(name != drain_webhook_events_task.name for name in names)

    def quiet() -> bool:
        try:
            # Not the "unacked" hash: a SIGKILLed worker's entries stay there until the visibility timeout.
            queued = broker.llen("celery")
            if queued or WebhookEvent.objects.filter(state=WebhookEventState.PENDING).exists():
                return False
            return not worker_busy()
        except (redis_client.RedisError, KombuOperationalError):
            return True  # a test stopped its Redis: nothing can be queued

    try:
        wait_for(quiet, timeout=30, what="the servers to finish the test's work")
    finally:
        broker.close()
        control.close()
    time.sleep(0.3)

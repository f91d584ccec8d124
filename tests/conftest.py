"""Shared fixtures: users, a business number, signed webhook posting, the Meta sandbox."""

from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from django.test.client import ClientHandler
from rest_framework.test import APIClient

from sandbox import MetaSandbox, SandboxConfig
from sandbox.simulation import envelope, signed_request
from tests.e2e.conftest import free_port
from tests.factories import BusinessNumberFactory, UserFactory
from webhooks.fastpath import InboxWSGIHandler

_last_test_run = {"nodeid": "the session's start"}

# The slowest modules (90-120 s each: real process stacks, valgrind), started first so that `make test`'s two
# processes, each given whole modules as it frees up, end close together instead of one waiting on the last.
SLOWEST_MODULES = (
    "tests/e2e/test_sentinel_failover.py",
    "tests/e2e/test_replying.py",
    "tests/bench/test_instructions.py",
    "tests/e2e/test_inbox_browser.py",
    "tests/ops/test_commands.py",
    "tests/database/test_replica.py",
    "tests/webhooks/test_commands.py",
    "tests/bench/test_command.py",
)


def pytest_collection_modifyitems(items):
    def slowness(item) -> int:
        module = item.nodeid.split("::", 1)[0]
        return SLOWEST_MODULES.index(module) if module in SLOWEST_MODULES else len(SLOWEST_MODULES)

    items.sort(key=slowness)  # stable: each module's own order is kept


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """A connection of this process that the server closed (a backend terminated, a server restart) would fail
    every later test of the process, far from its cause: replace it, and name the test after which it was found
    dead."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is None or conn.in_atomic_block or not conn.autocommit:
            continue
        if not conn.is_usable():
            item.warn(
                pytest.PytestWarning(
                    f"the {conn.alias!r} database connection was closed by the server; found after "
                    f"{_last_test_run['nodeid']}, replaced"
                )
            )
            conn.close()
    _last_test_run["nodeid"] = item.nodeid


@pytest.fixture(autouse=True)
def _no_drain_left_flagged():
    """A drain flag left in the process-wide cache by one test would keep the next test's events pending."""
    from webhooks.services import clear_drain_flags

    clear_drain_flags()


class _ProductionClientHandler(ClientHandler, InboxWSGIHandler):
    """Django's test-client handler over the one gunicorn serves: Meta's POSTs take the webhook's own chain."""


@pytest.fixture
def client():
    """pytest-django's ``client``, serving requests with the production WSGI handler (webhooks.fastpath)."""
    test_client = Client()
    test_client.handler = _ProductionClientHandler(enforce_csrf_checks=False)
    return test_client


@pytest.fixture
def number(db):
    """The business number of the shared sample payloads (tests/webhooks/payloads)."""
    return BusinessNumberFactory(phone_number_id="427715309981234", display_phone_number="15557730142")


@pytest.fixture
def staff(db, number):
    user = UserFactory(username="ana")
    number.members.add(user)
    return user


@pytest.fixture
def api(staff):
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.fixture
def post_webhook(client, django_capture_on_commit_callbacks):
    """POST a signed delivery to /api/webhook and run what it enqueues on commit (eager Celery)."""

    def post(payload: dict, **overrides):
        body, headers = signed_request(payload, app_secret=settings.META_APP_SECRET)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/api/webhook",
                data=body,
                content_type="application/json",
                headers={"X-Hub-Signature-256": headers["X-Hub-Signature-256"], **overrides},
            )

    return post


@pytest.fixture
def deliver(post_webhook):
    """Deliver changes for the sample number and assert Meta got its 200."""

    def deliver_changes(*changes: dict):
        response = post_webhook(envelope(waba_id="318273645502211", changes=list(changes)))
        assert response.status_code == 200, response.content
        return response

    return deliver_changes


# The project's Meta sandbox as a real HTTP server in the test process (tests of sends, media, the demo seed).
SANDBOX_TOKEN = "sandbox-test-token"


@pytest.fixture
def start_sandbox(settings) -> Iterator[Callable[..., MetaSandbox]]:
    """Starts a sandbox the app talks to; ``media_host`` is the host its media URLs name (default the one
    the app calls). Media may be downloaded from the app's Graph API URL only."""
    started: list[MetaSandbox] = []

    def start(*, media_host: str = "127.0.0.1") -> MetaSandbox:
        port = free_port()
        config = SandboxConfig(
            app_secret=settings.META_APP_SECRET, access_token=SANDBOX_TOKEN, assume_window_open=True, status_delay=0.01
        )
        sandbox = MetaSandbox(config, port=port, public_url=f"http://{media_host}:{port}").start()
        started.append(sandbox)
        settings.META_GRAPH_API_URL = f"http://127.0.0.1:{port}"
        settings.META_MEDIA_HOSTS = [settings.META_GRAPH_API_URL]
        settings.META_ACCESS_TOKEN = SANDBOX_TOKEN
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def meta_sandbox(start_sandbox) -> MetaSandbox:
    return start_sandbox()

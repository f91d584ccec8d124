"""The project's Meta sandbox as a real HTTP server in this process: the Graph API calls (sends, media
info, media downloads) of these tests go to it over the network, as they go to Meta."""
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import free_port
from sandbox import MetaSandbox, SandboxConfig

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


def graph_requests(sandbox: MetaSandbox) -> list[str]:
    """The paths of every Graph API request the sandbox received, media downloads included."""
    with sandbox.lock:
        return [entry["path"] for entry in sandbox.state.requests]

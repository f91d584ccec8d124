"""The project's Meta sandbox as a real HTTP server in this process: the Graph API calls (sends, media
info, media downloads) of these tests go to it over the network, as they go to Meta."""

from sandbox import MetaSandbox
from tests.conftest import SANDBOX_TOKEN, meta_sandbox, start_sandbox  # noqa: F401 (fixtures and the token)


def graph_requests(sandbox: MetaSandbox) -> list[str]:
    """The paths of every Graph API request the sandbox received, media downloads included."""
    with sandbox.lock:
        return [entry["path"] for entry in sandbox.state.requests]

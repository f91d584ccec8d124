"""Error tracking: with SENTRY_DSN set, an error logged by the app reaches the Sentry server (a real HTTP
server of the test's own speaking Sentry's envelope endpoint); without it nothing is sent."""

import gzip
import http.server
import subprocess
import sys
import threading

from tests.e2e.conftest import ROOT, free_port

SCRIPT = """
import logging, django, sentry_sdk
django.setup()
logging.getLogger("webhooks").error("poison event 42 could not be processed")
sentry_sdk.flush(5)
"""


# A Graph API call that fails (nothing listens on port 9), reported with its traceback.
FAILED_GRAPH_CALL_SCRIPT = """
import logging, django, sentry_sdk
django.setup()
from conversations.graph_api import GraphClient, GraphError
try:
    GraphClient(access_token="EAAGsentry-test-token-5678", base_url="http://127.0.0.1:9").phone_number_profile(phone_number_id="1")
except GraphError:
    logging.getLogger("conversations").exception("the number's profile could not be read")
sentry_sdk.flush(5)
"""


def run_app_with_sentry(dsn: str, script: str = SCRIPT) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.base", "DJANGO_READ_DOT_ENV_FILE": "0"}
    if dsn:
        env["SENTRY_DSN"] = dsn
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def sentry_server():
    received: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def test_errors_reach_sentry_when_a_dsn_is_set():
    server, received = sentry_server()
    try:
        result = run_app_with_sentry(f"http://publickey@127.0.0.1:{server.server_address[1]}/1")
        assert result.returncode == 0, result.stderr
        assert any(b"poison event 42 could not be processed" in body for body in received)
    finally:
        server.shutdown()


def test_nothing_is_sent_without_a_dsn():
    server, received = sentry_server()
    try:
        assert run_app_with_sentry("").returncode == 0
        assert received == []
    finally:
        server.shutdown()


def test_an_error_report_carries_no_access_token():
    # Frames' local variables would: the token is an argument, and in the request bytes http.client buffers.
    server, received = sentry_server()
    try:
        result = run_app_with_sentry(
            f"http://publickey@127.0.0.1:{server.server_address[1]}/1", FAILED_GRAPH_CALL_SCRIPT
        )
        assert result.returncode == 0, result.stderr
        assert any(b"the number's profile could not be read" in body for body in received)
        assert not any(b"EAAGsentry-test-token-5678" in body for body in received)
    finally:
        server.shutdown()

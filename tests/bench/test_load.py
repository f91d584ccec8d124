"""The bench's load generators send every pre-signed body once before any body repeats.

The ingest figure is only honest if each request is a new message: a redelivery costs the worker next
to nothing (its wamid is already stored), so a generator that repeated bodies would flatter the
"worker applied during ingest" figure. Both generators (wrk with the bench's Lua script, and the
Python fallback) run here against a small HTTP server that records what it receives.
"""
import shutil
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import clients


class RecordingServer:
    """HTTP/1.1 keep-alive server on a free port that answers 200 and records each request's body."""

    def __init__(self):
        received: list[bytes] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    received.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.received = received
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def bodies(count: int) -> list[tuple[bytes, str]]:
    return [(b'{"n": %d}' % n, f"sha256={n:064x}") for n in range(count)]


def test_wrk_sends_each_body_once_while_the_pool_lasts():
    assert shutil.which("wrk"), "wrk is needed for this test: apt-get install wrk (.ci/run installs it)"
    pool = bodies(100_000)  # far more than a Python server answers in a second
    with RecordingServer() as server:
        result = clients.run_load(port=server.port, path="/api/webhook", requests=pool, connections=4, seconds=1, threads=2)
    counts = Counter(server.received)
    assert result.tool == "wrk" and result.ok > 50
    assert counts.most_common(1)[0][1] == 1, "a body was sent twice before the pool ran out"
    # Each thread sends its own share (every second body) from the start, in order: with 2 connections per
    # thread, at most the last request of each connection may be missing when wrk stops.
    numbers = {int(body[6:-1]) for body in counts}
    for parity in (0, 1):
        share = {n for n in numbers if n % 2 == parity}
        assert share, f"thread {parity} sent nothing"
        assert len(set(range(parity, max(share) + 1, 2)) - share) <= 2


def test_wrk_starts_its_share_again_when_the_pool_runs_out():
    assert shutil.which("wrk"), "wrk is needed for this test: apt-get install wrk (.ci/run installs it)"
    with RecordingServer() as server:
        clients.run_load(port=server.port, path="/api/webhook", requests=bodies(10), connections=2, seconds=1, threads=2)
    counts = Counter(server.received)
    assert set(counts) == {body for body, _sig in bodies(10)}  # every body went out, and then again
    assert min(counts.values()) > 1


@pytest.mark.parametrize("pool_size", [100_000, 10])
def test_the_python_generator_cycles_the_pool_in_order(pool_size):
    with RecordingServer() as server:
        result = clients.run_load(
            port=server.port, path="/api/webhook", requests=bodies(pool_size), connections=4, seconds=0.5, use_wrk=False
        )
    counts = Counter(server.received)
    assert result.tool == "python" and result.ok > 10
    if pool_size > result.requests:
        assert counts.most_common(1)[0][1] == 1
    else:
        assert set(counts) == {body for body, _sig in bodies(pool_size)}

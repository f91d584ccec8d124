"""The bench's load generator (wrk with the bench's Lua script) sends every pre-signed body once before any body
repeats, and its one-shot POST reads the whole answer.

The ingest figure is only honest if each request is a new message: a redelivery costs the worker next
to nothing (its wamid is already stored), so a generator that repeated bodies would flatter the
"worker applied during ingest" figure. wrk runs here against a small HTTP server that records what it receives.
"""

import asyncio
import shutil
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench import clients


class RecordingServer:
    """HTTP/1.1 keep-alive server on a free port that records each request's body and signature header, and
    answers 200 on /api/webhook, 404 elsewhere."""

    def __init__(self):
        received: list[bytes] = []
        signatures: list[str] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    received.append(body)
                    signatures.append(self.headers["X-Hub-Signature-256"])
                self.send_response(200 if self.path == "/api/webhook" else 404)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.received, self.signatures = received, signatures
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
    assert shutil.which("wrk"), "wrk is needed for this test: apt-get install wrk (make test installs it)"
    pool = bodies(100_000)  # far more than a Python server answers in a second
    with RecordingServer() as server:
        result = clients.run_load(
            port=server.port, path="/api/webhook", requests=pool, connections=4, seconds=1, threads=2
        )
    counts = Counter(server.received)
    assert result.ok > 50 and result.errors == 0
    assert counts.most_common(1)[0][1] == 1, "a body was sent twice before the pool ran out"
    # Each thread sends its own share (every second body) from the start, in order: with 2 connections per
    # thread, at most the last request of each connection may be missing when wrk stops.
    numbers = {int(body[6:-1]) for body in counts}
    for parity in (0, 1):
        share = {n for n in numbers if n % 2 == parity}
        assert share, f"thread {parity} sent nothing"
        assert len(set(range(parity, max(share) + 1, 2)) - share) <= 2


def test_wrk_starts_its_share_again_when_the_pool_runs_out():
    assert shutil.which("wrk"), "wrk is needed for this test: apt-get install wrk (make test installs it)"
    with RecordingServer() as server:
        clients.run_load(
            port=server.port, path="/api/webhook", requests=bodies(10), connections=2, seconds=1, threads=2
        )
    counts = Counter(server.received)
    assert set(counts) == {body for body, _sig in bodies(10)}  # every body went out, and then again
    assert min(counts.values()) > 1


def test_wrk_reports_each_second_it_runs():
    seconds = []
    with RecordingServer() as server:
        clients.run_load(
            port=server.port,
            path="/api/webhook",
            requests=bodies(10),
            connections=2,
            seconds=2,
            each_second=lambda: seconds.append(1),
        )
    assert 1 <= len(seconds) <= 2  # the second one only when wrk ends a little after its 2 s


def test_a_one_shot_post_sends_the_body_and_its_signature_and_returns_the_status():
    async def post_twice(port):
        return [
            await clients.post_once(port, path, b'{"n": %d}' % n, f"sha256={n}")
            for n, path in enumerate(["/api/webhook", "/elsewhere"])
        ]

    with RecordingServer() as server:
        statuses = asyncio.run(post_twice(server.port))
    assert statuses == [200, 404]
    assert server.received == [b'{"n": 0}', b'{"n": 1}']
    assert server.signatures == ["sha256=0", "sha256=1"]


def test_wrk_counts_answers_other_than_2xx_as_errors():
    with RecordingServer() as server:
        result = clients.run_load(port=server.port, path="/elsewhere", requests=bodies(10), connections=2, seconds=1)
    assert result.requests > 10 and result.ok == 0 and result.errors == result.requests

"""Load generator and clients: wrk (with a Lua script cycling pre-signed bodies) for closed-loop load, one-shot
async POSTs for the open-loop end-to-end phase, and WebSocket connections (the ``websockets`` library)."""

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import connect

WRK_MISSING = "wrk is not installed: the bench's HTTP load generator; apt-get install wrk"

WRK_SCRIPT = r"""
-- Each thread takes every n-th line of the file (n = threads) and sends its share in order, so no two
-- requests carry the same body until a thread has used up its share; then it starts its share again.
-- setup() runs in wrk's main Lua state once per thread, before that thread's init(); args[3] is -t.
local threads_set_up = 0
setup = function(thread)
  thread:set("thread_index", threads_set_up)
  threads_set_up = threads_set_up + 1
end
local reqs = {}
local idx = 0
init = function(args)
  local f = assert(io.open(args[1], "r"))
  local thread_count = tonumber(args[3])
  local line_no = 0
  for line in f:lines() do
    if line_no % thread_count == thread_index then
      local body, sig = line:match("^(.*)\t([^\t]*)$")
      local headers = {["Content-Type"] = "application/json", ["X-Forwarded-Proto"] = "https"}
      if sig ~= "" then headers["X-Hub-Signature-256"] = sig end
      reqs[#reqs + 1] = wrk.format("POST", args[2], headers, body)
    end
    line_no = line_no + 1
  end
  f:close()
end
request = function()
  idx = idx % #reqs + 1
  return reqs[idx]
end
done = function(summary, latency, requests)
  io.write(string.format("BENCHRESULT %d %d %d %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass
class LoadResult:
    requests: int
    ok: int  # answered 2xx
    errors: int  # socket errors and non-2xx answers
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk_seconds(seconds: float) -> int:
    """How long wrk runs for ``seconds``: whole seconds, one at least."""
    return max(1, round(seconds))


def run_load(
    *,
    port: int,
    path: str,
    requests: list[tuple[bytes, str]],
    connections: int,
    seconds: float,
    threads: int = 2,
    each_second: Callable[[], None] = lambda: None,
) -> LoadResult:
    """Closed-loop load with wrk: ``connections`` clients POSTing the given (body, signature) pairs in turn;
    ``each_second()`` is called every second wrk runs (wrk itself says nothing until it ends)."""
    if not have_wrk():
        raise RuntimeError(WRK_MISSING)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script, bodies = Path(tmp) / "post.lua", Path(tmp) / "bodies.tsv"
        script.write_text(WRK_SCRIPT)
        bodies.write_bytes(b"".join(body + b"\t" + sig.encode() + b"\n" for body, sig in requests))
        argv = [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{wrk_seconds(seconds)}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            str(bodies),
            path,
            str(threads),
        ]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as wrk:
            while True:
                try:
                    out, err = wrk.communicate(timeout=1)
                    break
                except subprocess.TimeoutExpired:  # no output is lost: communicate() goes on where it stopped
                    each_second()
        if wrk.returncode:
            raise subprocess.CalledProcessError(wrk.returncode, argv, out, err)
    line = next(line for line in out.splitlines() if line.startswith("BENCHRESULT"))
    total, duration_us, connect_errors, _read, write, status, timeout, p50, p99, mx = map(int, line.split()[1:])
    # wrk counts a connection a server closes after its answer (gunicorn sync workers) as a read error
    # only when no response came; "status" is every answer >= 400.
    bad = status + connect_errors + write + timeout
    return LoadResult(total, total - status, bad, duration_us / 1e6, p50 / 1e3, p99 / 1e3, mx / 1e3)


async def post_once(port: int, path: str, body: bytes, sig: str) -> int:
    """One POST on a new connection, as Meta delivers a webhook, read to the end of the answer; its status code.
    On asyncio's streams, so that hundreds a second go out on time from the loop that also reads the socket
    under test."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Forwarded-Proto: https\r\nContent-Length: {len(body)}\r\n"
        )
        if sig:
            head += f"X-Hub-Signature-256: {sig}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length = next(
            (
                int(value)
                for name, _, value in (line.partition(":") for line in lines[1:])
                if name.lower() == "content-length"
            ),
            0,
        )
        await reader.readexactly(length)
        return int(lines[0].split()[1])
    finally:
        writer.close()


def quantiles_ms(seconds: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max of durations in seconds, in milliseconds."""
    if not seconds:
        return (0.0, 0.0, 0.0)
    ordered = sorted(seconds)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (pick(0.50), pick(0.99), ordered[-1] * 1000)


def open_websocket(port: int, path: str, *, open_timeout: float = 30) -> connect:
    """A WebSocket to Daphne on this machine; ``await`` it or use it with ``async with``. Nothing Daphne would pay
    for beyond the socket itself: no compression, no pings of the client's own (the library answers Daphne's);
    and no proxy taken from the environment, the server is local."""
    return connect(
        f"ws://127.0.0.1:{port}{path}",
        compression=None,
        proxy=None,
        ping_interval=None,
        open_timeout=open_timeout,
        close_timeout=5,
    )

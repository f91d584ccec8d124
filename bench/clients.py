"""Load generators and clients: wrk (with a Lua script cycling pre-signed bodies) or an asyncio HTTP/1.1
generator when wrk is missing, one-shot async POSTs, and a minimal WebSocket client (RFC 6455, text frames,
ping/pong, close) — the venv has no WebSocket client library and the bench needs nothing more."""
import asyncio
import base64
import json
import os
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

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
    tool: str
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


def ensure_wrk(log) -> bool:
    """wrk, installed with apt-get if missing and possible (Debian, root); else the Python generator is used."""
    if have_wrk():
        return True
    if shutil.which("apt-get") and os.geteuid() == 0:
        log("wrk not found: apt-get install -y wrk ...")
        subprocess.run(["apt-get", "install", "-y", "wrk"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return have_wrk()


def run_load(*, port: int, path: str, requests: list[tuple[bytes, str]], connections: int, seconds: float,
             threads: int = 2, use_wrk: bool = True) -> LoadResult:
    """Closed-loop load: ``connections`` clients POSTing the given (body, signature) pairs in turn."""
    if use_wrk and have_wrk():
        return _run_wrk(port=port, path=path, requests=requests, connections=connections, seconds=seconds, threads=threads)
    return asyncio.run(_python_load(port=port, path=path, requests=requests, connections=connections, seconds=seconds))


def _run_wrk(*, port, path, requests, connections, seconds, threads) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script, bodies = Path(tmp) / "post.lua", Path(tmp) / "bodies.tsv"
        script.write_text(WRK_SCRIPT)
        bodies.write_bytes(b"".join(body + b"\t" + sig.encode() + b"\n" for body, sig in requests))
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
             "-s", str(script), f"http://127.0.0.1:{port}", "--", str(bodies), path, str(threads)],
            capture_output=True, text=True, check=True,
        ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCHRESULT"))
    total, duration_us, connect, _read, write, status, timeout, p50, p99, mx = map(int, line.split()[1:])
    # wrk counts a connection a server closes after its answer (gunicorn sync workers) as a read error
    # only when no response came; "status" is every answer >= 400.
    bad = status + connect + write + timeout
    return LoadResult("wrk", total, total - status, bad, duration_us / 1e6, p50 / 1e3, p99 / 1e3, mx / 1e3)


async def _python_load(*, port, path, requests, connections, seconds) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    ok = 0
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**12))

    async def client():
        nonlocal errors, ok
        reader = writer = None
        while time.perf_counter() < deadline:
            body, sig = requests[next(counter) % len(requests)]
            started = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                status, keep = await _exchange(reader, writer, path, body, sig)
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                writer = None
                continue
            latencies.append(time.perf_counter() - started)
            if 200 <= status < 300:
                ok += 1
            else:
                errors += 1
            if not keep:
                writer.close()
                writer = None

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    q = _quantiles(latencies)
    return LoadResult("python", len(latencies), ok, errors, elapsed, q[0], q[1], q[2])


async def _exchange(reader, writer, path: str, body: bytes, sig: str) -> tuple[int, bool]:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Forwarded-Proto: https\r\nContent-Length: {len(body)}\r\n")
    if sig:
        head += f"X-Hub-Signature-256: {sig}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            keep = False
    if length:
        await reader.readexactly(length)
    return status, keep


async def post_once(port: int, path: str, body: bytes, sig: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        status, _ = await _exchange(reader, writer, path, body, sig)
        return status
    finally:
        writer.close()


def _quantiles(seconds: list[float]) -> tuple[float, float, float]:
    if not seconds:
        return (0.0, 0.0, 0.0)
    ordered = sorted(seconds)
    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (pick(0.50), pick(0.99), ordered[-1] * 1000)


def quantiles_ms(seconds: list[float]) -> tuple[float, float, float]:
    return _quantiles(seconds)


# --- a minimal WebSocket client ------------------------------------------------------------------


class WebSocketClosed(Exception):
    pass


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, path: str) -> "WebSocket":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status_line + b" ":
            writer.close()
            raise WebSocketClosed(f"handshake refused: {status_line.decode(errors='replace')}")
        return cls(reader, writer)

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)

    async def send_json(self, data) -> None:
        self._send_frame(0x1, json.dumps(data).encode())
        await self.writer.drain()

    async def recv(self) -> str:
        """The next text message; answers pings; raises WebSocketClosed on a close frame or EOF."""
        parts: list[bytes] = []
        while True:
            try:
                b1, b2 = await self.reader.readexactly(2)
                n = b2 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
                mask = await self.reader.readexactly(4) if b2 & 0x80 else None
                payload = await self.reader.readexactly(n)
            except (asyncio.IncompleteReadError, OSError) as exc:
                raise WebSocketClosed(str(exc)) from exc
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = b1 & 0x0F
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise WebSocketClosed(f"closed by server {payload[:2].hex()}")
            if opcode in (0x1, 0x2, 0x0):
                parts.append(payload)
                if b1 & 0x80:
                    return b"".join(parts).decode()

    async def close(self) -> None:
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
            await self.writer.drain()
        except OSError:
            pass
        self.writer.close()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0

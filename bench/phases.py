"""The measurements: the five the bench reports, and instruction counts when asked for. ``Bench.run()`` starts the topology,
measures in order, stops what it started."""

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections
from django.db.models import F, Q
from django.test import Client
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import WebSocketException
from websockets.protocol import State

from bench import clients, procs, seed
from bench.report import Row
from database.replica import replica_configured
from ops.progress import progress
from webhooks.models import WebhookEvent, WebhookEventState


@dataclass
class Options:
    admin_dsn: str
    database: str
    redis_port: int
    log_dir: Path
    server_settings: str
    web_workers: int
    worker_concurrency: int
    connections: int
    duration: float
    limit_duration: float
    pg_threads: int
    backlog: int
    drain_timeout: float
    e2e_rate: float
    e2e_duration: float
    conversations: int
    messages: int
    page_runs: int
    sockets: int
    socket_hold: float
    instruction_calls: int
    instruction_warmup: int
    keep_database: bool
    phases: tuple[str, ...]  # names from PHASES, in that order


# Distinct signed webhooks generated for the ingest phase, per second of its duration (about 1.5 s of
# generating for the default 20 s): above the do-nothing view's rate here, so every request is a new message.
INGEST_BODIES_PER_SECOND = 3000


class Bench:
    def __init__(self, options: Options, log, *, stream):
        self.o = options
        self.log = log
        self.stream = stream  # where the long phases show their progress (a bar on a terminal)
        self.rows: list[Row] = []
        self.procs = procs.Processes(logs=options.log_dir)
        self.secret = settings.META_APP_SECRET
        self.web_port = procs.free_port()
        self.ws_port = procs.free_port()
        self.number = None
        self.user = None

    @staticmethod
    def load() -> str:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())

    # --- orchestration -----------------------------------------------------------------------------

    def run(self) -> list[Row]:
        try:
            self.setup()
            for name in self.o.phases:
                self.settle()
                PHASES[name](self)
        finally:
            self.log("stopping everything the bench started ...")
            self.procs.stop_all()
            connection.close()
            if not self.o.keep_database:
                procs.drop_database(self.o.admin_dsn, self.o.database)
        return self.rows

    def settle(self) -> None:
        """Start each phase on a settled database: the seed (a million rows) and the backlog write gigabytes
        of WAL, and a checkpoint spread over the next phase slows every commit in it (seen: end-to-end p99
        x3). A forced checkpoint finishes that work before the phase, not during it."""
        started = time.perf_counter()
        try:
            with psycopg.connect(self.o.admin_dsn, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
        except psycopg.Error as exc:  # not a superuser: measure anyway, and say so
            self.log(f"  (could not CHECKPOINT before the phase: {exc})")
            return
        self.log(f"  checkpoint before the phase: {time.perf_counter() - started:.1f}s")

    def server_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "BENCH_CHILD"}
        env.update(
            DJANGO_SETTINGS_MODULE="bench.settings",
            BENCH_BASE_SETTINGS=self.o.server_settings,
            FRONTEND_URL="https://bench.example.com",
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            LOG_LEVEL=os.environ.get("BENCH_SERVER_LOG_LEVEL", "INFO"),
            PYTHONUNBUFFERED="1",
        )
        return env

    def setup(self) -> None:
        t = time.perf_counter()
        self.log(f"database {self.o.database}: drop, create, migrate ...")
        procs.recreate_database(self.o.admin_dsn, self.o.database)
        call_command("migrate", verbosity=0, interactive=False)
        self.log(
            f"  migrated in {time.perf_counter() - t:.1f}s; seeding {self.o.conversations:,} conversations and "
            f"{self.o.messages:,} messages with generate_series ..."
        )
        t = time.perf_counter()
        self.number = seed.seed_inbox(conversations=self.o.conversations, messages=self.o.messages)
        # Opening a conversation would enqueue a read receipt to Meta; the bench has no Graph API to call.
        type(self.number).objects.filter(pk=self.number.pk).update(send_read_receipts=False)
        self.seed_seconds = time.perf_counter() - t
        self.log(f"  seeded in {self.seed_seconds:.1f}s")
        from django.contrib.auth import get_user_model

        self.user = get_user_model().objects.create_superuser("bench", "bench@example.com", secrets.token_urlsafe(12))
        self.log(
            f"starting redis-server :{self.o.redis_port}, gunicorn :{self.web_port} ({self.o.web_workers} workers), "
            f"daphne :{self.ws_port}, celery worker (-c {self.o.worker_concurrency}) with {self.o.server_settings} ..."
        )
        procs.start_redis(self.procs, self.o.redis_port)
        env = self.server_env()
        _web, self.web_label = procs.start_web(self.procs, port=self.web_port, workers=self.o.web_workers, env=env)
        procs.start_daphne(self.procs, port=self.ws_port, env=env)
        procs.start_worker(self.procs, concurrency=self.o.worker_concurrency, env=env)
        self.redis = redis.Redis(port=self.o.redis_port)
        self.log(f"  up; logs in {self.o.log_dir}")

    def log_cpu(self, before: dict[str, float], seconds: float) -> dict[str, float]:
        """Where the cores went during a phase, per process kind (cores used on average); logged and returned."""
        after = self.procs.cpu_snapshot()
        used = {name: (after[name] - before.get(name, 0.0)) / seconds for name in after}
        parts = ", ".join(f"{name} {cores:.2f}" for name, cores in sorted(used.items(), key=lambda kv: -kv[1]))
        self.log(f"  cores used: {parts} (of {len(os.sched_getaffinity(0))})")
        return used

    @staticmethod
    def cpu_per_request(used: dict[str, float], rate: float) -> tuple[float | None, str]:
        """Milliseconds of CPU per request, all processes together, and the parts worth naming."""
        if not rate:
            return None, "no request answered"
        parts = {name: cores * 1000 / rate for name, cores in used.items()}
        detail = ", ".join(
            f"{name} {ms:.2f}" for name, ms in sorted(parts.items(), key=lambda kv: -kv[1]) if ms >= 0.01
        )
        return sum(parts.values()), detail

    def signed_inbound(self, wamid: str, customer: int) -> tuple[bytes, str]:
        return seed.signed_inbound(wamid=wamid, customer=customer, secret=self.secret)

    def pending_count(self, lo: int, hi: int) -> int:
        return WebhookEvent.objects.filter(pk__gte=lo, pk__lte=hi, state=WebhookEventState.PENDING).count()

    def discard_backlog(self) -> None:
        """Drop queued tasks and pending events so the next phase starts with an idle worker."""
        from webhooks.services import clear_drain_flags

        self.redis.delete("celery")
        WebhookEvent.objects.filter(state=WebhookEventState.PENDING).delete()
        clear_drain_flags()

    def seconds_until_applied(self, first_id: int, *, timeout: float) -> str:
        """How long until the worker has applied every event from ``first_id`` on, as text (polled every 50 ms)."""
        started = time.perf_counter()
        while WebhookEvent.objects.filter(pk__gte=first_id, state=WebhookEventState.PENDING).exists():
            if time.perf_counter() - started > timeout:
                return f"not within {timeout:.0f}s"
            time.sleep(0.05)
        return f"{time.perf_counter() - started:.1f}s"

    # --- 1. ingest -------------------------------------------------------------------------------------

    def ingest(self) -> None:
        o = self.o
        # A new message in every request (a redelivery would cost the worker next to nothing): enough bodies
        # for INGEST_BODIES_PER_SECOND over the whole run, which no server configuration here reaches.
        pool = int(INGEST_BODIES_PER_SECOND * o.duration)
        requests = [self.signed_inbound(f"wamid.INGEST{n}", 1 + n % o.conversations) for n in range(pool)]
        size = len(requests[0][0])
        status = procs.http_status(
            self.web_port,
            "/api/webhook",
            method="POST",
            body=requests[0][0],
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": requests[0][1]},
        )
        noop_status = procs.http_status(self.web_port, "/bench/noop", method="POST", body=requests[0][0])
        if status != 200 or noop_status != 200:
            raise RuntimeError(f"webhook answered {status}, /bench/noop {noop_status}: see {o.log_dir}/gunicorn.log")
        tool = "wrk -t2"
        first_id = (WebhookEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
        self.log(
            f"(load {self.load()}) "
            f"1. ingest: {o.connections} connections x {o.duration:.0f}s of signed {size}-byte webhooks ({tool}) ..."
        )
        cpu_before = self.procs.cpu_snapshot()
        result = self.load_with_progress("ingest", path="/api/webhook", requests=requests, seconds=o.duration)
        webhook_cpu, webhook_cpu_detail = self.cpu_per_request(self.log_cpu(cpu_before, result.seconds), result.rate)
        stored = WebhookEvent.objects.filter(pk__gte=first_id).count()
        applied = WebhookEvent.objects.filter(pk__gte=first_id).exclude(state=WebhookEventState.PENDING).count()
        # "The worker keeping up at that rate": busy rounds are a quarter of a second apart, so that much is
        # pending at any moment even when it keeps up; one that fell behind has seconds of arrivals left.
        behind = (stored - applied) / result.rate if result.rate else 0.0
        caught_up = self.seconds_until_applied(first_id, timeout=15.0)
        repeats = max(0, result.requests - pool)
        self.log(
            f"  {result.requests:,} requests, {result.ok:,} 2xx, {result.errors:,} errors; {stored:,} events stored, "
            f"{applied:,} applied by the worker meanwhile, the rest {caught_up} after the load stopped; "
            f"{repeats:,} repeated a delivery (pool of {pool:,})"
        )
        self.discard_backlog()
        conds = (
            f"{o.connections} conns, {result.seconds:.0f}s, {size} B body, {self.web_label}, "
            f"worker -c {o.worker_concurrency} running, {tool}"
        )
        deliveries = (
            "every request a new message" if not repeats else f"{repeats:,} redeliveries (pool of {pool:,} ran out)"
        )
        self.rows += [
            Row(
                "1",
                "ingest: webhook POSTs answered 2xx",
                result.rate,
                "/s",
                conds + f"; {result.errors} errors; {stored:,} rows stored",
                1000,
            ),
            Row("1", "ingest: latency p50", result.p50_ms, "ms", conds),
            Row("1", "ingest: latency p99", result.p99_ms, "ms", conds, 100, higher_is_better=False),
            Row("1", "ingest: latency max", result.max_ms, "ms", conds),
            Row(
                "1",
                "worker applied during ingest",
                applied / result.seconds,
                "events/s",
                f"same {result.seconds:.0f}s, alongside ingest on the same 2 cores, {deliveries}",
            ),
            Row(
                "1",
                "worker: behind when the load stopped",
                behind,
                "s",
                f"{stored - applied:,} of {stored:,} events not applied yet, in seconds of arrivals at the ingest rate; "
                f"all applied {caught_up} later",
                1,
                higher_is_better=False,
            ),
        ]
        self.log(f"1b. limit: /bench/noop, {o.connections} connections x {o.limit_duration:.0f}s ...")
        cpu_before = self.procs.cpu_snapshot()
        noop = self.load_with_progress(
            "do-nothing view", path="/bench/noop", requests=requests, seconds=o.limit_duration
        )
        noop_cpu, noop_cpu_detail = self.cpu_per_request(self.log_cpu(cpu_before, noop.seconds), noop.rate)
        self.log(f"1c. limit: raw single-row INSERTs, {o.pg_threads} psycopg threads x {o.limit_duration:.0f}s ...")
        inserts = self.raw_insert_rate(body_size=size)
        self.rows += [
            Row(
                "1",
                "limit: do-nothing Django POST view",
                noop.rate,
                "/s",
                f"{o.connections} conns, {noop.seconds:.0f}s, same body and gunicorn; p50 {noop.p50_ms:.1f} / p99 {noop.p99_ms:.1f} ms",
            ),
            Row(
                "1",
                "  ratio webhook / do-nothing view",
                result.rate / noop.rate if noop.rate else None,
                "x",
                "share of the HTTP stack's ceiling",
            ),
            # CPU per request moves less with the machine than rates do: compare it between runs and changes.
            Row(
                "1",
                "ingest: CPU per webhook, all processes",
                webhook_cpu,
                "ms",
                f"{webhook_cpu_detail}; worker applying meanwhile",
            ),
            Row("1", "limit: CPU per do-nothing request", noop_cpu, "ms", noop_cpu_detail),
            Row(
                "1",
                "limit: PostgreSQL raw single-row INSERT",
                inserts,
                "/s",
                f"psycopg, {o.pg_threads} threads, autocommit, {o.limit_duration:.0f}s, {size} B text + unique key, fsync on",
            ),
            Row(
                "1",
                "  ratio webhook / raw INSERT",
                result.rate / inserts if inserts else None,
                "x",
                "share of the database's single-row ceiling",
            ),
        ]

    def load_with_progress(self, desc: str, *, path: str, requests: list[tuple[bytes, str]], seconds: float):
        """wrk against the web server, its seconds counted as it runs."""
        whole_seconds = clients.wrk_seconds(seconds)
        with progress(self.stream, total=whole_seconds, desc=desc, unit="second") as bar:
            result = clients.run_load(
                port=self.web_port,
                path=path,
                requests=requests,
                connections=self.o.connections,
                seconds=seconds,
                each_second=bar.update,
            )
            bar.update_to(whole_seconds)
        return result

    def raw_insert_rate(self, *, body_size: int) -> float:
        dsn = f"{self.o.admin_dsn.rsplit('/', 1)[0]}/{self.o.database}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE bench_raw_insert (id bigserial PRIMARY KEY, wamid text UNIQUE, body text, received_at timestamptz DEFAULT now())"
            )
        body = "x" * body_size
        counts = [0] * self.o.pg_threads
        stop = time.perf_counter() + self.o.limit_duration

        def worker(index: int) -> None:
            with psycopg.connect(dsn, autocommit=True) as conn:
                n = 0
                while time.perf_counter() < stop:
                    conn.execute(
                        "INSERT INTO bench_raw_insert (wamid, body) VALUES (%s, %s)",
                        (f"w{index}-{n}", body),
                        prepare=True,
                    )
                    n += 1
                counts[index] = n

        started = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(self.o.pg_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE bench_raw_insert")
        return sum(counts) / elapsed

    # --- 1d. instructions per request (opt-in) ------------------------------------------------------------

    def instructions(self) -> None:
        """Instructions one web process executes per webhook and per do-nothing request (callgrind): unlike every
        timing here, the same in every run, so the figure to compare two versions of the path with."""
        valgrind = shutil.which("valgrind")
        if not (valgrind and shutil.which("callgrind_control")):
            self.log("1d. instructions: valgrind is not installed (apt-get install valgrind); phase skipped")
            return
        warm, calls = self.o.instruction_warmup, self.o.instruction_calls
        # Each run gets a Redis database of its own, where no worker listens: the first webhook enqueues a drain
        # (a warm-up call) and no drain runs, so every counted webhook makes its one Redis round trip, as under
        # traffic (the drain flag's SET NX). One process serves both paths in turn, in process and served alike
        # (each process starts in about 20 s under callgrind); the two run side by side.
        paths = ["/api/webhook", "/bench/noop"]
        in_process_db, served_db = 9, 11
        self.log(f"(load {self.load()}) 1d. instructions: callgrind, {calls} calls per path counted after {warm} ...")
        started = time.perf_counter()
        module_args = ["--warm", str(warm), "--calls", str(calls), "--customers", str(self.o.conversations)]
        for path in paths:
            module_args += ["--path", path]
        with ThreadPoolExecutor(max_workers=2) as pool:
            in_process = pool.submit(
                self.callgrind_module_run, valgrind, module_args, redis_db=in_process_db, what=" and ".join(paths)
            )
            served = pool.submit(
                self.instructions_served, valgrind, paths=paths, warm=warm, calls=calls, redis_db=served_db
            )
            per = {path: counted / calls for path, counted in zip(paths, in_process.result(), strict=True)}
            per_served = {path: counted / calls for path, counted in zip(paths, served.result(), strict=True)}
        # One full round outside the window, then the rest (two more rounds with the default --instruction-calls).
        few = min(settings.WEBHOOK_DRAIN_BATCH, calls)
        per_event = self.instructions_drained(valgrind, warm=few, events=calls) / calls
        self.log(f"  counted in {time.perf_counter() - started:.0f}s")
        for database in (in_process_db, served_db):
            redis.Redis(port=self.o.redis_port, db=database).flushdb()
        self.discard_backlog()
        conds = (
            f"callgrind, config.wsgi handed calls {warm + 1}-{warm + calls} directly (no HTTP), production "
            f"settings, distinct signed deliveries; no drain running: one Redis round trip per webhook"
        )
        served_conds = (
            f"callgrind, the one worker of config/bin/web (gunicorn) serving {calls} requests after "
            f"{warm + 1}, each on a new connection: the app plus gunicorn's HTTP (kernel time not counted)"
        )
        self.rows += [
            Row("1", "ingest: instructions per webhook", per["/api/webhook"] / 1000, "k", conds),
            Row("1", "limit: instructions per do-nothing request", per["/bench/noop"] / 1000, "k", conds),
            Row(
                "1",
                "  ratio webhook / do-nothing (instructions)",
                per["/api/webhook"] / per["/bench/noop"],
                "x",
                "the same in every run: compare versions with it",
            ),
            Row("1", "ingest: instructions per webhook, served", per_served["/api/webhook"] / 1000, "k", served_conds),
            Row(
                "1",
                "limit: instructions per do-nothing request, served",
                per_served["/bench/noop"] / 1000,
                "k",
                served_conds,
            ),
            Row(
                "2",
                "processing: instructions per event",
                per_event / 1000,
                "k",
                f"callgrind, one process draining {calls:,} pending deliveries (each a seeded customer's new text) in "
                f"rounds of {settings.WEBHOOK_DRAIN_BATCH} after {few:,} others, as a worker's drain does",
            ),
        ]

    def instructions_drained(self, valgrind: str, *, warm: int, events: int) -> int:
        """Instructions one process takes to apply ``events`` new pending deliveries (webhooks.drain's
        rounds, realtime pushes included) after ``warm`` others."""
        from bench.instructions import signed_deliveries

        self.discard_backlog()
        WebhookEvent.objects.bulk_create(
            WebhookEvent(raw_body=body.decode(), signature=signature, phone_number_id=self.number.phone_number_id)
            for body, signature in signed_deliveries(
                count=warm + events, secret=self.secret, customers=self.o.conversations
            )
        )
        redis_db = 15  # of its own, as every callgrind run's
        (counted,) = self.callgrind_module_run(
            valgrind, ["--drain", "--warm", str(warm)], redis_db=redis_db, what=f"a drain of {warm + events} events"
        )
        redis.Redis(port=self.o.redis_port, db=redis_db).flushdb()
        if left := WebhookEvent.objects.filter(state=WebhookEventState.PENDING).count():
            raise RuntimeError(f"the drain under callgrind left {left} of {warm + events} events pending")
        return counted

    def callgrind_module_run(self, valgrind: str, args: list[str], *, redis_db: int, what: str) -> list[int]:
        """Instructions in each counted window of one ``python -m bench.instructions ARGS`` under
        callgrind (with the servers' environment and a Redis database of its own): of each three dumps, the third
        less the second (what asking for a dump costs)."""
        env = dict(self.server_env(), REDIS_URL=f"redis://127.0.0.1:{self.o.redis_port}/{redis_db}")
        with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as out:
            result = subprocess.run(
                [
                    valgrind,
                    "--tool=callgrind",
                    f"--callgrind-out-file={out}/callgrind",
                    sys.executable,
                    "-m",
                    "bench.instructions",
                    *args,
                ],
                cwd=procs.ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
                check=False,
            )
            if result.returncode:
                raise RuntimeError(f"callgrind run of {what} failed: {result.stderr[-2000:]}")
            return counted_windows(sorted(Path(out).glob("callgrind.*"), key=lambda f: int(f.suffix[1:])), what=what)

    def instructions_served(
        self, valgrind: str, *, paths: list[str], warm: int, calls: int, redis_db: int
    ) -> list[int]:
        """Instructions the one gunicorn worker of ``config/bin/web`` executes serving ``calls`` POSTs of distinct
        deliveries to each of ``paths`` in turn after ``warm`` others, under callgrind, each on a new connection.

        The window is marked from inside the worker: valgrind's gdbserver, which ``callgrind_control`` talks to,
        does not follow a forked process. callgrind runs with ``--dump-before=sched_yield`` and the bench's
        ``/bench/callgrind-dump`` view calls ``os.sched_yield()``, which nothing else in the worker calls; as in
        process, a dump after the warm-up, one right after it and one after the counted calls, and the third less
        the second (each holds the tail of one dump request and the head of the next)."""
        from bench.instructions import signed_deliveries

        port = procs.free_port()
        with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as out:
            # config/bin/web runs "$PYTHON -m gunicorn": the launcher puts valgrind in front (workers are forks,
            # which valgrind follows; each process writes its own files).
            launcher = Path(out) / "python"
            launcher.write_text(
                f'#!/bin/sh\nexec "{valgrind}" --tool=callgrind --callgrind-out-file="{out}/callgrind.%p" '
                f'--dump-before=sched_yield "{sys.executable}" "$@"\n'
            )
            launcher.chmod(0o755)
            env = dict(
                self.server_env(),
                REDIS_URL=f"redis://127.0.0.1:{self.o.redis_port}/{redis_db}",
                WEB_BIND=f"127.0.0.1:{port}",
                WEB_WORKERS="1",
                WEB_TIMEOUT="1800",
                PYTHON=str(launcher),
            )
            argv, _label = procs.web_argv(port, 1)
            started = procs.Processes(logs=self.o.log_dir)  # one per run: the runs are threads
            name = f"gunicorn-callgrind-{redis_db}"
            web = started.start(name, argv, env=env)

            def worker_alive() -> bool:
                # A worker killed under valgrind (SIGILL: an instruction it cannot run, e.g. a C extension built
                # for newer CPUs) is replaced, and its request retried, for ever: stop at the first.
                started.check_alive()
                log = (self.o.log_dir / f"{name}.log").read_text(errors="replace")
                if "was sent SIG" in log or "Worker exiting" in log:
                    raise RuntimeError(f"gunicorn's worker died under callgrind:\n{log[-3000:]}")
                return True

            def post(to: str, body: bytes = b"", headers: dict | None = None, expected: int = 200) -> None:
                try:
                    status = procs.http_status(port, to, method="POST", body=body, timeout=120, headers=headers)
                except OSError:
                    worker_alive()
                    raise
                if status != expected:
                    raise RuntimeError(f"{to} answered {status} under callgrind: see {self.o.log_dir}")

            def serve(path: str, deliveries: list[tuple[bytes, str]]) -> None:
                for body, signature in deliveries:
                    post(path, body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature})

            try:
                # The first request waits until gunicorn listens.
                procs.wait_for(
                    lambda: worker_alive() and procs.http_status(port, "/api/webhook", timeout=600) == 403,
                    timeout=900,
                    interval=1,
                    what="gunicorn under callgrind",
                )
                for path in paths:
                    bodies = signed_deliveries(count=warm + calls, secret=self.secret, customers=self.o.conversations)
                    serve(path, bodies[:warm])
                    post("/bench/callgrind-dump", expected=204)
                    post("/bench/callgrind-dump", expected=204)
                    serve(path, bodies[warm:])
                    post("/bench/callgrind-dump", expected=204)
            finally:
                started.stop(web, timeout=600)
            dumps = sorted(Path(out).glob("callgrind.*.*"), key=lambda f: int(f.suffix[1:]))
            return counted_windows(dumps, what="gunicorn's worker", windows=len(paths))

    # --- 2. processing -----------------------------------------------------------------------------

    def processing(self) -> None:
        o = self.o
        scaled = "" if o.backlog >= 50_000 else " (scaled from 50,000: --backlog 50000)"
        self.log(
            f"(load {self.load()}) 2. processing: storing {o.backlog:,} pending events with generate_series{scaled} ..."
        )
        lo, hi = seed.store_backlog(count=o.backlog, conversations=o.conversations, seeded_messages=o.messages)
        remaining, drain = self.drain_stored(lo, hi)
        done = o.backlog - remaining
        broken = (
            WebhookEvent.objects.filter(pk__gte=lo, pk__lte=hi)
            .filter(Q(state=WebhookEventState.FAILED) | ~Q(item_errors=[]))
            .count()
        )
        rate = done / drain
        self.log(
            f"  {done:,} applied in {drain:.1f}s ({rate:,.0f}/s), {remaining:,} left, {broken} failed or with item errors"
        )
        if remaining:
            self.discard_backlog()
        conds = (
            f"{o.backlog:,} events{scaled}, half inbound texts, half 'delivered' statuses; "
            f"worker prefork -c {o.worker_concurrency}, {settings.WEBHOOK_DRAIN_CONCURRENCY} drains, 1 update per event"
        )
        self.rows += [
            Row("2", "processing: updates applied by the worker", rate, "/s", conds + f"; {broken} errors", 1000),
            Row(
                "2",
                f"processing: drain of {o.backlog:,} backlog",
                drain if not remaining else None,
                "s",
                conds + (f"; NOT drained, {remaining:,} left after {o.drain_timeout:.0f}s" if remaining else ""),
            ),
            Row(
                "2",
                "  projected drain of 50,000",
                50_000 / rate if rate else None,
                "s",
                "at the rate above",
                50,
                higher_is_better=False,
            ),
        ]

    def drain_stored(self, lo: int, hi: int) -> tuple[int, float]:
        """Have the worker drain the pending events ``lo``..``hi``, as the webhook view would (one drain requested);
        the events still pending when it finished or gave up after --drain-timeout, and the seconds it took."""
        from webhooks.services import request_drain

        count = hi - lo + 1
        started = time.perf_counter()
        request_drain()
        self.log("  drain requested; draining ...")
        remaining = count
        with progress(self.stream, total=count, desc="applied", unit="event") as bar:
            while remaining and time.perf_counter() - started < self.o.drain_timeout:
                time.sleep(0.1)  # a 10,000-event drain takes about 2 s: a tenth of a second is 5 % of it
                remaining = self.pending_count(lo, hi)
                bar.update_to(count - remaining)
                self.procs.check_alive()
        return remaining, time.perf_counter() - started

    # --- 3. end to end -----------------------------------------------------------------------------

    def access_token(self) -> str:
        # An access token alone: a refresh token is recorded in the database (the blacklist's outstanding tokens),
        # which an async caller (the end-to-end and socket phases) may not do.
        from rest_framework_simplejwt.tokens import AccessToken

        return str(AccessToken.for_user(self.user))

    def end_to_end(self) -> None:
        o = self.o
        total = int(o.e2e_rate * o.e2e_duration)
        self.log(
            f"(load {self.load()}) "
            f"3. end to end: {total:,} webhooks at {o.e2e_rate:.0f}/s -> frames at a /ws/inbox/ client ..."
        )
        bodies = [
            (f"wamid.E2E{n}", *self.signed_inbound(f"wamid.E2E{n}", 1 + (7 * n) % o.conversations))
            for n in range(total)
        ]
        cpu_before = self.procs.cpu_snapshot()
        started = time.perf_counter()
        result = asyncio.run(self._e2e(bodies))
        self.log_cpu(cpu_before, time.perf_counter() - started)
        sent_at, received_at, post_latency, statuses = result
        latencies = [received_at[w] - sent_at[w] for w in received_at if w in sent_at]
        p50, p99, mx = clients.quantiles_ms(latencies)
        missing = total - len(latencies)
        non2xx = sum(1 for s in statuses if not 200 <= s < 300)
        post = clients.quantiles_ms(post_latency)
        self.log(
            f"  {len(latencies):,}/{total:,} frames; p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {mx:.0f} ms; POST p99 {post[1]:.0f} ms"
        )
        self.discard_backlog()
        conds = (
            f"{o.e2e_rate:.0f} POST/s open loop for {o.e2e_duration:.0f}s, 1 socket (superuser, JWT), "
            f"{len(bodies[0][1])} B body; {missing} frames missing, {non2xx} non-2xx"
        )
        self.rows += [
            Row("3", "end to end: POST -> WS frame p50", p50 if latencies else None, "ms", conds),
            Row(
                "3",
                "end to end: POST -> WS frame p99",
                p99 if latencies else None,
                "ms",
                conds + f"; max {mx:.0f} ms",
                250,
                higher_is_better=False,
            ),
        ]

    async def _e2e(self, bodies):
        ws = await clients.open_websocket(self.ws_port, f"/ws/inbox/?token={self.access_token()}")
        sent_at: dict[str, float] = {}
        received_at: dict[str, float] = {}
        post_latency: list[float] = []
        statuses: list[int] = []
        wanted = {b[0] for b in bodies}

        async def reader():
            async for message in ws:
                frame = json.loads(message)
                if frame.get("type") == "message.created":
                    wamid = frame["payload"]["message"]["wamid"]
                    if wamid in wanted:
                        received_at.setdefault(wamid, time.perf_counter())

        async def post(wamid, body, sig):
            sent_at[wamid] = time.perf_counter()
            try:
                statuses.append(await clients.post_once(self.web_port, "/api/webhook", body, sig))
            except OSError:
                statuses.append(0)
            post_latency.append(time.perf_counter() - sent_at[wamid])

        reading = asyncio.create_task(reader())
        await asyncio.sleep(0.5)
        start = time.perf_counter()
        tasks = []
        with progress(self.stream, total=len(bodies), desc="posted", unit="webhook") as bar:
            for n, (wamid, body, sig) in enumerate(bodies):
                delay = start + n / self.o.e2e_rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(post(wamid, body, sig)))
                bar.update()
        await asyncio.gather(*tasks)
        deadline = time.perf_counter() + 15
        while len(received_at) < len(bodies) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        reading.cancel()
        await ws.close()
        return sent_at, received_at, post_latency, statuses

    # --- 4. pages ------------------------------------------------------------------------------------

    def pages(self) -> None:
        from conversations.models import Conversation

        o = self.o
        self.log(
            f"(load {self.load()}) "
            f"4. pages: /inbox/ and its views, /inbox/<id>/ and searches in-process, {o.conversations:,} conversations / "
            f"{o.messages:,} messages ..."
        )
        client = Client(HTTP_HOST="localhost")
        client.force_login(self.user)
        busiest = Conversation.objects.order_by("-last_message_at").values_list("pk", flat=True).first()
        per_thread = o.messages // max(1, o.conversations)
        # A team's share: a third of the conversations are the reader's (Mine), the rest nobody's (Unassigned).
        Conversation.objects.alias(third=F("id") % 3).filter(third=0).update(assignee=self.user)
        with connection.cursor() as cursor:  # as autovacuum would soon: the planner knows a third are the reader's
            cursor.execute("ANALYZE conversations_conversation")
        rare = seed.RARE_WORD
        pages = (
            ("/inbox/", "/inbox/"),
            ("/inbox/?view=mine", "/inbox/?view=mine"),
            ("/inbox/?view=unassigned", "/inbox/?view=unassigned"),
            ("/inbox/<id>/", f"/inbox/{busiest}/"),
            # Searches: the read replica answers the API's when the servers have one (DATABASE_REPLICA_URL,
            # --replica-pg). The message search's word is in one message of seed.RARE_EVERY.
            ("/api/conversations/?q=", "/api/conversations/?q=Customer+7"),
            (f"/inbox/?q={rare} (messages)", f"/inbox/?q={rare}"),
            ("/api/messages/search/?q=", f"/api/messages/search/?q={rare}"),
            # A word in one message of len(seed.WORDS): its first page is found among the recent messages.
            (f"/api/messages/search/?q={seed.WORDS[2]}", f"/api/messages/search/?q={seed.WORDS[2]}"),
        )
        conds = (
            f"{o.conversations:,} convs, {o.messages:,} msgs (~{per_thread}/thread), superuser, "
            f"Django test client in-process, median of {o.page_runs}"
        )
        for label, url in pages:
            self._page_rows(client, label, url, conds)
        # The same conversations over three numbers, as a supervisor of several (or a superuser) lists them.
        with seed.spread_over_numbers(3):
            self._page_rows(client, "/inbox/ (3 numbers)", "/inbox/", conds + "; a third of them on each number")

    def _page_rows(self, client: Client, label: str, url: str, conds: str) -> None:
        o = self.o
        assert client.get(url).status_code == 200, url  # warm-up (templates, caches)
        queries: list[tuple[float, str]] = []
        by_database: Counter[str] = Counter()

        def count(execute, sql, params, many, context):
            by_database[context["connection"].alias] += 1
            t0 = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                queries.append(((time.perf_counter() - t0) * 1000, sql))

        with contextlib.ExitStack() as wrapped:
            for db in connections.all():
                wrapped.enter_context(db.execute_wrapper(count))
            response = client.get(url)
        assert response.status_code == 200
        times = []
        for _ in range(o.page_runs):
            t = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - t) * 1000)
        med = statistics.median(times)
        sql_ms = sum(ms for ms, _ in queries)
        slowest_ms, slowest = max(queries)
        self.log(f"  {label}: SQL {sql_ms:.0f} ms in total; slowest {slowest_ms:.0f} ms: {slowest[:160]}...")
        self.log(
            f"  {label}: {len(queries)} queries, median {med:.1f} ms, max {max(times):.1f} ms ({len(response.content):,} bytes)"
        )
        if replica_configured():
            conds += "; queries on " + ", ".join(f"{db} {n}" for db, n in sorted(by_database.items()))
        self.rows += [
            Row("4", f"page {label}: SQL queries", len(queries), "", conds, 15, higher_is_better=False),
            Row(
                "4",
                f"page {label}: server time",
                med,
                "ms",
                conds + f"; max {max(times):.0f} ms; SQL {sql_ms:.0f} ms of it, slowest query {slowest_ms:.0f} ms",
                100,
                higher_is_better=False,
            ),
        ]

    # --- 5. idle websockets ---------------------------------------------------------------------------

    def websockets(self) -> None:
        o = self.o
        daphne = next(p for name, p in self.procs.started if name == "daphne")
        before = procs.rss_kib(daphne.pid)
        self.log(
            f"(load {self.load()}) "
            f"5. websockets: opening {o.sockets:,} idle /ws/inbox/ sockets to one Daphne (RSS {before / 1024:.0f} MiB) ..."
        )
        opened, alive, seconds = asyncio.run(self._idle_sockets(daphne.pid))
        after = self.idle_rss
        per = (after - before) / max(1, opened)
        projected = (before + per * 5000) / 1024
        self.log(
            f"  {opened:,} opened in {seconds:.1f}s, {alive:,} still open after {o.socket_hold:.0f}s; RSS {after / 1024:.0f} MiB "
            f"({per:.0f} KiB/socket)"
        )
        conds = f"1 Daphne, JWT sockets, {o.socket_hold:.0f}s idle hold; RSS {before / 1024:.0f} MiB before"
        self.rows += [
            Row(
                "5",
                "websockets: idle sockets held",
                alive,
                "",
                f"{o.sockets:,} attempted, opened in {seconds:.0f}s; " + conds,
                o.sockets,
            ),
            Row("5", f"websockets: Daphne RSS with {alive:,}", after / 1024, "MiB", conds + f"; {per:.0f} KiB/socket"),
            Row(
                "5",
                "  projected RSS with 5,000",
                projected if o.sockets < 5000 else after / 1024,
                "MiB",
                "linear from the line above" if o.sockets < 5000 else "measured",
                1024,
                higher_is_better=False,
            ),
        ]

    async def _idle_sockets(self, pid: int):
        token = self.access_token()
        sockets: list[ClientConnection] = []
        failures: list[str] = []
        gate = asyncio.Semaphore(50)

        async def open_one(bar):
            async with gate:
                try:
                    sockets.append(await clients.open_websocket(self.ws_port, f"/ws/inbox/?token={token}"))
                except (TimeoutError, OSError, WebSocketException) as exc:
                    failures.append(repr(exc))
                bar.update()

        started = time.perf_counter()
        with progress(self.stream, total=self.o.sockets, desc="opened", unit="socket") as bar:
            await asyncio.gather(*(open_one(bar) for _ in range(self.o.sockets)))
        seconds = time.perf_counter() - started
        if failures:
            self.log(f"  {len(failures)} failed, e.g. {failures[0]}")
        await asyncio.sleep(self.o.socket_hold)
        self.idle_rss = procs.rss_kib(pid)
        # Opening thousands takes longer than Daphne's ping timeout: a socket still open is one whose pings were
        # answered all along (the library answers them as they arrive, read or not).
        alive = sum(1 for ws in sockets if ws.state is State.OPEN)
        await asyncio.gather(*(ws.close() for ws in sockets))
        return len(sockets), alive, seconds

    # --- 6. scale: a second worker process, a second host stack ------------------------------------------------

    def scale(self) -> None:
        """The same work with one worker process and with two, and one gunicorn against two host stacks (each
        its own gunicorn and worker, as on two hosts, here on the same cores): the ratio of the two. On a machine
        whose cores the first stack already fills, the ratio shows what the second costs, not what it gains."""
        o = self.o
        env = self.server_env()
        self.log(f"(load {self.load()}) 6. scale: one worker process (-c {o.worker_concurrency}) ...")
        drained = [self.drain_rate(prefix="wamid.SCALEDRAIN1-", first_outbound=o.backlog)]
        self.log("  one host stack: ingest on one gunicorn ...")
        answered = [self.answered_rate([self.web_port], prefix="wamid.SCALEPOST1-")]
        second_port = procs.free_port()
        self.log(f"  starting a second host stack: gunicorn :{second_port} ({o.web_workers} workers), worker ...")
        second_worker = procs.start_worker(self.procs, concurrency=o.worker_concurrency, env=env, name="worker-2")
        second_web, _label = procs.start_web(
            self.procs, port=second_port, workers=o.web_workers, env=env, name="gunicorn-2"
        )
        try:
            self.log("  two worker processes ...")
            drained.append(self.drain_rate(prefix="wamid.SCALEDRAIN2-", first_outbound=2 * o.backlog))
            self.log("  two host stacks: ingest on both gunicorns ...")
            answered.append(self.answered_rate([self.web_port, second_port], prefix="wamid.SCALEPOST2-"))
        finally:
            self.procs.stop(second_web)
            self.procs.stop(second_worker)
        cores = len(os.sched_getaffinity(0))
        overhead = f"on {cores} cores the first already uses: the ratio shows the second's overhead, not its gain"
        self.rows += [
            Row(
                "6",
                "scale: updates applied, 1 worker process",
                drained[0],
                "/s",
                f"{o.backlog:,} events, -c {o.worker_concurrency}",
            ),
            Row(
                "6",
                "scale: updates applied, 2 worker processes",
                drained[1],
                "/s",
                f"the same, -c {o.worker_concurrency} each, {settings.WEBHOOK_DRAIN_CONCURRENCY} drains at most",
            ),
            Row("6", "  ratio 2 worker processes / 1", drained[1] / drained[0] if drained[0] else None, "x", overhead),
            Row(
                "6",
                "scale: webhooks answered, 1 host stack",
                answered[0],
                "/s",
                f"{o.connections} conns, {o.limit_duration:.0f}s, gunicorn {o.web_workers} workers + worker",
            ),
            Row(
                "6",
                "scale: webhooks answered, 2 host stacks",
                answered[1],
                "/s",
                f"{o.connections} conns split over both, each its own gunicorn {o.web_workers} workers + worker",
            ),
            Row("6", "  ratio 2 host stacks / 1", answered[1] / answered[0] if answered[0] else None, "x", overhead),
        ]

    def drain_rate(self, *, prefix: str, first_outbound: int) -> float:
        """Updates applied per second draining a fresh backlog of --backlog events (its statuses on messages
        no earlier backlog touched, from ``first_outbound`` on)."""
        o = self.o
        lo, hi = seed.store_backlog(
            count=o.backlog,
            conversations=o.conversations,
            seeded_messages=o.messages,
            prefix=prefix,
            first_outbound=first_outbound,
        )
        remaining, seconds = self.drain_stored(lo, hi)
        self.log(f"  {o.backlog - remaining:,} applied in {seconds:.1f}s, {remaining:,} left")
        if remaining:
            self.discard_backlog()
        return (o.backlog - remaining) / seconds

    def answered_rate(self, ports: list[int], *, prefix: str) -> float:
        """Webhooks answered 2xx per second, --connections split over the gunicorns on ``ports`` for
        --limit-duration seconds, every request a new message; the worker(s) apply them meanwhile."""
        o = self.o
        pool = int(INGEST_BODIES_PER_SECOND * o.limit_duration)
        requests = [self.signed_inbound(f"{prefix}{n}", 1 + n % o.conversations) for n in range(pool)]
        share = len(requests) // len(ports)
        with ThreadPoolExecutor(max_workers=len(ports)) as pool_of_loads:
            results = list(
                pool_of_loads.map(
                    lambda index: clients.run_load(
                        port=ports[index],
                        path="/api/webhook",
                        requests=requests[index * share : (index + 1) * share],
                        connections=max(1, o.connections // len(ports)),
                        seconds=o.limit_duration,
                        threads=1,
                    ),
                    range(len(ports)),
                )
            )
        rate = sum(result.rate for result in results)
        errors = sum(result.errors for result in results)
        self.log(f"  {rate:,.0f}/s answered, {errors} errors")
        self.discard_backlog()
        return rate


def counted_windows(dumps: list[Path], *, what: str, windows: int | None = None) -> list[int]:
    """The counted windows of one process's dumps, in order (``dumps`` sorted by number; the file written at
    exit, without a number or after the last window, holds only the exit): of each three, the third less the
    second."""
    numbered = [dump for dump in dumps if dump.suffix[1:].isdigit()]
    windows = len(numbered) // 3 if windows is None else windows
    if not windows or [dump.suffix for dump in numbered[: 3 * windows]] != [f".{n}" for n in range(1, 3 * windows + 1)]:
        raise RuntimeError(f"expected {3 * (windows or 1)} dumps of {what}, found {[dump.name for dump in dumps]}")
    return [callgrind_dumped(numbered[3 * n + 2]) - callgrind_dumped(numbered[3 * n + 1]) for n in range(windows)]


def callgrind_dumped(path: Path) -> int:
    """The instructions a callgrind dump file counted (its ``summary:``/``totals:`` line)."""
    totals = [line for line in path.read_text().splitlines() if line.startswith(("summary:", "totals:"))]
    if not totals:
        raise RuntimeError(f"{path} holds no totals")
    return int(totals[-1].split(":", 1)[1].split()[0])


# The bench's phases, in the order they run: the name on the command line (--phases) -> the method.
PHASES = {
    "ingest": Bench.ingest,
    "instructions": Bench.instructions,
    "processing": Bench.processing,
    "e2e": Bench.end_to_end,
    "pages": Bench.pages,
    "websockets": Bench.websockets,
    "scale": Bench.scale,
}
# What ``make bench`` runs unless --phases says otherwise: ``instructions`` takes valgrind and a few minutes, and
# is for comparing two versions of the request path.
DEFAULT_PHASES = tuple(name for name in PHASES if name != "instructions")

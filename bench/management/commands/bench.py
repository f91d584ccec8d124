"""``manage.py bench`` (``make bench``): the production-like topology as real processes, measured, stopped.

Starts its own PostgreSQL database (dropped and recreated), its own redis-server on a free port, gunicorn
for HTTP, Daphne for /ws/ and a Celery worker; measures ingest, processing, end to end latency, the inbox
pages and idle WebSockets; prints a table with each figure's conditions and its target; stops
everything it started (by PID). A command, never a test. Defaults fit ~4 minutes on 2 cores; the flags
scale every part up (e.g. ``--backlog 50000 --sockets 5000``) or down (``--quick``).

The command runs itself again as a child process with the bench's DATABASE_URL and REDIS_URL in the
environment, so the settings of every process (this one included) point at the bench's own services.
"""

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

from django.core.management.base import BaseCommand, CommandError

from bench.clients import WRK_MISSING, have_wrk

DEFAULT_ADMIN_DSN = "postgres://postgres@127.0.0.1:5432/postgres"
# The CPUs this process may run on, as `nproc` counts them (config/bin/web sizes gunicorn with nproc).
USABLE_CPUS = len(os.sched_getaffinity(0))


def _phase_list(value: str) -> tuple[str, ...]:
    from bench.phases import PHASES

    wanted = {name.strip() for name in value.split(",") if name.strip()}
    if unknown := wanted - set(PHASES):
        raise argparse.ArgumentTypeError(
            f"unknown phase(s) {', '.join(sorted(unknown))}; choose from {', '.join(PHASES)}"
        )
    if not wanted:
        raise argparse.ArgumentTypeError("name at least one phase")
    return tuple(name for name in PHASES if name in wanted)


class Command(BaseCommand):
    help = "Benchmark the production-like topology (gunicorn, Daphne, Celery, Redis, PostgreSQL); prints a table."
    requires_system_checks: ClassVar[list] = []

    def add_arguments(self, parser):
        a = parser.add_argument
        a(
            "--pg",
            default=os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_ADMIN_DSN),
            help="PostgreSQL URL of a database to connect to for CREATE/DROP DATABASE",
        )
        a(
            "--database",
            default="whatsapp_bench",
            help="bench database name; dropped and recreated (default %(default)s)",
        )
        a("--keep-database", action="store_true", help="do not drop the bench database at the end")
        a(
            "--replica-pg",
            default=os.environ.get("BENCH_PG_REPLICA_URL", ""),
            help="PostgreSQL URL of a streaming replica of --pg's server: every process the bench runs gets "
            "DATABASE_REPLICA_URL for the bench database on it, and the pages phase's search reads it; default none",
        )
        a(
            "--settings-module",
            default=None,
            help="server settings: config.settings.production (default when present) or config.settings.base",
        )
        a(
            "--web-workers",
            type=int,
            default=2 * USABLE_CPUS + 1,
            help="gunicorn sync workers (default %(default)s: config/bin/web's own default, 2 x CPUs + 1)",
        )
        a("--worker-concurrency", type=int, default=2, help="Celery prefork processes (default %(default)s)")
        a("--connections", type=int, default=32, help="ingest: concurrent connections (default %(default)s)")
        a("--duration", type=float, default=20, help="ingest: seconds (default %(default)s)")
        a(
            "--limit-duration",
            type=float,
            default=10,
            help="noop view and raw INSERT limits: seconds (default %(default)s)",
        )
        a("--pg-threads", type=int, default=8, help="raw INSERT limit: client threads (default %(default)s)")
        a(
            "--backlog",
            type=int,
            default=10_000,
            help="processing: stored events to drain (default %(default)s; the issue's 50000)",
        )
        a("--drain-timeout", type=float, default=60, help="processing: give up draining after this many seconds")
        a("--e2e-rate", type=float, default=200, help="end to end: webhooks per second (default %(default)s)")
        a("--e2e-duration", type=float, default=10, help="end to end: seconds (default %(default)s)")
        a("--conversations", type=int, default=10_000, help="pages: seeded conversations (default %(default)s)")
        a("--messages", type=int, default=1_000_000, help="pages: seeded messages (default %(default)s)")
        a("--page-runs", type=int, default=5, help="pages: timed requests per page (default %(default)s)")
        a(
            "--sockets",
            type=int,
            default=2_000,
            help="websockets: idle sockets to open (default %(default)s; the issue's 5000)",
        )
        a("--socket-hold", type=float, default=5, help="websockets: seconds to hold them idle")
        a("--quick", action="store_true", help="a smoke run (~1 minute): every phase scaled down")
        a(
            "--instruction-calls",
            type=int,
            default=1000,
            help="instructions: requests counted per path under callgrind (default %(default)s)",
        )
        a(
            "--instruction-warmup",
            type=int,
            default=100,
            help="instructions: requests per path before the counted ones, which import and connect (default %(default)s)",
        )
        from bench.phases import DEFAULT_PHASES, PHASES

        a(
            "--phases",
            default=",".join(DEFAULT_PHASES),
            type=_phase_list,
            help=f"comma-separated phases to run, always in this order: {', '.join(PHASES)} (default: %(default)s; "
            "instructions counts one process's instructions per request with valgrind, for comparing versions)",
        )

    def handle(self, *args, **o):
        # Before anything starts: a bench that found no load generator after seeding a million rows wastes minutes.
        if "ingest" in o["phases"] and not have_wrk():
            raise CommandError(WRK_MISSING)
        if os.environ.get("BENCH_CHILD") != "1":
            return self.spawn_child()
        if o["quick"]:
            o.update(
                duration=5,
                limit_duration=3,
                backlog=1000,
                e2e_duration=3,
                conversations=1000,
                messages=50_000,
                sockets=300,
                socket_hold=2,
                page_runs=3,
                drain_timeout=60,
            )
        self.run_child(o)

    # The parent only builds the environment; the child (same arguments) does all the work.
    def spawn_child(self):
        from bench.procs import ROOT, free_port

        argv = sys.argv[sys.argv.index("bench") + 1 :] if "bench" in sys.argv else []
        database = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--database"), "whatsapp_bench")
        admin = next(
            (argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--pg"),
            os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_ADMIN_DSN),
        )
        replica = next(
            (argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--replica-pg"),
            os.environ.get("BENCH_PG_REPLICA_URL", ""),
        )
        redis_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "DJANGO_", "DATABASE_", "REDIS_"))}
        if replica:
            env["DATABASE_REPLICA_URL"] = f"{replica.rsplit('/', 1)[0]}/{database}"
        env.update(
            BENCH_CHILD="1",
            BENCH_REDIS_PORT=str(redis_port),
            DJANGO_SETTINGS_MODULE="config.settings.base",
            DJANGO_READ_DOT_ENV_FILE="0",
            DJANGO_DEBUG="0",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
            JWT_SECRET=secrets.token_urlsafe(64),
            DJANGO_ALLOWED_HOSTS="localhost,127.0.0.1,testserver",
            DJANGO_CONN_MAX_AGE="60",
            DATABASE_URL=f"{admin.rsplit('/', 1)[0]}/{database}",
            REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
            META_APP_SECRET=secrets.token_hex(16),
            META_VERIFY_TOKEN=secrets.token_hex(8),
            META_GRAPH_API_URL="http://127.0.0.1:9",  # nothing in the bench may call out
            LOG_FORMAT="json",
            LOG_LEVEL="WARNING",  # this process; the servers log at INFO like production (BENCH_SERVER_LOG_LEVEL)
        )
        child = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "bench", *argv], cwd=ROOT, env=env)
        while True:
            try:
                return_code = child.wait()
                break
            except KeyboardInterrupt:
                # Ctrl-C reached the child too (same process group): let it stop what it started.
                continue
        if return_code:
            sys.exit(return_code)

    def run_child(self, o):
        from bench.phases import Bench, Options
        from config.celery import app as celery_app

        celery_app.autodiscover_tasks(force=True)  # the pages enqueue tasks (read receipts) from this process
        from bench.procs import ROOT
        from bench.report import render

        settings_module = o["settings_module"] or (
            "config.settings.production"
            if (ROOT / "config" / "settings" / "production.py").exists()
            else "config.settings.base"
        )
        log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
        options = Options(
            admin_dsn=o["pg"],
            database=o["database"],
            redis_port=int(os.environ["BENCH_REDIS_PORT"]),
            log_dir=log_dir,
            server_settings=settings_module,
            web_workers=o["web_workers"],
            worker_concurrency=o["worker_concurrency"],
            connections=o["connections"],
            duration=o["duration"],
            limit_duration=o["limit_duration"],
            pg_threads=o["pg_threads"],
            backlog=o["backlog"],
            drain_timeout=o["drain_timeout"],
            e2e_rate=o["e2e_rate"],
            e2e_duration=o["e2e_duration"],
            conversations=o["conversations"],
            messages=o["messages"],
            page_runs=o["page_runs"],
            sockets=o["sockets"],
            socket_hold=o["socket_hold"],
            instruction_calls=o["instruction_calls"],
            instruction_warmup=o["instruction_warmup"],
            keep_database=o["keep_database"],
            phases=o["phases"],
        )
        started = time.perf_counter()

        def log(message):
            self.stdout.write(f"[{time.perf_counter() - started:6.1f}s] {message}")
            self.stdout.flush()

        load_before = "/".join(f"{x:.1f}" for x in os.getloadavg())
        try:
            rows = Bench(options, log, stream=self.stdout).run()
        except KeyboardInterrupt:
            self.stderr.write("interrupted: everything the bench started has been stopped")
            sys.exit(130)
        self.stdout.write("")
        self.stdout.write(
            f"make bench: {USABLE_CPUS} cores, load generator on the same machine, "
            f"servers on {settings_module}, total {time.perf_counter() - started:.0f}s, "
            f"load average (1/5/15 min) {load_before} at start and "
            f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())} at end"
        )
        self.stdout.write(render(rows))

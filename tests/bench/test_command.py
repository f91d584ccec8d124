"""`manage.py bench` still runs every phase against the real processes it starts.

Tiny sizes and no figure asserted: a benchmark is a command, never a timed test. What this catches is a
bench that no longer runs (a schema change its seeding SQL missed, a server that does not start).
"""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATABASE = f"bench_smoke_{os.getpid()}"
EVERY_PHASE = {
    "ingest: webhook POSTs answered 2xx",
    "worker: behind when the load stopped",
    "limit: do-nothing Django POST view",
    "ingest: CPU per webhook, all processes",
    "limit: PostgreSQL raw single-row INSERT",
    "processing: updates applied by the worker",
    "end to end: POST -> WS frame p99",
    "page /inbox/: SQL queries",
    "page /inbox/<id>/: server time",
    "page /inbox/ (3 numbers): server time",
    "websockets: idle sockets held",
    "scale: updates applied, 2 worker processes",
    "ratio 2 host stacks / 1",
}


def run_bench(*extra: str, path: str | None = None) -> tuple[subprocess.CompletedProcess, str, dict[str, str]]:
    """Run the bench at tiny sizes (with ``path`` as PATH if given); the result, the admin DSN and the table's
    figures by name."""
    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    admin_dsn = f"{database_url.rsplit('/', 1)[0]}/postgres"
    tiny = [
        "--pg",
        admin_dsn,
        "--database",
        DATABASE,
        "--web-workers",
        "2",
        "--worker-concurrency",
        "2",
        "--connections",
        "4",
        "--duration",
        "1",
        "--limit-duration",
        "1",
        "--pg-threads",
        "2",
        "--backlog",
        "200",
        "--e2e-rate",
        "20",
        "--e2e-duration",
        "1",
        "--conversations",
        "30",
        "--messages",
        "300",
        "--page-runs",
        "1",
        "--sockets",
        "10",
        "--socket-hold",
        "1",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    if path is not None:
        env["PATH"] = path
    result = subprocess.run(
        [sys.executable, "manage.py", "bench", *tiny],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    rows = [line.split("|") for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    return result, admin_dsn, {cells[2].strip(): cells[3].strip() for cells in rows}


@pytest.mark.timeout(600)
def test_the_bench_runs_every_phase_and_prints_its_table():
    result, admin_dsn, figures = run_bench()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert set(figures) >= EVERY_PHASE, result.stdout[-4000:]
    assert "n/a" not in figures.values()  # every figure was measured
    assert "ingest: instructions per webhook" not in figures  # valgrind's phase only when asked for
    assert "0 errors" in result.stdout and "0 frames missing" in result.stdout
    # The long phases show their progress; in a pipe as plain lines, the last of each at 100%.
    for finished in (
        "ingest 1/1 seconds, 100%",
        "do-nothing view 1/1 seconds, 100%",
        "applied 200/200 events, 100%",
        "posted 20/20 webhooks, 100%",
        "opened 10/10 sockets, 100%",
    ):
        assert finished in result.stdout, result.stdout[-4000:]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:  # it drops its own database at the end
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None


@pytest.mark.timeout(300)
def test_phases_runs_only_the_phases_named():
    result, _admin_dsn, figures = run_bench("--phases", "processing")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "processing: updates applied by the worker" in figures
    assert not any(
        name.startswith(("ingest", "limit", "end to end", "page", "websockets", "scale")) for name in figures
    ), figures


def test_an_unknown_phase_is_refused_before_anything_starts():
    result, _admin_dsn, figures = run_bench("--phases", "ingest,warp")
    assert result.returncode == 2 and "unknown phase(s) warp" in result.stderr
    assert figures == {} and "database" not in result.stdout


def test_without_wrk_the_bench_stops_at_once_saying_how_to_install_it():
    venv_bin = Path(sys.executable).parent  # python and the servers' entry points, but no wrk
    assert not (venv_bin / "wrk").exists()
    result, admin_dsn, figures = run_bench(path=str(venv_bin))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: wrk is not installed: the bench's HTTP load generator; apt-get install wrk"
    ]
    assert result.stdout == "" and figures == {}
    with psycopg.connect(admin_dsn, autocommit=True) as conn:  # nothing was started, not even its database
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None

"""``config/bin/run`` (what ``make run`` executes) as a newcomer runs it: embedded, no token, so the Meta sandbox
comes up before the demo is seeded and the demo's photo and invoice are there when the inbox opens. Started
for real on free ports with a SQLite database of its own, stopped by its process group."""

import os
import sqlite3
import subprocess

import requests

from tests.e2e.conftest import ROOT, free_port, stop_process, wait_for


def media_states(database) -> list[str] | None:
    try:
        with sqlite3.connect(database) as connection:
            return [state for (state,) in connection.execute("SELECT state FROM conversations_mediafile ORDER BY id")]
    except sqlite3.Error:
        return None  # not migrated yet


def test_make_run_starts_the_sandbox_before_seeding_so_the_demo_media_is_ready(tmp_path):
    port, sandbox_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("META_", "DJANGO_", "DATABASE_", "REDIS_"))
    }
    env.update(
        DJANGO_READ_DOT_ENV_FILE="0",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp_path / "media"),
        PORT=str(port),
        SANDBOX_PORT=str(sandbox_port),
        SANDBOX_CUSTOMERS="0",
    )
    log = tmp_path / "run.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(ROOT / "config" / "bin" / "run")],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/login/", timeout=1).ok, timeout=180, what="the app")
        assert media_states(tmp_path / "db.sqlite3") == ["ready", "ready"], log.read_text()
        assert "Traceback" not in log.read_text()
        assert requests.get(f"http://127.0.0.1:{sandbox_port}/_sandbox/health", timeout=5).ok
    finally:
        stop_process(process, timeout=20)

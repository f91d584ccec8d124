"""ops/broker.py: a real Celery worker on the project's Redis transport outlives its Redis being SIGKILLed while it
holds unacknowledged tasks (with kombu's own transport it ended with "Unrecoverable error"), and works on once
Redis is back."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from tests.e2e.conftest import BIN, ROOT, RedisServer, free_port, stop_process, wait_for

TASKS = """
import os, time
from pathlib import Path
from celery import Celery

app = Celery("drill_tasks", broker=os.environ["BROKER"])
app.conf.update(
    broker_transport="ops.broker:Transport",
    broker_transport_options={"visibility_timeout": 3600, "socket_connect_timeout": 2, "socket_timeout": 5},
    broker_connection_retry_on_startup=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_cancel_long_running_tasks_on_connection_loss=True,
)

@app.task
def work(name):
    time.sleep(0.1)  # four at a time, some unacknowledged while the worker waits on Redis for more
    (Path(os.environ["DONE"]) / name).touch()
"""


def test_a_worker_holding_tasks_outlives_its_redis_killed_and_works_on_when_it_is_back(monkeypatch):
    workdir = Path(tempfile.mkdtemp(prefix="broker-"))
    (workdir / "drill_tasks.py").write_text(textwrap.dedent(TASKS))
    done = workdir / "done"
    done.mkdir()
    redis = RedisServer(port=free_port(), workdir=str(workdir))
    redis.start()
    env = {**os.environ, "BROKER": redis.url, "DONE": str(done), "PYTHONPATH": f"{workdir}:{ROOT}"}
    log = workdir / "worker.log"
    worker = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "drill_tasks",
            "worker",
            "-l",
            "info",
            "-c",
            "4",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=workdir,
        env=env,
        stdout=open(log, "wb"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    monkeypatch.syspath_prepend(str(workdir))
    monkeypatch.setenv("BROKER", redis.url)
    try:
        wait_for(lambda: b"ready." in log.read_bytes(), timeout=40, what="the worker")
        import drill_tasks  # this process publishes through the same app

        stop = threading.Event()

        def publish() -> None:
            n = 0
            while not stop.is_set():
                with contextlib.suppress(Exception):  # the broker is gone: Celery's publish gives up
                    drill_tasks.work.delay(f"before-{n}")
                n += 1
                stop.wait(0.05)

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        wait_for(lambda: len(list(done.iterdir())) >= 5, timeout=30, what="tasks done before the kill")
        os.kill(redis.process.pid, signal.SIGKILL)  # no goodbye to its clients
        redis.process.wait(timeout=10)
        time.sleep(2)  # the worker notices and tries to reconnect
        stop.set()
        publisher.join(timeout=10)
        assert worker.poll() is None, log.read_text()[-3000:]
        redis.start()
        drill_tasks.work.delay("after-the-restart")
        wait_for(lambda: (done / "after-the-restart").exists(), timeout=60, what="a task sent once Redis was back")
        assert worker.poll() is None
        assert b"Unrecoverable error" not in log.read_bytes()
    finally:
        sys.modules.pop("drill_tasks", None)
        stop_process(worker)
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)

"""The long-running processes freeze what they built while starting (ops.heap), so the collector's full passes
skip it: each entry point is started in a process of its own, as gunicorn, Daphne and Celery's pool start it."""

import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT

# Django, DRF, Channels and Celery leave a few hundred thousand objects behind; a process that froze nothing
# reports 0.
STARTUP_OBJECTS = 50_000

PROCESSES = {
    "web (gunicorn imports config.wsgi)": "import config.wsgi",
    "sockets (Daphne imports config.asgi)": "import config.asgi",
    "worker (each prefork child starts)": (
        "import django; django.setup()\n"
        "from celery import signals\n"
        "import config.celery\n"
        "signals.worker_process_init.send(sender=None)"
    ),
}

REPORT = """
import gc
frozen = gc.get_freeze_count()
gc.unfreeze()  # get_objects() does not list frozen objects
garbage_kept = [o for o in gc.get_objects() if isinstance(o, Marker)]
print(frozen, len(garbage_kept))
"""

# A reference cycle dropped while starting (automatic collection off, so only the start-up's own collect can free it):
# collected before the freeze, not kept for good.
MAKE_GARBAGE = """
import gc
gc.disable()
class Marker:
    pass
cycle = Marker(); cycle.me = cycle; del cycle
"""


@pytest.mark.parametrize("start", PROCESSES.values(), ids=PROCESSES.keys())
def test_start_up_objects_are_frozen_and_start_up_garbage_is_not(start):
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.base", "DJANGO_READ_DOT_ENV_FILE": "0"}
    result = subprocess.run(
        [sys.executable, "-c", MAKE_GARBAGE + start + REPORT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    frozen, garbage_kept = map(int, result.stdout.split()[-2:])
    assert frozen > STARTUP_OBJECTS
    assert garbage_kept == 0

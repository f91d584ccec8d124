"""Settings of the servers the bench starts: the production settings (or base.py when
``BENCH_BASE_SETTINGS`` names it) with the bench's URL map, which adds ``/bench/noop``."""

import importlib
import os

_base = importlib.import_module(os.environ.get("BENCH_BASE_SETTINGS", "config.settings.production"))
globals().update({name: value for name, value in vars(_base).items() if name.isupper()})

ROOT_URLCONF = "bench.urls"

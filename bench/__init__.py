"""``manage.py bench``: the production-like topology started as real processes, measured, stopped.

Never imported by the app or the tests; ``bench/management/commands/bench.py`` is the entry point.
"""

"""Tests where workers race: each job in a thread of its own, with its own database connection (closed at its
end, so the test database can be flushed and dropped)."""

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.db import connection


def own_connection(job: Callable) -> Callable:
    """``job``, closing the database connection of the thread it ran in."""

    @functools.wraps(job)
    def run(*args, **kwargs):
        try:
            return job(*args, **kwargs)
        finally:
            connection.close()

    return run


def in_threads(*jobs: Callable) -> list:
    """Run every job at once, each in a thread of its own; their results in order (a job's error is raised)."""
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(own_connection(job)) for job in jobs]
    return [future.result(timeout=30) for future in futures]

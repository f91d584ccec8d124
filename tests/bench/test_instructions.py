"""`manage.py bench --phases instructions` still counts each path under callgrind. In a module of its own: the
longest test of the suite, which make test's two processes then run beside the other bench tests."""

import pytest

from tests.bench.test_command import run_bench


@pytest.mark.timeout(600)
def test_instructions_counts_the_webhook_and_the_do_nothing_view_under_callgrind_in_process_and_served():
    result, _admin_dsn, figures = run_bench(
        "--phases", "instructions", "--instruction-calls", "20", "--instruction-warmup", "10"
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    webhook, noop = (
        float(figures[name].split()[0].replace(",", ""))
        for name in ("ingest: instructions per webhook", "limit: instructions per do-nothing request")
    )
    # Hundreds of thousands of instructions per request, each. Not their order: over 20 calls one garbage
    # collection inside a window moves a figure by more than the paths differ, and the webhook skips the page
    # middleware that the do-nothing view keeps (webhooks/fastpath.py).
    assert 100 < noop < 100_000 and 100 < webhook < 100_000, figures
    # Served by a real gunicorn worker too. Not above the in-process figures either: over 20 calls the windows
    # differ by more than gunicorn's ~600k (seen: 1,529k served against 1,429k in process).
    served_webhook, served_noop = (
        float(figures[name].split()[0].replace(",", ""))
        for name in ("ingest: instructions per webhook, served", "limit: instructions per do-nothing request, served")
    )
    assert 100 < served_noop < 100_000 and 100 < served_webhook < 100_000, figures
    # A drain's rounds: each new message costs more than its webhook did (contacts, conversations, realtime).
    assert 100 < float(figures["processing: instructions per event"].split()[0].replace(",", "")) < 100_000, figures

"""``ops.progress``: plain lines in even steps and now and then by the clock, or a tqdm bar on a terminal (a real
pseudo-terminal here)."""

import io
import os
import pty
import select

from django.core.management.base import OutputWrapper

from ops.progress import PlainProgress, TerminalProgress, progress


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_known_total_gives_a_line_each_tenth_and_none_per_item():
    out, clock = io.StringIO(), Clock()
    bar = PlainProgress(out, total=95, desc="deleted", unit="event", seconds=1000, clock=clock)
    for _ in range(95):
        clock.now += 0.25
        bar.update()
    bar.close()

    # Every 10 (a tenth of 95, rounded up), then the last.
    assert [line.split()[1] for line in lines(out)] == [f"{n}/95" for n in (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)]
    assert lines(out)[0] == "  deleted 10/95 events, 10%, 2.5 s, about 21 s left"
    assert lines(out)[-1] == "  deleted 95/95 events, 100%, 23.8 s"


def test_a_slow_run_also_writes_a_line_every_few_seconds_and_the_steps_stay_even():
    out, clock = io.StringIO(), Clock()
    bar = PlainProgress(out, total=100, desc="replayed", unit="event", seconds=5.0, clock=clock)
    for _ in range(25):
        clock.now += 2.0
        bar.update()

    # By the clock (5 s or more since the line before: 3, 6, 9, 13, ...) and at each tenth (10, 20).
    counts = [int(line.split()[1].split("/")[0]) for line in lines(out)]
    assert counts == [3, 6, 9, 10, 13, 16, 19, 20, 23]


def test_batches_jump_past_steps_with_one_line_each():
    out = io.StringIO()
    bar = PlainProgress(out, total=10, desc="deleted", unit="event", clock=Clock())
    for batch in (4, 4, 2):
        bar.update(batch)
    bar.close()

    assert [line.split()[1] for line in lines(out)] == ["4/10", "8/10", "10/10"]


def test_a_total_learnt_on_the_way_and_an_unknown_one():
    out = io.StringIO()
    bar = PlainProgress(out, total=None, desc="progress", unit="step", every=2, clock=Clock())
    bar.update_to(2, 4)
    bar.update_to(4, 4)
    counting = PlainProgress(out, total=None, desc="seen", unit="row", every=2, clock=Clock())
    counting.update(3)
    counting.close()

    assert lines(out) == [
        "  progress 2/4 steps, 50%, 0.0 s, about 0 s left",
        "  progress 4/4 steps, 100%, 0.0 s",
        "  seen 3 rows, 0.0 s",
    ]


def test_nothing_done_writes_nothing_and_messages_go_where_they_are_sent():
    out, errors = io.StringIO(), io.StringIO()
    with progress(OutputWrapper(out), total=0, desc="deleted", unit="event") as bar:
        bar.message("event 7 failed", stream=OutputWrapper(errors))
        bar.message("a note")

    assert (out.getvalue(), errors.getvalue()) == ("a note\n", "event 7 failed\n")


def read_everything(controller: int) -> str:
    """What the terminal was sent: a pty hands it over in pieces, one read gives only the first."""
    shown = b""
    while select.select([controller], [], [], 0.2)[0]:
        shown += os.read(controller, 65536)
    return shown.decode()


def test_on_a_terminal_a_tqdm_bar_redrawn_in_place():
    controller, terminal = pty.openpty()
    with os.fdopen(terminal, "w") as screen:
        command_stdout = OutputWrapper(screen)
        with progress(command_stdout, total=3, desc="deleted", unit="event") as bar:
            assert isinstance(bar, TerminalProgress)
            bar.update(2)
            bar.message("event 7 failed")
            bar.update()
        shown = read_everything(controller)
    os.close(controller)

    # Each redraw starts with a carriage return, never a newline of the OutputWrapper's.
    assert "\rdeleted:  67%|" in shown and "\rdeleted: 100%|" in shown
    assert "| 3/3 [" in shown and " events/s]" in shown
    assert "event 7 failed\r\n" in shown
    assert shown.count("\n") == 2  # the message's line and the one the finished bar ends with

"""Progress of long operator work (management commands, the bench's phases): on a terminal a tqdm bar (counts,
rate, time left); in a log or a pipe a plain line every ``every`` items or ``seconds`` seconds, and a last one
at the end, so a log of a million-row run stays a few lines long.

    with progress(self.stdout, total=len(ids), desc="replayed", unit="event") as bar:
        for event_id in ids:
            ...
            bar.update()
            bar.message(f"event {event_id} failed", stream=self.stderr)   # above the bar, not through it

``stream`` is where the progress goes: a file, or a management command's ``self.stdout``.
"""

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

from django.core.management.base import OutputWrapper
from tqdm import tqdm

# Plain lines: about ten in a run whose total is known, and one at least this often (seconds) in between.
LINES_PER_RUN = 10
SECONDS_BETWEEN_LINES = 5.0


class Progress(Protocol):
    def update(self, n: int = 1) -> None:
        """``n`` more items done."""

    def update_to(self, done: int, total: int | None = None) -> None:
        """``done`` items done so far (of ``total``, when the total is learnt on the way)."""

    def message(self, text: str, *, stream=None) -> None:
        """A line of the command's own (to ``stream``, the progress's stream by default) that does not break a bar."""


@contextmanager
def progress(
    stream,
    *,
    total: int | None,
    desc: str,
    unit: str = "item",
    every: int | None = None,
    seconds: float = SECONDS_BETWEEN_LINES,
) -> Iterator[Progress]:
    """A tqdm bar when ``stream`` is a terminal, else a ``PlainProgress``; closed (its last line written) on exit."""
    if _is_terminal(stream):
        bar = TerminalProgress(stream, total=total, desc=desc, unit=unit)
    else:
        bar = PlainProgress(stream, total=total, desc=desc, unit=unit, every=every, seconds=seconds)
    try:
        yield bar
    finally:
        bar.close()


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class _Unended:
    """``stream`` as tqdm writes to it: a management command's OutputWrapper would end each of its carriage-return
    redraws with a newline, one line per redraw."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        if isinstance(self.stream, OutputWrapper):
            self.stream.write(text, ending="")
        else:
            self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


class TerminalProgress:
    def __init__(self, stream, *, total: int | None, desc: str, unit: str):
        self.stream = stream
        self.bar = tqdm(total=total, desc=desc, unit=f" {unit}s", file=_Unended(stream), dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def update_to(self, done: int, total: int | None = None) -> None:
        if total is not None and total != self.bar.total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def message(self, text: str, *, stream=None) -> None:
        self.bar.clear()
        _write_line(stream or self.stream, text)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class PlainProgress:
    """``  {desc} {done}/{total} {unit}s, {percent}%, {elapsed} s, about {left} s left`` now and then."""

    def __init__(
        self,
        stream: TextIO,
        *,
        total: int | None,
        desc: str,
        unit: str,
        every: int | None = None,
        seconds: float = SECONDS_BETWEEN_LINES,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stream, self.desc, self.unit, self.seconds, self.clock = stream, desc, unit, seconds, clock
        self.total = total
        self.every = every
        self.done = 0
        self.started = self.last_at = clock()
        self.last_done = 0

    def update(self, n: int = 1) -> None:
        self.update_to(self.done + n)

    def update_to(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        self.done = done
        # Lines at each multiple of ``every`` (whatever the clock wrote in between), so a log reads in even steps.
        every = self.every or (max(1, math.ceil(self.total / LINES_PER_RUN)) if self.total else None)
        now = self.clock()
        if (every and self.done // every > self.last_done // every) or now - self.last_at >= self.seconds:
            self._line(now)

    def message(self, text: str, *, stream=None) -> None:
        _write_line(stream or self.stream, text)

    def close(self) -> None:
        if self.done != self.last_done:
            self._line(self.clock())

    def _line(self, now: float) -> None:
        self.last_at, self.last_done = now, self.done
        elapsed = now - self.started
        line = f"  {self.desc} {self.done}"
        if self.total:
            line += f"/{self.total} {self.unit}s, {100 * self.done // self.total}%, {elapsed:.1f} s"
            if 0 < self.done < self.total:
                line += f", about {elapsed * (self.total - self.done) / self.done:.0f} s left"
        else:
            line += f" {self.unit}s, {elapsed:.1f} s"
        _write_line(self.stream, line)
        self.stream.flush()


def _write_line(stream, text: str) -> None:
    stream.write(text + "\n")  # an OutputWrapper adds no second newline to a line that has one

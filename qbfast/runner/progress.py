"""Progress of a run, with tqdm: the rate and the ETA come from finished work only.

The plan line is printed at once; the bar starts when the first task of the run finishes, with
the work already done (a resumed store, and that first task) as its initial count, so start-up
(cluster, compilation, the first task's latency) never enters the rate: tqdm computes it as
(points finished since the bar started) / (seconds since), with ``smoothing=0``.
"""

from __future__ import annotations

import os
import time
from typing import IO, Any

BAR = ("{percentage:3.0f}%|{bar:24}| {n_fmt}/{total_fmt} points [{elapsed}<{remaining}, "
       "{rate_fmt}]{postfix}")


#: The bar's width on a terminal that reports no width (0 columns).
DEFAULT_COLUMNS = 80


def _columns(stream: Any) -> int:
    """The width the terminal of ``stream`` reports (0: none reported, or not a terminal)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def format_duration(seconds: float) -> str:
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


class Progress:
    """tqdm bar over points (evaluations), with tasks done/total as a postfix. On a terminal
    it redraws at most 5 times a second; elsewhere (a log file) at most every ``every`` s."""

    def __init__(self, n_tasks: int, done_tasks: int, total_points: int, done_points: int,
                 stream: IO[str] | None, every: float = 5.0) -> None:
        self.n_tasks = n_tasks
        self.done_tasks = done_tasks
        self.total_points = total_points
        self.done_points = done_points
        self.stream = stream
        self.tty = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
        self.every = 0.2 if self.tty else every
        self.bar: Any = None
        self._log_start: float | None = None
        self._log_initial = 0
        self._last = -float("inf")
        self._made = self._tick = time.perf_counter()

    def tick(self, every: float = 10.0) -> None:
        """Before the first task finishes: the seconds since the bar was made, at most every
        ``every`` seconds (so that start-up is never silent for longer)."""
        now = time.perf_counter()
        if now - self._tick >= every:
            self._tick = now
            self.say(f"qbfast: {now - self._made:.0f} s, waiting for the first task to finish")

    def say(self, line: str) -> None:
        if self.stream is not None:
            print(line, file=self.stream, flush=True)

    def update(self, tasks: int, points: int) -> None:
        self.done_tasks += tasks
        self.done_points += points
        if self.stream is None:
            return
        if not self.tty:  # a log: one line per ``every`` seconds, formatted by tqdm
            now = time.perf_counter()
            if self._log_start is None:
                self._log_start, self._log_initial = now, self.done_points
            if now - self._last >= self.every or self.done_tasks == self.n_tasks:
                self._last = now
                self.say(self.line())
            return
        if self.bar is None:
            from tqdm import tqdm

            # a terminal that reports 0 columns (a bare pty): tqdm would draw nothing at all
            columns = _columns(self.stream)
            self.bar = tqdm(total=self.total_points, initial=self.done_points, unit="pt",
                            unit_scale=True, file=self.stream, mininterval=self.every,
                            miniters=1, smoothing=0, dynamic_ncols=columns > 0,
                            ncols=None if columns > 0 else DEFAULT_COLUMNS, bar_format=BAR)
            self.bar.set_postfix_str(self._tasks(), refresh=True)
            return
        self.bar.set_postfix_str(self._tasks(), refresh=False)
        self.bar.update(points)

    def line(self) -> str:
        """The progress line of a log (no terminal): tqdm's format, rate since the bar
        started (the first finished task)."""
        from tqdm import tqdm

        assert self._log_start is not None
        elapsed = time.perf_counter() - self._log_start
        done = self.done_points - self._log_initial
        rate = done / elapsed if elapsed > 0 and done > 0 else None
        return tqdm.format_meter(self.done_points, self.total_points, elapsed, ascii=True,
                                 unit="pt", unit_scale=True, rate=rate, bar_format=BAR,
                                 postfix=self._tasks(), initial=self._log_initial)

    def _tasks(self) -> str:
        return f"{self.done_tasks}/{self.n_tasks} tasks"

    def close(self) -> None:
        if self.bar is None and self._log_start is not None and self._last < 0:
            self.say(self.line())
        if self.bar is not None:
            self.bar.set_postfix_str(self._tasks(), refresh=False)
            self.bar.refresh()
            self.bar.close()
            self.bar = None

"""The progress of a run as a person reads it: a bar that draws on a terminal reporting 0
columns (a real pseudo-terminal, whose size is 0 x 0 until set), and the elapsed time said
while no task has finished."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import termios
import time

from qbfast.runner.progress import DEFAULT_COLUMNS, Progress


def _drawn(rows: int, cols: int) -> str:
    """Everything the bar wrote to a pseudo-terminal of ``rows`` x ``cols``: the slave side is
    closed first, then the master is read to its end (EIO once the slave's output is all
    read; a single non-blocking read can come before the terminal has passed it all on)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    stream = os.fdopen(slave, "w")
    out = b""
    try:
        bar = Progress(4, 0, 400, 0, stream)
        assert bar.tty
        for _ in range(4):
            bar.update(1, 100)
        bar.close()
        stream.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: the closed slave's output is all read
                break
            if not chunk:
                break
            out += chunk
        return out.decode()
    finally:
        if not stream.closed:
            stream.close()
        os.close(master)


def _last(text: str) -> str:
    """The bar's last drawing (each redraw starts with a carriage return)."""
    return [d for d in text.rstrip("\r\n").split("\r") if d.strip()][-1].strip()


def test_a_bar_draws_on_a_terminal_of_0_columns():
    last = _last(_drawn(0, 0))
    assert last.startswith("100%|") and "400/400 points" in last, repr(last)
    assert len(last) <= DEFAULT_COLUMNS, repr(last)


def test_a_bar_follows_a_terminal_that_reports_its_width():
    last = _last(_drawn(24, 60))  # tqdm cuts the line at the terminal's width
    assert last.startswith("100%|") and "400/400 points" in last and len(last) <= 60, last


def test_elapsed_time_is_said_while_no_task_has_finished():
    out = io.StringIO()
    bar = Progress(4, 0, 400, 0, out)
    deadline = time.perf_counter() + 0.35
    while time.perf_counter() < deadline:
        bar.tick(every=0.1)
        time.sleep(0.01)
    lines = out.getvalue().splitlines()
    assert 2 <= len(lines) <= 4, lines
    assert all(ln.startswith("qbfast: ") and ln.endswith(" s, waiting for the first task to "
                                                          "finish") for ln in lines), lines

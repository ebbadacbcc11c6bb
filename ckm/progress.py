"""Following long work: a progress bar of keys left on a terminal, nothing in a pipe.

`wait_pending` is `workers.status.wait_idle` with a face: when the console it is given (the
commands give stderr) is a terminal, it shows keys left, keys done per second and an ETA, and
erases itself when done; otherwise (or with --json) it prints nothing, so stdout carries only
the command's result.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

POLL = 0.05


def bar(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(), TextColumn("{task.fields[rate]} keys/s"),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=console, transient=True)


def wait_pending(pending: Callable[[], int], timeout: float, *, console: Console,
                 label: str = "keys left", quiet: bool = False) -> int:
    """Poll `pending()` until it is 0 or `timeout` passes; returns what is still pending.
    The bar's total grows when new keys arrive, so "done" is total minus left."""
    deadline = time.monotonic() + timeout
    left = pending()
    if quiet or not console.is_terminal:
        while left and time.monotonic() < deadline:
            time.sleep(POLL)
            left = pending()
        return left
    started, total = time.monotonic(), left
    with bar(console) as progress:
        task = progress.add_task(label, total=max(total, 1), rate="-")
        while left and time.monotonic() < deadline:
            time.sleep(POLL)
            left = pending()
            total = max(total, left)
            done = total - left
            rate = done / max(time.monotonic() - started, 1e-6)
            progress.update(task, total=total, completed=done, rate=f"{rate:.0f}")
    return left

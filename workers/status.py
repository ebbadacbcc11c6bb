"""What the engine is doing right now, for `ckm wait`, `ckm status` and metrics."""

from __future__ import annotations

import time

from workers.context import Context


def pending(context: Context) -> int:
    """Keys queued, running, or waiting for a retry, not counting recorded failed syncs
    (those retry at the capped backoff for ever and are reported, not waited for), plus the
    objects a resync pass in progress has not read yet (at least 1 while it runs)."""
    from workers.resync import progress

    depths = context.queue.depths()
    failed = {f.key for f in context.failures.all()}
    waiting = [key for key in context.queue.delayed() if key not in failed]
    unread = 0
    if (state := progress(context)) is not None:
        unread = max(1, int(state.get("objects", 0)) - int(state.get("scanned", 0)))
    return depths.queued + depths.processing + len(waiting) + unread


def wait_idle(context: Context, timeout: float) -> int:
    """Wait until nothing is pending (or `timeout` passes); returns what is still pending."""
    deadline = time.monotonic() + timeout
    while (left := pending(context)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left

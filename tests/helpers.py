"""Small helpers shared by the integration tests."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what} not met in {timeout:.0f}s"
        time.sleep(0.02)
    return value

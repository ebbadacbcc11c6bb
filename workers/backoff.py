"""Retry delays: exponential with full jitter, from `base` doubling up to `cap` (pure)."""

from __future__ import annotations

import random


def delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt number `attempt + 1` (attempt counts from 1).

    Half the exponential step is fixed and half is random, so retries of many keys that
    failed together spread out, yet no retry comes sooner than half its step.
    """
    step = min(cap, base * 2.0 ** min(max(0, attempt - 1), 64))  # 2**1024 overflows
    return step / 2 + (rng or random).uniform(0, step / 2)

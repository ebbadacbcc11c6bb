"""Fencing: a run that may have lost its key's lease makes no further Contrail call.

The engine registers each run in a thread-local while it works; the lease renewer marks it
renewed (or lost). Every Contrail call passes the gate, which asks `check()` first: a run
whose lease was taken over, or that could not renew for most of a lease (Redis unreachable,
so another worker may have taken the key once the lease expired), stops with `LeaseLost`
before it writes again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


class LeaseLost(Exception):
    """This run no longer holds its key; another run may be writing the same objects."""


@dataclass
class Run:
    key: str
    token: str
    # how long after its last renewal a run may still start a Contrail call: the lease less
    # the longest call, so a call started in time ends before the lease can expire
    safe_seconds: float
    renewed_at: float = field(default_factory=time.monotonic)
    lost: bool = False
    # the oldest resync epoch this run's applies verified against (None: nothing applied);
    # a run that ends well marks its key verified in that epoch (see workers.resync)
    epoch: int | None = None

    def verified_in(self, epoch: str) -> None:
        self.epoch = int(epoch) if self.epoch is None else min(self.epoch, int(epoch))

    def fenced(self) -> bool:
        return self.lost or time.monotonic() - self.renewed_at > self.safe_seconds


_local = threading.local()


def enter(run: Run | None) -> None:
    _local.run = run


def current() -> Run | None:
    return getattr(_local, "run", None)


def check() -> None:
    run = current()
    if run is not None and run.fenced():
        raise LeaseLost(f"{run.key}: the lease was lost; this run stops before its next "
                        "Contrail call")

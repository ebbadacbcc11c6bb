"""What every `ckm bench ...` command shares: the `bench` command group, the consoles, waiting
until idle, and per-process CPU and memory readings from /proc.

A leaf module: the command modules import it, and `ckm.bench_cli` attaches the group to the
CLI, so any bench module imports on its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ckm.console import console

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks on a private local system.")
out = console()
err = console(stderr=True)  # progress bars: stdout keeps only the results


def wait_idle(context, timeout: float, label: str = "keys left") -> None:
    from ckm.progress import wait_pending
    from workers.status import pending

    if wait_pending(lambda: pending(context), timeout, console=err, label=label):
        raise RuntimeError(f"not idle after {timeout}s: {context.queue.depths()}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The most resident memory a process has had (VmHWM, Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def process_groups(procs) -> dict[str, list[int]]:
    """The system's processes by part (all workers together), for CPU and memory readings."""
    groups: dict[str, list[int]] = {}
    for child in procs.children:
        part = "workers" if child.name.startswith("worker-") else child.name
        groups.setdefault(part, []).append(child.proc.pid)
    return groups

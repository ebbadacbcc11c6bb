"""Fixtures of the fault suite: private stacks of real processes, the clean reference run.

`make_stack(**options)` starts a `FaultStack` (its own redis-server, emulators, watcher(s),
workers, beat) under the test's tmp_path and stops it at teardown; when the test failed, the
tail of every child's log is printed. `clean_run` applies the workload once per session on
a stack without faults and keeps its canonical Contrail snapshot for every scenario to
compare with. Lines a scenario passes to `report(...)` (`FAULT R1 converged in 4.2s`) are
printed as they happen and again in the terminal summary.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.faults.harness import (
    REPORTED,
    FaultStack,
    KubeView,
    converge,
    duplicates,
    leaks,
    read_contrail,
    report,
)
from tests.faults.workload import Workload


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def pytest_terminal_summary(terminalreporter):
    if REPORTED:
        terminalreporter.section("fault suite: convergence")
        for line in REPORTED:
            terminalreporter.write_line(line)


def _failed(node) -> bool:
    return any(getattr(node, f"rep_{when}", None) is not None
               and getattr(node, f"rep_{when}").failed for when in ("setup", "call"))


@pytest.fixture
def make_stack(request, tmp_path) -> Iterator:
    stacks: list[FaultStack] = []

    def make(*, workers: int = 2, watchers: int = 1, **options) -> FaultStack:
        stack = FaultStack(tmp_path / f"stack{len(stacks)}", **options)
        stacks.append(stack)
        stack.start(workers=workers, watchers=watchers)
        return stack

    yield make
    for stack in stacks:
        try:
            if _failed(request.node):
                print(f"\n##### logs of {stack.dir} #####\n{stack.log_tails()}")
        finally:
            stack.close()


@dataclass
class CleanRun:
    snapshot: dict[str, dict]
    seconds: float


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory) -> Iterator[CleanRun]:
    """The workload on a stack without faults: the reference every scenario must reach."""
    stack = FaultStack(tmp_path_factory.mktemp("clean"))
    try:
        stack.start()
        started = time.monotonic()
        Workload(stack.api()).run()
        done = converge(stack, timeout=60)
        client = stack.contrail()
        kube, state = KubeView.read(stack.api()), read_contrail(client)
        client.close()
        problems = duplicates(kube, state) + leaks(kube, state) + [
            f"failed sync {k}" for k in stack.failed()]
        assert not problems, f"the clean run itself is wrong: {problems}"
        report(f"FAULT clean converged in {done.at - started:.1f}s "
               f"({len(done.snapshot)} objects)")
    except BaseException:
        print(stack.log_tails())
        raise
    finally:
        stack.close()
    yield CleanRun(done.snapshot, done.at - started)

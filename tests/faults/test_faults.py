"""Fault scenarios on real processes: each ends exactly where a clean run of the same workload
ends (same Contrail objects by fq_name and refs), with no duplicates, no leaked objects, no
failed syncs, and no violation of the live invariants while it ran.

R1 workers SIGKILLed mid-run; R2 the leading watcher SIGKILLed, the standby takes over;
R3a Redis (appendonly) SIGKILLed and restarted mid-workload; R3b Redis loses everything
under a converged stack; R4 the Kubernetes API unavailable for 30 s; R5 a forced 410 with
deletes the watcher never saw; R6 a Contrail 503 storm and a 20 s outage; R7 the engine
stopped while pods are deleted, re-created and relabelled; R8 duplicate deliveries;
R9 poison objects mixed into the workload.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import kubernetes.client
import pytest
import redis

from tests.faults.harness import (
    FaultStack,
    InvariantChecker,
    KubeView,
    converge,
    diff,
    duplicates,
    leaks,
    read_contrail,
    report,
    snapshot,
    store_lag,
    without,
)
from tests.faults.workload import PHASE3_DELETE, POISON_KEYS, Workload
from tests.helpers import wait_for
from watcher.projection import PROJECTIONS
from watcher.store import STALE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

def busy(stack: FaultStack, timeout: float = 5.0) -> bool:
    """Until some key is being processed (to strike mid-run); False if none was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if stack.context.queue.depths().processing:
                return True
        time.sleep(0.01)
    return False


def judge(stack: FaultStack, name: str, fault_end: float, clean, checker: InvariantChecker,
          *, timeout: float = 30.0, poison: dict | None = None, check_store: bool = True,
          late: Callable[[], list[str]] | None = None) -> None:
    """Wait for convergence, report its time, then check everything at once (`late` adds
    the problems a scenario's own sampler found)."""
    problems = []
    try:
        done = converge(stack, timeout=timeout)
        report(f"FAULT {name} converged in {done.seconds_after(fault_end):.1f}s")
        final = done.snapshot
    except AssertionError as exc:  # judge what it reached all the same
        report(f"FAULT {name} did NOT converge within {timeout:.0f}s after the fault")
        problems.append(str(exc))
        try:
            final = snapshot(stack)
        except Exception as error:  # Contrail or Kubernetes still down: nothing to compare
            problems.append(f"no final snapshot: {error}")
            final = {}
    problems += late() if late else []
    problems += stack.died()  # e.g. a worker killed by an unrecoverable error
    violations = checker.stop()
    client = stack.contrail()
    kube, state = KubeView.read(stack.api()), read_contrail(client)
    client.close()
    failed = stack.failed()
    owners = set()
    if poison:
        owners = {(kind, ns or name, name) for (kind, ns, name) in poison}
        for (kind, ns, obj), key in poison.items():
            if key not in failed:
                problems.append(f"poison {kind} {ns}/{obj}: {key} is not a failed sync")
            if not Workload(stack.api()).events_for(kind, ns, obj):
                problems.append(f"poison {kind} {ns}/{obj}: no Kubernetes Event")
        failed = {k: v for k, v in failed.items() if k not in set(poison.values())}
    problems += [f"failed sync {k}: {v['error'][:200]}" for k, v in sorted(failed.items())]
    problems += [f"duplicate: {p}" for p in duplicates(kube, state)]
    problems += [f"leak: {p}" for p in leaks(kube, state)]
    problems += [f"invariant {v.invariant} violated for {v.subject} "
                 f"(from +{v.first_seen - fault_end:.1f}s after the fault): {v.detail}"
                 for v in violations]
    if check_store:
        lag = store_lag(stack, kube)
        problems += lag[:15] + ([f"... {len(lag) - 15} more store differences"]
                                if len(lag) > 15 else [])
    difference = diff(without(clean.snapshot, owners), without(final, owners))
    if difference:
        problems.append("Contrail differs from the clean run:\n" + difference)
    print(f"{name}: {checker.samples} invariant samples, sample errors {dict(checker.errors)}")
    assert not problems, f"{name}: {len(problems)} problem(s):\n" + "\n".join(problems)


def converged_stack(make_stack, *, timeout: float, **options):
    """A stack that has applied the workload's first two phases and settled."""
    stack = make_stack(**options)
    work = Workload(stack.api())
    work.phase1()
    work.phase2()
    converge(stack, timeout=timeout)
    return stack, work


def test_r1_workers_sigkilled_mid_run(make_stack, clean_run):
    stack = make_stack()
    checker = InvariantChecker(stack)
    checker.start()
    work = Workload(stack.api())
    mid_run = []
    for phase in (work.phase1, work.phase2, work.phase3):
        phase()
        mid_run.append(busy(stack))
        with checker.fault():
            victim = stack.kill_worker()
            stack.start_worker()
        fault_end = time.monotonic()
        print(f"R1: SIGKILLed {victim.name} (mid-run: {mid_run[-1]})")
    judge(stack, "R1", fault_end, clean_run, checker)


def test_r2_leader_watcher_sigkilled(make_stack, clean_run):
    stack = make_stack(watchers=2)
    leader = wait_for(stack.lease_holder, 30, "a lease holder")
    standby = next(w for w in stack.watchers if w.name != leader)
    checker = InvariantChecker(stack)
    checker.start()
    work = Workload(stack.api())
    work.phase1()
    busy(stack)
    killed = time.monotonic()
    with checker.fault():
        stack.kill(next(w for w in stack.watchers if w.name == leader))
        work.phase2()
        work.phase3()
        wait_for(lambda: stack.lease_holder() == standby.name, 60, "the standby taking over")
    report(f"FAULT R2 standby {standby.name} took over {time.monotonic() - killed:.1f}s "
           f"after the leader was killed")
    judge(stack, "R2", killed, clean_run, checker)


def test_r3a_redis_with_persistence_restarted_mid_workload(make_stack, clean_run):
    """Redis with appendonly (fsync always) SIGKILLed mid-run twice: once with the next
    phase applied while it is down, once in the middle of the last phase's work."""
    stack = make_stack(appendonly=True)
    checker = InvariantChecker(stack)
    checker.start()
    work = Workload(stack.api())
    work.phase1()
    print(f"R3a: mid-run when Redis died: {busy(stack)}")
    with checker.fault():
        stack.redis.kill()
        work.phase2()  # while Redis is down
        stack.redis.start()
    work.phase3()
    print(f"R3a: mid-run when Redis died again: {busy(stack)}")
    with checker.fault():
        stack.redis.kill()
        stack.redis.start()
    fault_end = time.monotonic()
    judge(stack, "R3a", fault_end, clean_run, checker)


class LiveGuard(threading.Thread):
    """Samples the VMIs and instance-ips of the pods alive at the start, every 0.2 s; none
    may disappear while its pod lives (no grace: a deleted port is an outage)."""

    def __init__(self, stack: FaultStack):
        super().__init__(daemon=True, name="live-guard")
        self.stack = stack
        self.stopped = threading.Event()
        self.guarded: dict[str, tuple[str, str]] = {}  # uuid -> (what, pod)
        self.lost: dict[str, str] = {}
        self.samples = 0
        client = stack.contrail()
        for vmi in client.list("virtual-machine-interface", detail=True):
            notes = {p["key"]: p["value"] for p in
                     (vmi.get("annotations") or {}).get("key_value_pair") or []}
            if notes.get("kind") != "Pod":
                continue
            pod = f"{notes['namespace']}/{notes['name']}"
            self.guarded[vmi["uuid"]] = ("VMI", pod)
            for ref in vmi.get("instance_ip_back_refs") or []:
                self.guarded[ref["uuid"]] = ("instance-ip", pod)
        client.close()

    def release(self, pods: set[str]) -> None:
        """Stop guarding the ports of pods about to be deleted on purpose."""
        self.guarded = {u: w for u, w in self.guarded.items() if w[1] not in pods}

    def run(self) -> None:
        client = self.stack.contrail()
        while not self.stopped.wait(0.2):
            try:
                present = {o["uuid"] for t in ("virtual-machine-interface", "instance-ip")
                           for o in client.list(t)}
            except Exception:
                continue
            self.samples += 1
            for uuid, (what, pod) in list(self.guarded.items()):
                if uuid not in present and uuid not in self.lost:
                    self.lost[uuid] = f"{what} of live pod {pod} deleted (sample {self.samples})"
        client.close()

    def stop(self) -> list[str]:
        self.stopped.set()
        self.join(10)
        return sorted(self.lost.values())


def _answers(check) -> bool:
    try:
        return bool(check())
    except redis.RedisError:
        return False


def test_r3b_redis_loses_everything_under_a_converged_stack(make_stack, clean_run):
    stack, work = converged_stack(make_stack, timeout=60, appendonly=False)
    guard = LiveGuard(stack)
    guard.start()
    checker = InvariantChecker(stack)
    checker.start()
    with checker.fault():
        stack.redis.kill()
        stack.redis.start()  # empty: no AOF, no RDB
        # let every process notice the new (empty) server before the change
        wait_for(lambda: stack.pending() is not None, 10, "Redis answering")
        lost_at = time.monotonic()
        # ckm pauses by design until the watcher has listed everything again: no key runs
        # and GC deletes nothing over the half-empty store; that pause is part of the fault
        wait_for(lambda: _answers(stack.context.store.complete), 20, "the store rebuilt")
        report(f"FAULT R3b store rebuilt {time.monotonic() - lost_at:.1f}s after the loss")
        # then every key runs again (their memory went with the data): the recovery ends when
        # that is done, before the next changes (members trail the slices until then)
        wait_for(lambda: stack.pending() == 0, 60, "every key run again")
        report(f"FAULT R3b caught up {time.monotonic() - lost_at:.1f}s after the loss")
    fault_end = time.monotonic()
    guard.release({f"{ns}/{name}" for ns, name in PHASE3_DELETE})
    work.phase3()

    def lost() -> list[str]:
        gone = guard.stop()
        print(f"R3b: live guard took {guard.samples} samples; lost {len(gone)}")
        return [f"live object deleted: {g}" for g in gone]

    judge(stack, "R3b", fault_end, clean_run, checker, late=lost)


def test_r7_engine_down_while_pods_deleted_recreated_relabelled(make_stack, clean_run):
    stack, work = converged_stack(make_stack, timeout=60)
    checker = InvariantChecker(stack)
    checker.start()
    with checker.fault():
        stack.stop_engine()
        work.phase3()  # deletes, a re-creation under the same name, relabels, new pods
        stack.start_engine()
    fault_end = time.monotonic()
    judge(stack, "R7", fault_end, clean_run, checker)


def test_r9_poison_objects_fail_alone(make_stack, clean_run):
    stack = make_stack()
    checker = InvariantChecker(stack)
    checker.start()
    work = Workload(stack.api())
    started = time.monotonic()
    work.phase1()
    work.poison()
    work.phase2()
    work.phase3()
    judge(stack, "R9", started, clean_run, checker, poison=POISON_KEYS)


def test_r4_kubernetes_api_unavailable_for_30s(make_stack, clean_run):
    """The API answers 503 to everything for 30 s (open watch streams stay, as the emulator's
    fault knob does it), while the pods created just before it are being started: the
    watcher loses its lease renewals, the workers their Event/status writes."""
    stack = make_stack()
    checker = InvariantChecker(stack)
    checker.start()
    work = Workload(stack.api())
    work.phase1()
    with checker.fault():
        stack.kube_admin("POST", "faults", {"unavailable_for": 30})
        wait_for(lambda: stack.kube_admin("GET", "faults")["unavailable_for"] == 0, 45,
                 "the end of the Kubernetes outage")
    fault_end = time.monotonic()
    work.phase2()
    work.phase3()
    judge(stack, "R4", fault_end, clean_run, checker)


def test_r5_forced_410_with_deletes_while_not_watching(make_stack, clean_run):
    """The watcher is frozen (SIGSTOP) while pods are deleted, re-created and relabelled; the
    history is compacted and every watch dropped, so it resumes into 410 Gone and must
    relist and diff: the deletes are only visible as objects missing from the list."""
    stack, work = converged_stack(make_stack, timeout=45)
    checker = InvariantChecker(stack)
    checker.start()
    watcher = stack.live(stack.watchers)[0]
    with checker.fault():
        stack.freeze(watcher)
        try:
            work.phase3()
            stack.kube_admin("POST", "compact")
            stack.kube_admin("POST", "watches/drop")
        finally:
            stack.thaw(watcher)
    fault_end = time.monotonic()
    judge(stack, "R5", fault_end, clean_run, checker)


def test_r6_contrail_503_storm_and_20s_outage(make_stack, clean_run):
    """30% of Contrail calls answer 503 during the workload, then Contrail is down (503) for
    20 s while the last phase is applied."""
    stack = make_stack()
    checker = InvariantChecker(stack)
    checker.start()
    work = Workload(stack.api())
    with checker.fault():
        stack.contrail_faults(error_rate=0.3, seed=7)
        work.phase1()
        work.phase2()
        busy(stack)
        stack.contrail_faults(outage_seconds=20)
        work.phase3()
        wait_for(lambda: stack.contrail_faults()["outage_seconds"] == 0, 30,
                 "the end of the Contrail outage")
        stack.contrail_faults(error_rate=0.0)
    fault_end = time.monotonic()
    judge(stack, "R6", fault_end, clean_run, checker)


def _events(api) -> list[dict]:
    """Every pod as a MODIFIED watch event of this moment (to be replayed later)."""
    pods = kubernetes.client.CoreV1Api(api).list_pod_for_all_namespaces().items
    return [{"type": "MODIFIED", "object": api.sanitize_for_serialization(p)} for p in pods]


def _replay(stack, events: list[dict]) -> list[str]:
    """Feed old events into the store path as the leading watcher would, with its term and
    generation: each must be refused (a replay) and change nothing."""
    store = stack.context.store
    term = int(stack.context.redis.get("ckm:term"))
    _, generation = store.resume_point("Pod")
    writer = store.writer("Pod", term=term, generation=generation)
    accepted = []
    for event in events:
        meta = event["object"]["metadata"]
        status = writer.put(meta["namespace"], meta["name"], PROJECTIONS["Pod"](event["object"]),
                            object_rv=meta["resourceVersion"],
                            resume_rv=meta["resourceVersion"])
        if status != STALE:
            accepted.append(f"replayed event of pod {meta['namespace']}/{meta['name']} "
                            f"(rv {meta['resourceVersion']}) was accepted")
    return accepted


def test_r8_duplicate_deliveries(make_stack, clean_run):
    """Every key delivered again while the workload's own events flow: `ckm resync` (the
    real command: every stored key re-enqueued, GC) and dropped watch streams, four times
    in the middle of the workload; then the pod events of each phase replayed out of order
    into the store path, as a watcher resuming from an old point would."""
    stack = make_stack()
    checker = InvariantChecker(stack)
    checker.start()
    work = Workload(stack.api())
    env = {**os.environ, **stack.env()}
    old: list[list[dict]] = []

    def duplicate() -> None:
        stack.kube_admin("POST", "watches/drop")
        done = subprocess.run([sys.executable, "-m", "ckm", "resync"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr

    with checker.fault():
        for phase in (work.phase1, work.phase2, work.phase3):
            phase()
            old.append(_events(stack.api()))
            duplicate()
        duplicate()
        wait_for(lambda: stack.pending() == 0, 30, "the workload handled")
        accepted = [a for events in reversed(old) for a in _replay(stack, events)]
    fault_end = time.monotonic()
    judge(stack, "R8", fault_end, clean_run, checker, late=lambda: accepted)

"""The engine end to end with real Celery worker processes, Redis and the Contrail emulator."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections import defaultdict

import httpx
import pytest

from contrail.errors import NotFound
from tasks import naming
from workers.engine import RUNS
from workers.limits import PEAK
from workers.reconcilers import CLUSTER_KEY

pytestmark = pytest.mark.integration


def put_namespace(stack, name, annotations=None):
    stack.context.store.put("Namespace", "", name, {"uid": f"uid-{name}", "labels": {},
                                                   "annotations": annotations or {}})


def project_exists(stack, name) -> bool:
    uuid = naming.object_uuid("k8s", "Namespace", name, "project")
    try:
        stack.context.contrail.read("project", uuid)
    except NotFound:
        return False
    return True


def runs(stack) -> list[dict]:
    return [json.loads(r) for r in stack.context.redis.lrange(RUNS, 0, -1)]


def counters(stack) -> dict:
    return httpx.get(f"{stack.contrail_url}/_emulator/counters").json()


def test_keys_sync_and_many_updates_collapse_into_one_run(celery_stack):
    sent = 0
    for i in range(1000):
        put_namespace(celery_stack, "busy", {"opencontrail.org/note": str(i)})
        sent += celery_stack.enqueue(["namespace/busy"])
    assert sent == 1                        # one Celery message for 1,000 updates
    celery_stack.enqueue([CLUSTER_KEY])
    celery_stack.start_worker()
    celery_stack.wait_idle()
    assert project_exists(celery_stack, "busy")
    busy_runs = [r for r in runs(celery_stack) if r["key"] == "namespace/busy"]
    assert [r["outcome"] for r in busy_runs] in (["done"], ["done", "not-ready"])


def test_a_message_lands_in_its_own_queue_only(celery_stack):
    """Every ckm queue is declared (Flower lists them) with its own exchange: a shared one
    would copy each message into every queue."""
    from workers.syncs import queues

    with celery_stack.app.connection_for_write() as connection:  # as a worker declares them
        for queue in celery_stack.app.amqp.queues.values():
            queue.bind(connection.default_channel).declare()
    celery_stack.enqueue(["port/shop/web-1"])
    lengths = {name: celery_stack.context.redis.llen(name) for name in queues()}
    assert lengths == {name: int(name == "ckm.pod") for name in queues()}


def test_one_key_never_runs_twice_at_once_across_workers(celery_stack):
    for _ in range(2):
        celery_stack.start_worker(concurrency=4)
    httpx.put(f"{celery_stack.contrail_url}/_emulator/faults", json={"latency_ms": 5})
    names = [f"ns{i}" for i in range(8)]
    for round_ in range(15):
        for name in names:
            put_namespace(celery_stack, name, {"opencontrail.org/round": str(round_)})
        celery_stack.enqueue([f"namespace/{n}" for n in names])
        time.sleep(0.02)
    celery_stack.wait_idle()
    by_key = defaultdict(list)
    for r in runs(celery_stack):
        if r["outcome"] != "busy":
            by_key[r["key"]].append((r["start"], r["end"]))
    assert set(by_key) == {f"namespace/{n}" for n in names}
    for key, spans in by_key.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end - 0.001, f"{key} ran twice at once"


def test_a_change_during_a_run_is_not_lost(celery_stack):
    celery_stack.start_worker()
    celery_stack.enqueue([CLUSTER_KEY])
    celery_stack.wait_idle()
    httpx.put(f"{celery_stack.contrail_url}/_emulator/faults", json={"latency_ms": 300})
    put_namespace(celery_stack, "moving")
    celery_stack.enqueue(["namespace/moving"])
    celery_stack.wait_running()
    put_namespace(celery_stack, "moving", {"opencontrail.kubernetes.isolated": "true"})
    celery_stack.enqueue(["namespace/moving"])
    celery_stack.wait_idle()
    project = naming.object_uuid("k8s", "Namespace", "moving", "project")
    networks = celery_stack.context.contrail.list("virtual-network", parent_id=project)
    assert [n["fq_name"][-1] for n in networks] == ["moving-vn"]


def test_a_worker_killed_mid_task_loses_nothing(celery_stack):
    first = celery_stack.start_worker()
    celery_stack.enqueue([CLUSTER_KEY])
    celery_stack.wait_idle()
    httpx.put(f"{celery_stack.contrail_url}/_emulator/faults", json={"latency_ms": 1500})
    put_namespace(celery_stack, "survivor")
    celery_stack.enqueue(["namespace/survivor"])
    celery_stack.wait_running()
    celery_stack.kill(first)
    httpx.put(f"{celery_stack.contrail_url}/_emulator/faults", json={"latency_ms": 0})
    celery_stack.start_worker(CKM_LOG_LEVEL="INFO")
    celery_stack.wait_idle(timeout=60)
    assert project_exists(celery_stack, "survivor"), (
        [r for r in runs(celery_stack) if r["key"] == "namespace/survivor"],
        celery_stack.context.failures.all(), celery_stack.context.queue.delayed())
    same_name = celery_stack.context.contrail.list(
        "project", filters={"display_name": "k8s-survivor"})
    assert len(same_name) == 1


def test_poison_object_fails_while_the_others_sync(celery_stack):
    celery_stack.start_worker()
    celery_stack.enqueue([CLUSTER_KEY])
    good = [f"good{i}" for i in range(20)]
    for name in good:
        put_namespace(celery_stack, name)
    put_namespace(celery_stack, "poison", {"opencontrail.org/isolation": "maybe"})
    celery_stack.enqueue([f"namespace/{n}" for n in [*good, "poison"]])
    celery_stack.wait_idle()
    assert all(project_exists(celery_stack, n) for n in good)
    failures = celery_stack.context.failures.all()
    assert [f.key for f in failures] == ["namespace/poison"]
    assert failures[0].permanent and "maybe" in failures[0].error


def test_retry_with_backoff_then_success(celery_stack):
    celery_stack.start_worker()
    httpx.put(f"{celery_stack.contrail_url}/_emulator/faults", json={"outage_seconds": 1.5})
    celery_stack.enqueue([CLUSTER_KEY])
    put_namespace(celery_stack, "patient")
    celery_stack.enqueue(["namespace/patient"])
    celery_stack.wait_idle(timeout=60)
    assert project_exists(celery_stack, "patient")
    outcomes = [r["outcome"] for r in runs(celery_stack) if r["key"] == "namespace/patient"]
    assert outcomes[0] == "done" and "error" in outcomes[1:]
    assert celery_stack.context.failures.all() == []


def test_global_contrail_concurrency_cap_is_never_exceeded(celery_stack):
    for _ in range(2):
        celery_stack.start_worker(concurrency=6, CKM_CONTRAIL_MAX_INFLIGHT=3)
    httpx.put(f"{celery_stack.contrail_url}/_emulator/faults", json={"latency_ms": 10})
    celery_stack.enqueue([CLUSTER_KEY])
    names = [f"cap{i}" for i in range(40)]
    for name in names:
        put_namespace(celery_stack, name)
    celery_stack.enqueue([f"namespace/{n}" for n in names])
    celery_stack.wait_idle()
    assert all(project_exists(celery_stack, n) for n in names)
    assert int(celery_stack.context.redis.get(PEAK)) == 3


def test_task_events_only_while_a_monitor_asks_for_them(celery_stack):
    """Issue 15: events cost every run Redis publishes; workers send them only after a
    monitor (Flower) broadcasts enable_events, and stop on disable_events."""
    import threading

    celery_stack.start_worker()
    app, seen = celery_stack.app, []

    def listen(stop: threading.Event) -> None:
        with app.connection_for_read() as connection:
            receiver = app.events.Receiver(connection, handlers={"*": seen.append})
            while not stop.is_set():
                with contextlib.suppress(Exception):  # timeouts: listen again
                    receiver.capture(limit=None, timeout=0.5, wakeup=False)

    def task_events_during(keys: list[str]) -> list[str]:
        seen.clear()
        stop = threading.Event()
        thread = threading.Thread(target=listen, args=(stop,), daemon=True)
        thread.start()
        time.sleep(1)  # subscribed before anything runs
        for key in keys:
            put_namespace(celery_stack, key.split("/")[1])
        celery_stack.enqueue(keys)
        celery_stack.wait_idle()
        time.sleep(1)
        stop.set()
        thread.join(5)
        return [e["type"] for e in seen if e["type"].startswith("task-")]

    celery_stack.enqueue([CLUSTER_KEY])
    celery_stack.wait_idle()
    assert task_events_during(["namespace/quiet"]) == []
    app.control.enable_events()
    assert "task-succeeded" in task_events_during(["namespace/watched"])
    app.control.disable_events()
    assert task_events_during(["namespace/quiet-again"]) == []

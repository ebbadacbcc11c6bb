"""`ckm bench resync`: a full resync pass at cluster scale, and what it does to live changes.

A private redis-server, the Contrail emulator and N `ckm worker` processes; pods written straight
into the store (no kubelets). Phases: cold (every pod's keys from nothing), then live pod adds
with no pass running (the baseline), then a full pass (epoch bumped: every key verifies its
objects, GC walks Contrail) with the same live pod adds during it: their latency from the store
write to their port's run, p50/p99.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ckm.bench_common import bench_app, cpu_seconds, out, process_groups, wait_idle


def _pod(i: int, node: str) -> dict:
    return {"uid": f"00000000-0000-4000-8000-{i:012d}", "annotations": {},
            "labels": {"app": f"a{i % 500}"}, "node": node, "host_network": False,
            "finished": False, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def celery_backlog(context) -> int:
    """Messages waiting in ckm's Celery queues (kombu keeps each priority in its own list)."""
    from workers.syncs import queues

    names = [k for name in queues() for k in context.redis.scan_iter(f"{name}*")
             if context.redis.type(k) in (b"list", "list")]
    return sum(context.redis.llen(k) for k in names)


class LiveChanges(threading.Thread):
    """Adds a pod every `every` seconds (as the watcher would: store write, then its keys
    enqueued on their normal lanes) and measures until its port key has run."""

    def __init__(self, context, celery_app, *, every: float, prefix: str, nodes: int):
        super().__init__(daemon=True)
        self.context, self.app, self.every, self.prefix = context, celery_app, every, prefix
        self.nodes = nodes
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from tasks.fanout import affected_keys
        from workers.dispatch import enqueue
        from workers.engine import LAST_RUN

        pending: dict[str, float] = {}
        i = 0
        next_at = time.monotonic()
        while not self.stop.is_set() or pending:
            now = time.monotonic()
            if not self.stop.is_set() and now >= next_at:
                name = f"{self.prefix}-{i}"
                projection = _pod(900_000_000 + i, f"node{i % self.nodes}")
                self.context.store.put("Pod", "ns00", name, projection)
                enqueue(self.app, self.context.queue,
                        affected_keys("Pod", "ns00", name, None, projection))
                pending[f"port/ns00/{name}"] = now
                i, next_at = i + 1, now + self.every
            for key, started in list(pending.items()):
                if self.context.redis.exists(LAST_RUN + key):
                    self.latencies.append(time.monotonic() - started)
                    del pending[key]
                elif time.monotonic() - started > 600:
                    del pending[key]  # counted as lost below
            time.sleep(0.005)

    def summary(self) -> dict:
        got = sorted(self.latencies)
        if not got:
            return {"live_changes": 0}
        return {"live_changes": len(got),
                "live_p50_ms": round(statistics.median(got) * 1000, 1),
                "live_p99_ms": round(got[min(len(got) - 1, int(len(got) * 0.99))] * 1000, 1),
                "live_max_ms": round(got[-1] * 1000, 1)}


@bench_app.command("resync")
def bench_resync(
    pods: Annotated[int, typer.Option(help="Pods in the store")] = 10_000,
    namespaces: Annotated[int, typer.Option(help="Namespaces")] = 20,
    nodes: Annotated[int, typer.Option(help="Nodes (virtual routers)")] = 10,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 2,
    concurrency: Annotated[int, typer.Option(help="Threads per worker")] = 16,
    latency_ms: Annotated[float, typer.Option(help="Contrail emulator latency per call")] = 0.0,
    live_every: Annotated[float, typer.Option(help="Seconds between live pod adds")] = 0.25,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Cold, then a full resync pass with live pod adds during it (their latency)."""
    from ckm.processes import Processes, wait_until
    from config.settings import Settings
    from workers import context as contexts
    from workers.app import configure
    from workers.dispatch import enqueue
    from workers.reconcilers import CLUSTER_KEY
    from workers.resync import DONE, progress, resync

    report: dict = {"pods": pods, "namespaces": namespaces, "workers": workers,
                    "threads": concurrency, "latency_ms": latency_ms}
    with tempfile.TemporaryDirectory(prefix="ckm-bench-") as tmp, Processes(Path(tmp)) as procs:
        broker = procs.redis()
        contrail = procs.contrail(0, "--latency-ms", str(latency_ms))
        context = contexts.Context(Settings(broker_url=broker, contrail_urls=[contrail]))
        store = context.store
        store.mark_complete()  # no watcher: the bench writes the whole store itself
        for kind in ("Namespace", "Pod", "Service", "EndpointSlice", "NetworkPolicy",
                     "Ingress", "Node"):
            store.writer(kind).listed("1")  # as a watcher that listed every kind (GC runs)
        contexts.install(context)
        celery_app = configure(context.settings)
        env = {"CKM_BROKER_URL": broker, "CKM_CONTRAIL_URLS": contrail,
               "CKM_LOG_LEVEL": "WARNING", "CKM_WORKER_CONCURRENCY": str(concurrency)}
        for i in range(workers):
            procs.ckm(f"worker-{i}", "worker", "--name", f"bench{i}@%h", env=env)
        wait_until(lambda: len(celery_app.control.ping(timeout=0.5)) >= workers, "workers",
                   timeout=60)
        groups = process_groups(procs)
        pids, redis_pid = groups["workers"], groups["redis"]
        for n in range(nodes):
            context.contrail.create("virtual-router", {
                "fq_name": ["default-global-system-config", f"node{n}"],
                "parent_type": "global-system-config"})
        names = [f"ns{i:02d}" for i in range(namespaces)]
        items = [("Namespace", "", ns, {"uid": ns, "annotations": {}, "labels": {}})
                 for ns in names]
        items += [("Node", "", f"node{n}", {"uid": f"node{n}", "addresses": {}})
                  for n in range(nodes)]
        items += [("Pod", names[i % namespaces], f"p{i:06d}", _pod(i, f"node{i % nodes}"))
                  for i in range(pods)]
        for start in range(0, len(items), 1000):
            store.put_many(items[start:start + 1000])
        keys = [CLUSTER_KEY, *(f"namespace/{ns}" for ns in names)]
        keys += [f"port/{names[i % namespaces]}/p{i:06d}" for i in range(pods)]

        def cpu() -> tuple[float, float]:
            return sum(cpu_seconds(p) for p in pids), sum(cpu_seconds(p) for p in redis_pid)

        before, started = cpu(), time.perf_counter()
        for start in range(0, len(keys), 1000):
            enqueue(celery_app, context.queue, keys[start:start + 1000])
        wait_idle(context, 3600, label="cold")
        report["cold_seconds"] = round(time.perf_counter() - started, 1)
        after = cpu()
        report["cold_worker_cpu_ms_per_pod"] = round((after[0] - before[0]) * 1000 / pods, 2)
        # Celery messages still in the broker once no key is pending: each is a no-op run
        # now (its key is not queued), but live work waits behind them
        report["celery_messages_after_cold"] = celery_backlog(context)

        baseline = LiveChanges(context, celery_app, every=live_every, prefix="calm",
                               nodes=nodes)
        baseline.start()
        time.sleep(10)
        baseline.stop.set()
        baseline.join()
        report["no_pass"] = baseline.summary()

        live = LiveChanges(context, celery_app, every=live_every, prefix="live", nodes=nodes)
        live.start()
        before, started = cpu(), time.perf_counter()
        counts = resync(context, celery_app)
        report["gc_seconds"] = round(time.perf_counter() - started, 1)
        report["pass_objects"] = counts.get("objects")
        lane_peak = 0
        while progress(context) is not None:
            lane_peak = max(lane_peak, context.queue.resync_lane())
            time.sleep(0.05)
        wait_idle(context, 3600, label="resync")
        report["pass_seconds"] = round(time.perf_counter() - started, 1)
        after = cpu()
        live.stop.set()
        live.join()
        done = progress(context, DONE) or {}
        report["pass_keys_sent"] = int(done.get("sent", 0))
        report["pass_keys_per_second"] = round(int(done.get("sent", 0)) /
                                               max(report["pass_seconds"], 1e-6), 1)
        report["pass_worker_cpu_ms_per_key"] = round(
            (after[0] - before[0]) * 1000 / max(int(done.get("sent", 1)), 1), 2)
        report["pass_redis_cpu_ms_per_key"] = round(
            (after[1] - before[1]) * 1000 / max(int(done.get("sent", 1)), 1), 2)
        report["resync_lane_peak"] = lane_peak
        report["during_pass"] = live.summary()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table("", "", title="ckm bench resync", show_header=False)
    for k, v in report.items():
        table.add_row(k, json.dumps(v) if isinstance(v, dict) else str(v))
    out.print(table)

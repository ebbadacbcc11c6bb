"""`ckm bench ...`: measurements on a private local system (never on your Redis or Contrail).

`ckm bench engine` starts a private redis-server, the Contrail emulator and N worker processes,
then times namespaces from cold (store + enqueue, as the watcher does, until idle) and a full
resync of the same keys, and counts Contrail calls and reconcile runs per key.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from ckm.bench_common import bench_app, cpu_seconds, out, peak_rss_mb, process_groups, wait_idle
from ckm.cli import app

app.add_typer(bench_app, name="bench")


def _phase(name, context, contrail_url, keys, action, timeout,
           processes: dict[str, list[int]] | None = None) -> dict:
    """Run one phase; with `processes` (label -> pids), also their CPU per object."""
    from workers.engine import RUNS

    context.redis.delete(RUNS)
    httpx.post(f"{contrail_url}/_emulator/counters/reset").raise_for_status()
    processes = processes or {}
    cpu = {label: sum(cpu_seconds(p) for p in pids) for label, pids in processes.items()}
    started = time.perf_counter()
    action()
    wait_idle(context, timeout, label=name)
    elapsed = time.perf_counter() - started
    cpu = {f"{label}_cpu_ms_per_object": round(
        (sum(cpu_seconds(p) for p in processes[label]) - used) * 1000 / len(keys), 2)
        for label, used in cpu.items()}
    counted = httpx.get(f"{contrail_url}/_emulator/counters").json()
    calls = counted["total"]
    runs = Counter(json.loads(r)["key"] for r in context.redis.lrange(RUNS, 0, -1))
    return {"phase": name, "objects": len(keys), "seconds": round(elapsed, 2),
            "objects_per_second": round(len(keys) / elapsed, 1),
            "contrail_calls": calls, "calls_per_object": round(calls / len(keys), 2),
            "runs_per_key": round(sum(runs[k] for k in keys) / len(keys), 2),
            **cpu, "calls_by_operation": counted["by_operation"]}


@bench_app.command("engine")
def bench_engine(
    namespaces: Annotated[int, typer.Option(help="Namespaces to create")] = 1000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    concurrency: Annotated[int, typer.Option(help="Threads per worker")] = 16,
    latency_ms: Annotated[float, typer.Option(help="Contrail emulator latency per call")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Namespaces from cold and a full resync, with N worker processes."""
    from ckm.processes import Processes, wait_until
    from config.settings import Settings
    from workers import context as contexts
    from workers.app import configure
    from workers.dispatch import enqueue
    from workers.reconcilers import CLUSTER_KEY

    with tempfile.TemporaryDirectory(prefix="ckm-bench-") as tmp, Processes(Path(tmp)) as procs:
        broker = procs.redis()
        contrail = procs.contrail(0, "--latency-ms", str(latency_ms))
        context = contexts.Context(Settings(broker_url=broker, contrail_urls=[contrail]))
        context.store.mark_complete()  # no watcher: the bench writes the whole store itself
        contexts.install(context)
        celery_app = configure(context.settings)
        env = {"CKM_BROKER_URL": broker, "CKM_CONTRAIL_URLS": contrail,
               "CKM_LOG_LEVEL": "WARNING", "CKM_WORKER_CONCURRENCY": str(concurrency)}
        for i in range(workers):
            procs.ckm(f"worker-{i}", "worker", "--name", f"bench{i}@%h", env=env)
        wait_until(lambda: len(celery_app.control.ping(timeout=0.5)) >= workers, "workers",
                   timeout=60)
        enqueue(celery_app, context.queue, [CLUSTER_KEY])
        wait_idle(context, 60)
        names = [f"bench-{i:05d}" for i in range(namespaces)]
        keys = [f"namespace/{n}" for n in names]

        def create():
            for name in names:
                context.store.put("Namespace", "", name,
                                  {"uid": f"uid-{name}", "labels": {}, "annotations": {}})
            for start in range(0, len(keys), 500):
                enqueue(celery_app, context.queue, keys[start:start + 500])

        def resync():  # a full pass, as `ckm resync` starts it: every object verified
            from workers.resync import resync as start_pass

            start_pass(context, celery_app)

        measured = {part: pids for part, pids in process_groups(procs).items()
                    if part in ("workers", "redis")}
        results = [_phase("cold", context, contrail, keys, create, 900, measured),
                   _phase("resync", context, contrail, keys, resync, 900, measured)]
        for r in results:
            r.update(workers=workers, threads=concurrency, latency_ms=latency_ms)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    table = Table(*results[0].keys(), title="ckm bench engine (namespaces)")
    for r in results:
        table.add_row(*(str(v) for v in r.values()))
    out.print(table)


@bench_app.command("contrail-emulator")
def bench_contrail_emulator(
    seconds: Annotated[float, typer.Option(help="Duration")] = 10.0,
    concurrency: Annotated[int, typer.Option(help="Concurrent requests per process")] = 8,
    processes: Annotated[int, typer.Option(help="Client processes")] = 2,
) -> None:
    """Requests/s of the Contrail emulator (run as its own process) under the pod life cycle."""
    from ckm.processes import Processes
    from emulators.contrail.bench import run

    with tempfile.TemporaryDirectory(prefix="ckm-bench-") as tmp, Processes(Path(tmp)) as procs:
        url = procs.contrail()
        typer.echo(json.dumps(run(url, seconds=seconds, concurrency=concurrency,
                                  processes=processes), indent=2))


def _counts(url: str) -> dict:
    return httpx.get(f"{url}/_emulator/counters").json()


@bench_app.command("cluster")
def bench_cluster(
    pods: Annotated[int, typer.Option(help="Pods to create")] = 200,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 2,
    nodes: Annotated[int, typer.Option(help="Simulated nodes")] = 3,
    latency_ms: Annotated[float, typer.Option(help="Contrail emulator latency per call")] = 10.0,
    flower: Annotated[bool, typer.Option(help="Run Flower too (its cost is its own)")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The whole pipeline (kube emulator with nodes -> watcher -> workers -> Contrail
    emulator): Contrail calls per pod ADD, per service ADD and per endpoint change, and each
    process's CPU per object and peak memory."""
    import kubernetes.client

    from ckm.processes import Processes, wait_until
    from ckm.stack import StackOptions, start
    from config.settings import Settings
    from workers.context import Context

    with tempfile.TemporaryDirectory(prefix="ckm-bench-") as tmp, Processes(Path(tmp)) as procs:
        info = start(procs, StackOptions(workers=workers, nodes=nodes,
                                         flower_port=0 if flower else None, beat=False,
                                         contrail_latency_ms=latency_ms))
        groups = process_groups(procs)
        contrail = info.contrail_url
        context = Context(Settings(broker_url=info.broker_url, contrail_urls=[contrail]))
        conf = kubernetes.client.Configuration()
        conf.host = info.kube_url
        core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(conf))
        wait_until(lambda: context.store.resource_version("Pod") is not None, "watcher")
        wait_idle(context, 120)
        core.create_namespace({"metadata": {"name": "bench"}})
        wait_idle(context, 60)

        def running() -> int:
            return sum(p.status.phase == "Running"
                       for p in core.list_namespaced_pod("bench").items)

        results = []

        def phase(name: str, count: int, action, done) -> None:
            httpx.post(f"{contrail}/_emulator/counters/reset").raise_for_status()
            used = {part: sum(map(cpu_seconds, pids)) for part, pids in groups.items()}
            started = time.perf_counter()
            action()
            wait_until(done, name, timeout=900)
            wait_idle(context, 900)
            elapsed = time.perf_counter() - started
            counted = _counts(contrail)
            cpu = {part: round((sum(map(cpu_seconds, pids)) - used[part]) * 1000 / count, 2)
                   for part, pids in groups.items()}
            results.append({"phase": name, "objects": count, "seconds": round(elapsed, 2),
                            "contrail_calls": counted["total"],
                            "calls_per_object": round(counted["total"] / count, 2),
                            "cpu_ms_per_object": cpu,
                            "calls_by_operation": counted["by_operation"]})

        def create_pods() -> None:
            for i in range(pods):
                core.create_namespaced_pod("bench", {
                    "metadata": {"name": f"p{i:05d}", "labels": {"app": "bench"}},
                    "spec": {"containers": [{"name": "c", "image": "x",
                                             "ports": [{"containerPort": 80}]}]}})

        phase("pod ADD", pods, create_pods, lambda: running() == pods)
        def endpoints() -> int:
            return sum(len(p.get("endpoints") or []) for _, p in
                       context.store.in_namespace("EndpointSlice", "bench"))

        phase("service ADD", 1, lambda: core.create_namespaced_service("bench", {
            "metadata": {"name": "web"}, "spec": {"selector": {"app": "bench"},
                                                  "ports": [{"port": 80}]}}),
            lambda: endpoints() == pods)
        phase("endpoint change", 1, lambda: core.patch_namespaced_pod(
            "p00000", "bench", {"metadata": {"labels": {"app": "elsewhere"}}}),
            lambda: endpoints() == pods - 1)

        def unrelated_change():
            core.patch_namespaced_pod("p00001", "bench",
                                      {"metadata": {"annotations": {"note": "x"}}})
            time.sleep(1.0)  # let the event reach the watcher (it changes nothing it stores)

        phase("pod update, nothing relevant", 1, unrelated_change, lambda: True)
        peak = {part: max(map(peak_rss_mb, pids)) for part, pids in groups.items()}
    if as_json:
        typer.echo(json.dumps({"pods": pods, "workers": workers, "latency_ms": latency_ms,
                               "phases": results, "peak_rss_mb": peak}, indent=2))
        return
    table = Table("phase", "objects", "seconds", "Contrail calls", "calls/object",
                  "by operation", title=f"ckm bench cluster ({pods} pods, {workers} workers)")
    for r in results:
        table.add_row(r["phase"], str(r["objects"]), str(r["seconds"]),
                      str(r["contrail_calls"]), str(r["calls_per_object"]),
                      ", ".join(f"{k} {v}" for k, v in r["calls_by_operation"].items()))
    out.print(table)
    added = results[0]["cpu_ms_per_object"]
    table = Table("process", "CPU per pod ADD (ms)", "peak RSS (MB)",
                  title=f"CPU and memory by process (Contrail latency {latency_ms} ms)")
    for part in groups:
        table.add_row(part, str(added[part]), str(peak[part]))
    ckm_parts = [p for p in ("watcher", "workers", "redis") if p in added]
    table.add_row("ckm (watcher + workers + Redis)",
                  str(round(sum(added[p] for p in ckm_parts), 2)), "")
    out.print(table)


@bench_app.command("policy")
def bench_policy(
    pods: Annotated[int, typer.Option(help="Pods")] = 10000,
    policies: Annotated[int, typer.Option(help="NetworkPolicies")] = 1000,
    namespaces: Annotated[int, typer.Option(help="Namespaces")] = 20,
    threads: Annotated[int, typer.Option(help="Concurrent runs (in this process)")] = 16,
) -> None:
    """Compile time and Contrail calls for many policies over many pods, and for one label
    change at that size (keys run in-process against a private Contrail emulator)."""
    from concurrent.futures import ThreadPoolExecutor

    from ckm.processes import Processes
    from config.settings import Settings
    from tasks import policy as compiler
    from tasks.fanout import affected_keys
    from workers.context import Context
    from workers.engine import run_key
    from workers.policies_in_force import policies as parsed_policies
    from workers.reconcilers import CLUSTER_KEY

    def run_all(context, keys):
        context.queue.enqueue(keys)  # a key runs only while it is queued

        def one(key):
            outcome = run_key(context, key, lambda _: None)
            if outcome != "done":
                raise RuntimeError(f"{key}: {outcome}: {context.failures.get(key)}")
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, keys))

    report = {}
    with tempfile.TemporaryDirectory(prefix="ckm-bench-") as tmp, Processes(Path(tmp)) as procs:
        broker, contrail = procs.redis(), procs.contrail()
        context = Context(Settings(broker_url=broker, contrail_urls=[contrail]))
        store = context.store
        store.mark_complete()  # no watcher: the bench writes the whole store itself
        run_all(context, [CLUSTER_KEY])
        for n in range(10):
            context.contrail.create("virtual-router", {
                "fq_name": ["default-global-system-config", f"node{n}"],
                "parent_type": "global-system-config"})
        names = [f"ns{i:02d}" for i in range(namespaces)]
        for i, ns in enumerate(names):
            store.put("Namespace", "", ns, {"uid": ns, "annotations": {},
                                            "labels": {"team": f"t{i % 5}"}})
        run_all(context, [f"namespace/{ns}" for ns in names])
        pod_keys = []
        for i in range(pods):
            ns = names[i % namespaces]
            store.put("Pod", ns, f"p{i:05d}", {
                "uid": f"00000000-0000-4000-8000-{i:012d}", "annotations": {},
                "labels": {"app": f"a{i % 50}", "tier": "web" if i % 2 else "db"},
                "node": f"node{i % 10}", "host_network": False, "finished": False,
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
            pod_keys.append((ns, f"p{i:05d}"))
        started = time.perf_counter()
        run_all(context, [f"port/{ns}/{p}" for ns, p in pod_keys])
        report["ports_created_seconds"] = round(time.perf_counter() - started, 1)
        for j in range(policies):
            ns = names[j % namespaces]
            store.put("NetworkPolicy", ns, f"np{j:04d}", {"uid": f"np-{j}", "spec": {
                "podSelector": {"matchLabels": {"app": f"a{j % 50}"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {
                    "app": f"a{(j + 1) % 50}"}}},
                    {"namespaceSelector": {"matchLabels": {"team": f"t{j % 5}"}}}],
                    "ports": [{"port": 80}, {"port": "http"}]}]}})
        started = time.perf_counter()
        parsed = parsed_policies(context)
        compiled = sum(len(compiler.groups(context.settings, p, [], {})) for p in parsed)
        index = compiler.PolicyIndex(context.settings, parsed)
        per_pod = [index.pod_groups(ns, store.get("Pod", ns, p), {"team": "t0"})
                   for ns, p in pod_keys]
        report["compile_seconds_policies"] = round(time.perf_counter() - started, 2)
        report["groups"] = compiled + len(index.peers)
        report["shared_peer_groups"] = len(index.peers)
        report["groups_per_pod_avg"] = round(sum(map(len, per_pod)) / len(per_pod), 1)
        httpx.post(f"{contrail}/_emulator/counters/reset")
        started = time.perf_counter()
        run_all(context, list(index.peers))  # the shared peer groups the rules name first
        run_all(context, [f"policy/{p.namespace}/{p.name}" for p in parsed])
        report["policy_sync_seconds"] = round(time.perf_counter() - started, 1)
        report["policy_sync_calls"] = _counts(contrail)["total"]
        httpx.post(f"{contrail}/_emulator/counters/reset")
        started = time.perf_counter()
        run_all(context, [f"sgs/{ns}/{p}" for ns, p in pod_keys])
        report["recompute_all_sgs_seconds"] = round(time.perf_counter() - started, 1)
        report["recompute_all_sgs_calls"] = _counts(contrail)["total"]
        # one pod's label change
        ns, name = pod_keys[7]
        old = store.get("Pod", ns, name)
        new = {**old, "labels": {**old["labels"], "app": "a33"}}
        httpx.post(f"{contrail}/_emulator/counters/reset")
        started = time.perf_counter()
        store.put("Pod", ns, name, new)
        keys = affected_keys("Pod", ns, name, old, new, store)
        fanout_seconds = time.perf_counter() - started
        run_all(context, keys)
        report["label_change_keys"] = keys
        report["label_change_fanout_ms"] = round(fanout_seconds * 1000, 1)
        report["label_change_seconds"] = round(time.perf_counter() - started, 3)
        report["label_change_calls"] = _counts(contrail)["by_operation"]
        # one pod added on a node (the fan-out re-resolves the policies' named ports)
        added = {**old, "uid": "00000000-0000-4000-8000-999999999999"}
        started = time.perf_counter()
        keys = affected_keys("Pod", ns, "added", None, added, store)
        report["pod_added_fanout_ms"] = round((time.perf_counter() - started) * 1000, 1)
        report["pod_added_keys"] = len(keys)
    typer.echo(json.dumps(report, indent=2))

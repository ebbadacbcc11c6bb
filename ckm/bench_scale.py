"""`ckm bench fanout`: what one Kubernetes change costs the watcher at cluster scale.

A private redis-server holds a desired-state store of N pods, S services and P policies (no
Contrail, no workers): each change below is timed as the watcher handles it (the store read and
the fan-out that names the keys it affects), with the Redis commands it sent.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ckm.bench_common import bench_app, err, out


def _fill(store, *, pods: int, services: int, policies: int, namespaces: int,
          nodes: int) -> list[tuple[str, str]]:
    """The mixed workload's shape, written straight into the store (pipelined)."""
    from ckm.progress import bar

    names = [f"ns{i:02d}" for i in range(namespaces)]
    writes: list[tuple[str, str, str, dict]] = []
    for n in range(nodes):
        writes.append(("Node", "", f"node{n}", {"uid": f"node{n}", "addresses": {
            "InternalIP": f"10.1.{n // 250}.{n % 250}"}}))
    for i, ns in enumerate(names):
        writes.append(("Namespace", "", ns, {"uid": ns, "annotations": {},
                                             "labels": {"team": f"t{i % 5}"}}))
    pod_names = []
    for i in range(pods):
        ns = names[i % namespaces]
        pod_names.append((ns, f"p{i:06d}"))
        writes.append(("Pod", ns, f"p{i:06d}", {
            "uid": f"00000000-0000-4000-8000-{i:012d}", "annotations": {},
            "labels": {"app": f"a{i % 500}", "tier": "web" if i % 2 else "db"},
            "node": f"node{i % nodes}", "host_network": False, "finished": False,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}))
    for j in range(services):
        ns = names[j % namespaces]
        writes.append(("Service", ns, f"svc{j:05d}", {
            "uid": f"svc-{j}", "cluster_ip": f"10.96.{j // 250}.{j % 250 + 1}",
            "selector": {"app": f"a{j % 500}"}, "ports": [{"port": 80, "protocol": "TCP"}]}))
    for j in range(policies):
        ns = names[j % namespaces]
        ports = [{"port": 80}] + ([{"port": "http"}] if j % 10 == 0 else [])
        writes.append(("NetworkPolicy", ns, f"np{j:04d}", {"uid": f"np-{j}", "spec": {
            "podSelector": {"matchLabels": {"app": f"a{j % 500}"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {
                "app": f"a{(j + 1) % 500}"}}},
                {"namespaceSelector": {"matchLabels": {"team": f"t{j % 5}"}}}],
                "ports": ports}]}}))
    with bar(err) as progress:
        task = progress.add_task("objects stored", total=len(writes), rate="-",
                                 visible=err.is_terminal)
        for start in range(0, len(writes), 1000):
            batch = writes[start:start + 1000]
            store.put_many(batch)
            progress.advance(task, len(batch))
    return pod_names


class CountingRedis:
    """Counts the commands a fan-out sends (its round trips at most)."""

    def __init__(self, client):
        self.client, self.commands = client, 0

    def hscan_iter(self, name, match=None, count=None):
        cursor = "0"
        while cursor != 0:
            cursor, data = self.hscan(name, cursor=cursor, match=match, count=count)
            yield from data.items()

    def __getattr__(self, name):
        attr = getattr(self.client, name)
        if callable(attr) and name not in ("pipeline", "register_script"):
            def counted(*args, **kwargs):
                self.commands += 1
                return attr(*args, **kwargs)
            return counted
        return attr


def _time(fn, repeat: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000, result


@bench_app.command("fanout")
def bench_fanout(
    pods: Annotated[int, typer.Option(help="Pods in the store")] = 10_000,
    services: Annotated[int, typer.Option(help="Services")] = 2_000,
    policies: Annotated[int, typer.Option(help="NetworkPolicies (1 in 10 with a named "
                                                "port)")] = 1_000,
    namespaces: Annotated[int, typer.Option(help="Namespaces")] = 20,
    nodes: Annotated[int, typer.Option(help="Nodes")] = 100,
    repeat: Annotated[int, typer.Option(help="Runs of each change (the median is "
                                              "shown)")] = 5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What one change costs the watcher's fan-out at this size: ms and Redis commands."""
    from ckm.processes import Processes
    from tasks.fanout import affected_keys
    from watcher.store import DesiredStore

    with tempfile.TemporaryDirectory(prefix="ckm-bench-") as tmp, Processes(Path(tmp)) as procs:
        import redis

        client = redis.Redis.from_url(procs.redis(), decode_responses=True)
        store = DesiredStore(client)
        started = time.perf_counter()
        pod_names = _fill(store, pods=pods, services=services, policies=policies,
                          namespaces=namespaces, nodes=nodes)
        fill_seconds = time.perf_counter() - started
        counting = CountingRedis(client)
        view = DesiredStore(counting)
        ns, name = pod_names[len(pod_names) // 2]
        pod = store.get("Pod", ns, name)
        relabelled = {**pod, "labels": {**pod["labels"], "app": "a33"}}
        policy = store.get("NetworkPolicy", "ns00", "np0000")
        edited = json.loads(json.dumps(policy))
        edited["spec"]["podSelector"]["matchLabels"]["app"] = "a77"
        namespace = store.get("Namespace", "", "ns03")
        changes = {
            "pod label change": ("Pod", ns, name, pod, relabelled),
            "pod added": ("Pod", ns, "new-pod", None, {**pod, "uid": "new"}),
            "policy edited": ("NetworkPolicy", "ns00", "np0000", policy, edited),
            "node added": ("Node", "", "node-new", None,
                           {"uid": "n", "addresses": {"InternalIP": "10.9.9.9"}}),
            "namespace labels": ("Namespace", "", "ns03", namespace,
                                 {**namespace, "labels": {"team": "t9"}}),
        }
        rows = []
        for label, (kind, cns, cname, old, new) in changes.items():
            counting.commands = 0
            ms, keys = _time(lambda k=kind, a=cns, b=cname, o=old, n=new:
                             affected_keys(k, a, b, o, n, view), repeat)
            rows.append({"change": label, "ms": round(ms, 2), "keys": len(keys),
                         "redis_commands": counting.commands // repeat})
    report = {"pods": pods, "services": services, "policies": policies,
              "namespaces": namespaces, "nodes": nodes,
              "store_fill_seconds": round(fill_seconds, 1), "changes": rows}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table("change", "ms (median)", "keys", "Redis commands",
                  title=f"ckm bench fanout ({pods} pods, {services} services, "
                        f"{policies} policies, {namespaces} namespaces, {nodes} nodes)")
    for r in rows:
        table.add_row(r["change"], str(r["ms"]), str(r["keys"]), str(r["redis_commands"]))
    out.print(table)


def _pod_event(kind: str, i: int, rv: int, *, node: str = "", phase: str = "Pending",
               ip: str = "") -> dict:
    """A watch event of a pod as the API server sends it (the fields the watcher reads)."""
    return {"type": kind, "object": {
        "metadata": {"name": f"p{i:06d}", "namespace": f"ns{i % 20:02d}",
                     "uid": f"00000000-0000-4000-8000-{i:012d}", "resourceVersion": str(rv),
                     "labels": {"app": f"a{i % 500}"}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x", "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"phase": phase, "podIP": ip}}}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@bench_app.command("watcher")
def bench_watcher(
    pods: Annotated[int, typer.Option(help="Pods created (3 events each: added, "
                                           "scheduled, running)")] = 5_000,
    policies: Annotated[int, typer.Option(help="NetworkPolicies in the store (1 in 10 "
                                               "with a named port)")] = 1_000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Watch events per second through the watcher's own path: projection, store write,
    fan-out and enqueue (Celery messages published to a private Redis; no workers)."""
    import os

    from ckm.processes import Processes
    from config.settings import Settings
    from watcher.reflector import Reflector
    from workers import context as contexts
    from workers.app import configure
    from workers.dispatch import enqueue

    with tempfile.TemporaryDirectory(prefix="ckm-bench-") as tmp, Processes(Path(tmp)) as procs:
        broker = procs.redis()
        context = contexts.Context(Settings(broker_url=broker, contrail_urls=["http://x"]))
        contexts.install(context)
        celery_app = configure(context.settings)
        _fill(context.store, pods=0, services=0, policies=policies, namespaces=20, nodes=10)
        reflector = Reflector("Pod", None, context.store,
                              lambda keys, urgent: enqueue(celery_app, context.queue, keys,
                                                           urgent=urgent))
        reflector.writer.listed("1")
        events = []
        rv = 1
        for i in range(pods):
            ip = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
            for kind, extra in (("ADDED", {}), ("MODIFIED", {"node": f"node{i % 10}"}),
                                ("MODIFIED", {"node": f"node{i % 10}", "phase": "Running",
                                              "ip": ip})):
                rv += 1
                events.append(_pod_event(kind, i, rv, **extra))
        rss_before = _rss_mb(os.getpid())
        started = time.perf_counter()
        cpu = time.process_time()
        for event in events:
            reflector.handle(event)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        report = {"events": len(events), "pods": pods, "policies": policies,
                  "seconds": round(elapsed, 2),
                  "events_per_second": round(len(events) / elapsed),
                  "cpu_ms_per_event": round(cpu * 1000 / len(events), 3),
                  "keys_queued": context.queue.depths().queued,
                  "rss_mb": round(_rss_mb(os.getpid()), 1),
                  "rss_growth_mb": round(_rss_mb(os.getpid()) - rss_before, 1)}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table("", "", title="ckm bench watcher", show_header=False)
    for k, v in report.items():
        table.add_row(k, str(v))
    out.print(table)

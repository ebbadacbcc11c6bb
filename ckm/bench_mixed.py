"""`ckm bench mixed`: the workload users run, through the whole pipeline, against its bounds.

One run, on a private system (kube emulator with nodes -> watcher -> workers -> Contrail
emulator at a latency and a concurrency cap):
- **cold**: the mixed workload (ckm.bench_workload) created through the Kubernetes API, until
  converged: ckm idle, every pod's and VIP's instance-ip and every pool member in Contrail;
- **churn**: pod relabels that move pods between policies, until each pod's groups run;
- **service**: a backend leaves its service, until the members (and ECMP) run;
- **burst**: pods created at a steady rate, until each pod's port run;
- **memory**: peak RSS of the watcher and of each worker;
- **API bound**: the cold run's final Contrail state written by a minimal client at the cap;
- **serial baseline**: ckm with one worker and one thread on a tenth of the workload,
  extrapolated linearly (labelled as such).
Results: a table, `mixed.json` and `mixed.png` in `--out`, and `--json` on stdout.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ckm import bench_workload as workload
from ckm.bench_common import bench_app, cpu_seconds, err, out, peak_rss_mb, process_groups

STALLED = 120  # seconds without progress after which a phase is reported unconverged
TARGETS = {"cold_vs_bound": 1.5, "serial_speedup": 20, "churn_p99_ms": 1000,
           "burst_p99_ms": 5000, "watcher_rss_mb": 150}


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True)


class Cluster:
    """The Kubernetes side of a running stack, through the official client."""

    def __init__(self, kube_url: str):
        import kubernetes.client

        conf = kubernetes.client.Configuration()
        conf.host = kube_url
        api = kubernetes.client.ApiClient(conf)
        api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 16
        self.core = kubernetes.client.CoreV1Api(api)
        self.net = kubernetes.client.NetworkingV1Api(api)

    def create(self, kind: str, namespace: str, body: dict) -> None:
        if kind == "Namespace":
            self.core.create_namespace(body, _preload_content=False)
        elif kind == "Pod":
            self.core.create_namespaced_pod(namespace, body, _preload_content=False)
        elif kind == "Service":
            self.core.create_namespaced_service(namespace, body, _preload_content=False)
        else:
            self.net.create_namespaced_network_policy(namespace, body, _preload_content=False)

    def label(self, namespace: str, pod: str, labels: dict) -> None:
        self.core.patch_namespaced_pod(pod, namespace, {"metadata": {"labels": labels}},
                                       _preload_content=False)


class System:
    """A started stack with what the phases read: its store, its queue, Contrail, CPU."""

    def __init__(self, procs, info):
        from config.settings import Settings
        from workers.context import Context

        self.procs, self.info = procs, info
        self.context = Context(Settings(broker_url=info.broker_url,
                                        contrail_urls=[info.contrail_url]))
        self.cluster = Cluster(info.kube_url)
        self.groups = process_groups(procs)

    def ckm_cpu(self) -> float:
        return sum(cpu_seconds(p) for part in ("watcher", "workers", "redis")
                   for p in self.groups.get(part, []))

    def pending(self) -> int:
        from workers.status import pending

        return pending(self.context)

    def converged(self, w: workload.Workload) -> tuple[bool, dict]:
        contrail = self.context.contrail
        seen = {"instance-ip": contrail.count("instance-ip"),
                "loadbalancer-member": contrail.count("loadbalancer-member")}
        done = (seen["instance-ip"] >= w.pods + w.services and
                seen["loadbalancer-member"] >= w.members and self.pending() == 0)
        return done, seen


def _start(procs, *, workers: int, threads: int | None, latency_ms: float, cap: int,
           nodes: int):
    from ckm.processes import wait_until
    from ckm.stack import StackOptions, start

    info = start(procs, StackOptions(workers=workers, worker_threads=threads, nodes=nodes,
                                     flower_port=None, beat=False,
                                     contrail_latency_ms=latency_ms,
                                     contrail_max_concurrency=cap))
    system = System(procs, info)
    wait_until(lambda: system.context.store.resource_version("Pod") is not None, "watcher")
    return system


def cold(system: System, w: workload.Workload, *, label: str, timeout: float) -> dict:
    """Create the workload through the API (8 clients) and wait until it has converged."""
    import httpx

    manifests = [("Namespace", "", ns) for ns in workload.namespaces()]
    later = [("NetworkPolicy", ns, body) for ns, body in workload.policies(w)]
    later += [("Service", ns, body) for ns, body in workload.services(w)]
    later += [("Pod", ns, body) for ns, body in workload.pods(w)]
    httpx.post(f"{system.info.contrail_url}/_emulator/counters/reset").raise_for_status()
    cpu, started = system.ckm_cpu(), time.perf_counter()
    with _progress() as bar:
        made = bar.add_task(f"{label}: create", total=len(manifests) + len(later))
        for kind, ns, body in manifests:  # namespaces first: the rest lives in them
            system.cluster.create(kind, ns, body)
            bar.advance(made)
        with ThreadPoolExecutor(8) as pool:
            for _ in pool.map(lambda m: system.cluster.create(*m), later):
                bar.advance(made)
        created = time.perf_counter() - started
        converge = bar.add_task(f"{label}: converge", total=w.pods + w.members)
        deadline, last, moved = time.monotonic() + timeout, None, time.monotonic()
        while True:
            done, seen = system.converged(w)
            bar.update(converge, completed=min(seen["instance-ip"], w.pods) +
                       min(seen["loadbalancer-member"], w.members))
            if seen != last:
                last, moved = seen, time.monotonic()
            # nothing moving for STALLED seconds: report it rather than wait out the timeout
            if done or time.monotonic() > min(deadline, moved + STALLED):
                break
            time.sleep(0.5)
    seconds = time.perf_counter() - started
    counted = httpx.get(f"{system.info.contrail_url}/_emulator/counters").json()
    by_type: dict[str, int] = {}
    for operation, n in counted["by_operation"].items():
        by_type[operation.split(" ", 1)[-1]] = by_type.get(operation.split(" ", 1)[-1], 0) + n
    failures = system.context.failures.all()
    return {"converged": done, "seconds": round(seconds, 1),
            "create_seconds": round(created, 1), "objects": w.objects,
            "objects_per_second": round(w.objects / seconds, 1),
            "contrail_calls": counted["total"],
            "calls_per_object": round(counted["total"] / w.objects, 2),
            "calls_by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
            "calls_by_operation": counted["by_operation"],
            "ckm_cpu_ms_per_object": round((system.ckm_cpu() - cpu) * 1000 / w.objects, 2),
            "contrail_seen": seen, "failed_syncs": len(failures),
            "first_failures": [f"{f.key}: {f.error}" for f in failures[:5]]}


def _paced(label: str, items: list, rate: float, change, timer, timeout: float) -> None:
    """Apply `change(item) -> (key, since)` to each item at `rate` per second (4 clients),
    then wait for the tracked keys."""
    with _progress() as bar:
        task = bar.add_task(label, total=len(items))
        t0 = time.monotonic()

        def one(indexed):
            n, item = indexed
            time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
            key, since = change(item)
            timer.track(key, since)
            bar.advance(task)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, enumerate(items)))
        done = bar.add_task(f"{label}: wait", total=len(items))
        deadline = time.monotonic() + timeout
        while timer.outstanding() and time.monotonic() < deadline:
            bar.update(done, completed=len(items) - timer.outstanding())
            time.sleep(0.05)


def churn(system: System, w: workload.Workload, count: int, rate: float) -> dict:
    from ckm.bench_latency import KeyTimer

    chosen = random.Random(15).sample(range(w.pods), min(count, w.pods))
    timer = KeyTimer(system.context.redis)
    timer.start()

    def relabel(i):
        ns, name = w.pod_name(i)
        since = time.time()
        system.cluster.label(ns, name, {"app": workload.relabelled_app(w, i)})
        return f"sgs/{ns}/{name}", since

    _paced("churn", chosen, rate, relabel, timer, 300)
    timer.stop()
    return {"changes": len(chosen), "rate_per_second": rate, **timer.summary()}


def service_changes(system: System, w: workload.Workload, count: int, rate: float) -> dict:
    from ckm.bench_latency import KeyTimer

    groups = random.Random(17).sample(range(w.services), min(count, w.services))
    timer = KeyTimer(system.context.redis)
    timer.start()

    def leave(group):  # the group's last backend leaves its service
        ns, name = w.pod_name(group * workload.GROUP + workload.GROUP - 1)
        since = time.time()
        system.cluster.label(ns, name, {"svc": "none"})
        return f"members/{ns}/{w.service_name(group)[1]}", since

    _paced("service", groups, rate, leave, timer, 300)
    timer.stop()
    return {"changes": len(groups), "rate_per_second": rate, **timer.summary()}


def burst(system: System, rate: float, seconds: float) -> dict:
    from ckm.bench_latency import KeyTimer

    count = max(1, round(rate * seconds))
    timer = KeyTimer(system.context.redis)
    timer.start()

    def add(n):
        ns = f"ns{n % workload.NAMESPACES:02d}"
        name = f"b{n:05d}"
        since = time.time()
        system.cluster.create("Pod", ns, workload.pod(name, {"app": "burst"}))
        return f"port/{ns}/{name}", since

    _paced("burst", list(range(count)), rate, add, timer, 600)
    timer.stop()
    return {"pods": count, "rate_per_second": rate, "seconds": seconds, **timer.summary()}


def memory(system: System) -> dict:
    groups = system.groups
    report = {"watcher_mb": max(map(peak_rss_mb, groups["watcher"]))}
    for i, pid in enumerate(groups.get("workers", [])):
        report[f"worker{i}_mb"] = peak_rss_mb(pid)
    report["redis_mb"] = max(map(peak_rss_mb, groups["redis"]))
    return report


def api_bound(procs, state: dict, types: list[str], *, latency_ms: float, cap: int) -> dict:
    from ckm.bench_bound import copy_state

    url = procs.contrail(0, "--latency-ms", str(latency_ms), "--max-concurrency", str(cap))
    with err.status("API bound: the same Contrail state, written by a minimal client"):
        return copy_state(state, url, threads=cap, types=types)


def verdicts(report: dict) -> dict:
    """Each target of the issue, met or not (None where not measured)."""
    cold_s, bound = report["cold"]["seconds"], report.get("api_bound", {}).get("seconds")
    serial = report.get("serial", {}).get("extrapolated_seconds")
    out = {}
    if bound:
        report["cold_vs_bound"] = round(cold_s / bound, 2)
        out["cold ≤ 1.5x API bound"] = report["cold_vs_bound"] <= TARGETS["cold_vs_bound"]
    if serial:
        report["serial_speedup"] = round(serial / cold_s, 1)
        out["≥ 20x serial baseline"] = report["serial_speedup"] >= TARGETS["serial_speedup"]
    out["churn p99 ≤ 1 s"] = report["churn"].get("p99_ms", 1e9) <= TARGETS["churn_p99_ms"]
    out["burst p99 ≤ 5 s"] = report["burst"].get("p99_ms", 1e9) <= TARGETS["burst_p99_ms"]
    out["watcher ≤ 150 MB"] = report["memory"]["watcher_mb"] <= TARGETS["watcher_rss_mb"]
    return out


@bench_app.command("mixed")
def bench_mixed(
    scale: Annotated[float, typer.Option(help="Workload size (1 = 10,000 pods)")] = 1.0,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 2,
    threads: Annotated[int, typer.Option(help="Threads per worker")] = 16,
    nodes: Annotated[int, typer.Option(help="Simulated nodes")] = 10,
    latency_ms: Annotated[float, typer.Option(help="Contrail latency per call")] = 10.0,
    cap: Annotated[int, typer.Option(help="Contrail concurrency cap (503 beyond)")] = 64,
    churn_count: Annotated[int, typer.Option("--churn", help="Pod relabels")] = 300,
    churn_rate: Annotated[float, typer.Option(help="Relabels per second")] = 30.0,
    burst_rate: Annotated[float, typer.Option(help="Burst pods per second")] = 100.0,
    burst_seconds: Annotated[float, typer.Option(help="Burst length")] = 30.0,
    service_count: Annotated[int, typer.Option("--services-changed",
                                               help="Endpoint changes")] = 50,
    serial: Annotated[bool, typer.Option(help="Measure the serial baseline")] = True,
    bound: Annotated[bool, typer.Option(help="Measure the API bound")] = True,
    out_dir: Annotated[Path, typer.Option("--out", help="Where mixed.json/.png go")] = Path(
        "bench-mixed"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report")] = False,
) -> None:
    """The mixed workload through the whole pipeline: cold against the API bound and the
    serial baseline, churn/burst/service latency, memory; a table, JSON and a PNG chart."""
    from ckm.bench_bound import read_state, resource_types
    from ckm.bench_chart import chart
    from ckm.processes import Processes

    w = workload.Workload.scaled(scale)
    report: dict = {"scale": scale, "workload": {"pods": w.pods, "services": w.services,
                                                 "policies": w.policies,
                                                 "namespaces": workload.NAMESPACES},
                    "workers": workers, "threads": threads, "latency_ms": latency_ms,
                    "cap": cap}
    with tempfile.TemporaryDirectory(prefix="ckm-bench-") as tmp, Processes(Path(tmp)) as procs:
        system = _start(procs, workers=workers, threads=threads, latency_ms=latency_ms,
                        cap=cap, nodes=nodes)
        report["cold"] = cold(system, w, label="cold", timeout=3600)
        state, types = None, []
        if bound:
            types = resource_types(system.info.contrail_url)
            with err.status("reading the converged Contrail state"):
                state = read_state(system.context.contrail, types)
        report["churn"] = churn(system, w, churn_count, churn_rate)
        report["service"] = service_changes(system, w, service_count, churn_rate / 3)
        report["burst"] = burst(system, burst_rate, burst_seconds)
        report["memory"] = memory(system)
        if state is not None:
            report["api_bound"] = api_bound(procs, state, types, latency_ms=latency_ms,
                                            cap=cap)
            report["api_bound"]["objects"] = len(state)
    if serial:
        small = workload.Workload.scaled(scale / 10)
        with tempfile.TemporaryDirectory(prefix="ckm-bench-") as tmp, \
                Processes(Path(tmp)) as procs:
            system = _start(procs, workers=1, threads=1, latency_ms=latency_ms, cap=cap,
                            nodes=nodes)
            measured = cold(system, small, label="serial", timeout=3600)
        factor = w.objects / small.objects
        report["serial"] = {"measured": measured, "objects": small.objects,
                            "factor": round(factor, 2),
                            "extrapolated_seconds": round(measured["seconds"] * factor, 1),
                            "note": "one worker, one thread, on a tenth of the workload; "
                                    "seconds extrapolated linearly"}
    report["targets"] = verdicts(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "mixed.json").write_text(json.dumps(report, indent=2))
    chart(report, out_dir / "mixed.png")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print(report, out_dir)


def _print(report: dict, out_dir: Path) -> None:
    w, c = report["workload"], report["cold"]
    table = Table("measure", "result", "target", title=(
        f"ckm bench mixed: {w['pods']} pods, {w['services']} services, {w['policies']} "
        f"policies, {w['namespaces']} namespaces; Contrail {report['latency_ms']} ms, cap "
        f"{report['cap']}; {report['workers']} workers x {report['threads']} threads"))
    table.add_row("cold", f"{c['seconds']} s ({c['objects_per_second']} objects/s, "
                  f"{'converged' if c['converged'] else 'NOT converged'})", "")
    table.add_row("  Contrail calls per object", f"{c['calls_per_object']}", "")
    table.add_row("  ckm CPU per object", f"{c['ckm_cpu_ms_per_object']} ms", "")
    table.add_row("  failed syncs", str(c["failed_syncs"]), "0")
    if "api_bound" in report:
        b = report["api_bound"]
        table.add_row("API bound", f"{b['seconds']} s ({b['calls']} calls, {b['errors']} "
                      f"errors)", "")
        table.add_row("  cold / API bound", f"{report['cold_vs_bound']}x", "≤ 1.5x")
    if "serial" in report:
        s = report["serial"]
        table.add_row("serial baseline (extrapolated)", f"{s['extrapolated_seconds']} s "
                      f"({s['measured']['seconds']} s for {s['objects']} objects x "
                      f"{s['factor']})", "")
        table.add_row("  speed-up over serial", f"{report['serial_speedup']}x", "≥ 20x")
    for name, target in (("churn", "p99 ≤ 1 s"), ("service", ""), ("burst", "p99 ≤ 5 s")):
        r = report[name]
        table.add_row(f"{name} ({r['count']} done, {r['lost']} lost)",
                      f"p50 {r.get('p50_ms')} ms, p99 {r.get('p99_ms')} ms", target)
    m = report["memory"]
    table.add_row("peak RSS", ", ".join(f"{k.removesuffix('_mb')} {v} MB" for k, v in
                                        m.items()), "watcher ≤ 150 MB")
    out.print(table)
    for target, met in report["targets"].items():
        out.print(f"{'met   ' if met else 'MISSED'} {target}")
    out.print(f"written: {out_dir / 'mixed.json'}, {out_dir / 'mixed.png'}")


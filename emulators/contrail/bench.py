"""Throughput benchmark of a running emulator (or any VNC API) through httpx.

`run(url, seconds=, concurrency=)` sets up a project, a flat-subnet IPAM and a pod VN, then
`concurrency` asyncio workers loop over the pod life cycle for `seconds`: create VMI, create
instance-ip, read both, list the instance-ip by uuid (detail) and count the VN's VMIs (by back-ref),
delete the instance-ip and the VMI - 8 requests per loop, the calls ckm makes per pod. Returns
requests/s overall and per operation with latency percentiles. Run it from another process
than the server: `python -m emulators.contrail.bench URL [SECONDS] [CONCURRENCY] [PROCESSES]`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import sys
import time
import uuid
from collections import defaultdict
from typing import Any

import httpx

OPS = ("create-vmi", "create-iip", "read-vmi", "read-iip", "list-detail", "list-backref",
       "delete-iip", "delete-vmi")


async def _setup(client: httpx.AsyncClient) -> tuple[list[str], list[str], str]:
    tag = uuid.uuid4().hex[:8]
    project = ["default-domain", f"bench-{tag}"]
    await _post(client, "project", {"fq_name": project, "parent_type": "domain"})
    ipam = [*project, "pod-ipam"]
    await _post(client, "network-ipam", {
        "fq_name": ipam, "parent_type": "project", "ipam_subnet_method": "flat-subnet",
        "ipam_subnets": {"subnets": [{"subnet": {"ip_prefix": "10.32.0.0", "ip_prefix_len": 12}}]}})
    vn = [*project, "pod-network"]
    reply = await _post(client, "virtual-network", {
        "fq_name": vn, "parent_type": "project", "address_allocation_mode": "flat-subnet-only",
        "virtual_network_properties": {"forwarding_mode": "l3"},
        "network_ipam_refs": [{"to": ipam, "attr": {"ipam_subnets": []}}]})
    return project, vn, reply["virtual-network"]["uuid"]


async def _post(client: httpx.AsyncClient, type_: str, body: dict) -> dict:
    reply = await client.post(f"/{type_}s", json={type_: body})
    reply.raise_for_status()
    return reply.json()


async def _worker(client, project, vn, vn_uuid, deadline, stats) -> None:
    while time.monotonic() < deadline:
        name = uuid.uuid4().hex
        reply = await _call(client, stats, "create-vmi", "POST", "/virtual-machine-interfaces", {
            "virtual-machine-interface": {"fq_name": [*project, name], "parent_type": "project",
                                          "virtual_network_refs": [{"to": vn}]}})
        if reply is None:
            continue
        vmi = reply["virtual-machine-interface"]
        iip = await _call(client, stats, "create-iip", "POST", "/instance-ips", {"instance-ip": {
            "fq_name": [name], "virtual_network_refs": [{"to": vn}],
            "virtual_machine_interface_refs": [{"to": vmi["fq_name"]}]}})
        iip_uuid = iip["instance-ip"]["uuid"] if iip else None
        await _call(client, stats, "read-vmi", "GET", f"/virtual-machine-interface/{vmi['uuid']}")
        if iip_uuid:
            await _call(client, stats, "read-iip", "GET", f"/instance-ip/{iip_uuid}")
        await _call(client, stats, "list-detail", "GET",
                    f"/instance-ips?obj_uuids={iip_uuid or ''}&detail=True")
        await _call(client, stats, "list-backref", "GET",
                    f"/virtual-machine-interfaces?back_ref_id={vn_uuid}&count=True")
        if iip_uuid:
            await _call(client, stats, "delete-iip", "DELETE", f"/instance-ip/{iip_uuid}")
        await _call(client, stats, "delete-vmi", "DELETE",
                    f"/virtual-machine-interface/{vmi['uuid']}")


async def _call(client, stats, op, method, path, body=None) -> dict | None:
    start = time.perf_counter()
    try:
        reply = await client.request(method, path, json=body)
        ok = reply.status_code == 200
    except httpx.HTTPError:
        ok, reply = False, None
    stats[op].append(time.perf_counter() - start)
    if not ok:
        stats["errors"].append(0.0)
        return None
    return reply.json() if reply.content and method != "DELETE" else {}


async def _load(url: str, seconds: float, concurrency: int) -> dict[str, list[float]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        project, vn, vn_uuid = await _setup(client)
        stats: dict[str, list[float]] = defaultdict(list)
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(_worker(client, project, vn, vn_uuid, deadline, stats)
                               for _ in range(concurrency)))
    return dict(stats)


def _load_in_process(args: tuple[str, float, int]) -> dict[str, list[float]]:
    return asyncio.run(_load(*args))


def _server_cpu(url: str) -> float | None:
    """The emulator's own CPU seconds (None for a server without the admin endpoint)."""
    try:
        return httpx.get(f"{url}/_emulator/stats", timeout=5).json()["process_cpu_seconds"]
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def _report(stats: dict[str, list[float]], elapsed: float, concurrency: int) -> dict[str, Any]:
    stats = dict(stats)
    errors = len(stats.pop("errors", []))
    total = sum(len(v) for v in stats.values())
    per_op = {}
    for op in OPS:
        samples = sorted(stats.get(op, []))
        if samples:
            per_op[op] = {"count": len(samples), "rps": round(len(samples) / elapsed, 1),
                          "p50_ms": round(statistics.median(samples) * 1000, 2),
                          "p99_ms": round(samples[int(len(samples) * 0.99) - 1] * 1000, 2)}
    return {"seconds": round(elapsed, 2), "concurrency": concurrency, "requests": total,
            "errors": errors, "rps": round(total / elapsed, 1),
            "pods_per_s": round(len(stats.get("delete-vmi", [])) / elapsed, 1), "ops": per_op}


def run(url: str, *, seconds: float, concurrency: int, processes: int = 1) -> dict[str, Any]:
    """Drive `url` for `seconds` with `concurrency` parallel clients; return the numbers.

    One httpx client process saturates a core before the emulator does; `processes` > 1
    splits the clients over several processes. `server_cpu_ms_per_request` (emulators only)
    is the server's own cost, independent of how busy the machine is.
    """
    url = url.rstrip("/")
    cpu_before = _server_cpu(url)
    start = time.monotonic()
    if processes <= 1:
        parts = [_load_in_process((url, seconds, concurrency))]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            share = max(1, concurrency // processes)
            parts = pool.map(_load_in_process, [(url, seconds, share)] * processes)
    elapsed = time.monotonic() - start
    merged: dict[str, list[float]] = defaultdict(list)
    for part in parts:
        for op, samples in part.items():
            merged[op] += samples
    report = _report(merged, elapsed, concurrency)
    cpu_after = _server_cpu(url)
    if cpu_before is not None and cpu_after is not None and report["requests"]:
        per_request = (cpu_after - cpu_before) / report["requests"]
        report["server_cpu_ms_per_request"] = round(per_request * 1000, 3)
        report["server_capacity_rps_one_core"] = round(1 / per_request) if per_request else None
    return report


if __name__ == "__main__":
    import json

    target = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8082"
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    conc = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    procs = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    print(json.dumps(run(target, seconds=secs, concurrency=conc, processes=procs), indent=2))

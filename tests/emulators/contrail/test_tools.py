"""Concurrency safety, the benchmark module and the CLI's light imports."""

from __future__ import annotations

import subprocess
import sys
import threading

import httpx

from emulators.contrail import bench

DP = ["default-domain", "default-project"]


def test_concurrent_allocations_never_collide(contrail_url):
    with httpx.Client(base_url=contrail_url) as http:
        http.post("/network-ipams", json={"network-ipam": {
            "fq_name": [*DP, "race-ipam"], "parent_type": "project",
            "ipam_subnet_method": "flat-subnet", "ipam_subnets": {"subnets": [
                {"subnet": {"ip_prefix": "10.0.0.0", "ip_prefix_len": 24}}]}}})
        reply = http.post("/virtual-networks", json={"virtual-network": {
            "fq_name": [*DP, "race"], "parent_type": "project",
            "virtual_network_properties": {"forwarding_mode": "l3"},
            "network_ipam_refs": [{"to": [*DP, "race-ipam"], "attr": {"ipam_subnets": []}}]}})
        assert reply.status_code == 200, reply.text
    uuids: list[str] = []

    def worker(n: int) -> None:
        with httpx.Client(base_url=contrail_url) as http:
            for i in range(10):
                reply = http.post("/instance-ips", json={"instance-ip": {
                    "fq_name": [f"race-{n}-{i}"], "virtual_network_refs": [{"to": [*DP, "race"]}]}})
                uuids.append(reply.json()["instance-ip"]["uuid"])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    listed = httpx.post(f"{contrail_url}/list-bulk-collection", json={
        "type": "instance-ip", "obj_uuids": ",".join(uuids), "detail": True}).json()
    addresses = [o["instance-ip"]["instance_ip_address"] for o in listed["instance-ips"]]
    assert len(addresses) == 80 == len(set(addresses))
    assert max(addresses, key=lambda a: int(a.rsplit(".", 1)[1])) == "10.0.0.252"


def test_bench_reports_throughput(contrail_url):
    report = bench.run(contrail_url, seconds=0.3, concurrency=2)
    assert report["requests"] > 0 and report["errors"] == 0
    assert report["ops"]["create-iip"]["count"] >= 1
    assert report["server_cpu_ms_per_request"] > 0


def test_cli_imports_no_app_code():
    code = ("import sys, emulators.contrail.cli; "
            "assert 'starlette' not in sys.modules and 'emulators.contrail.app' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_emulator_never_imports_vnc_api():
    code = ("import sys, emulators.contrail.app, emulators.contrail.bench; "
            "assert not [m for m in sys.modules if m.startswith('vnc_api')]")
    subprocess.run([sys.executable, "-c", code], check=True)

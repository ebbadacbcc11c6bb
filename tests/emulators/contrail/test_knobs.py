"""Fault knobs, counters, Keystone tokens and the state file, over HTTP and the official client."""

from __future__ import annotations

import random
import threading
import time

import httpx
from vnc_api.gen.resource_client import InstanceIp, VirtualNetwork

from emulators.contrail import actions
from emulators.contrail.app import _initial_backend, create_app
from emulators.contrail.backend import Backend
from emulators.contrail.persistence import StateFile
from emulators.server import serve_in_thread
from tests.emulators.contrail.conftest import user_vn, vnc_for


def _seed_failing_once(rate: float) -> int:
    """A seed whose first draw fails and second passes (so exactly one retry happens)."""
    for seed in range(1000):
        rng = random.Random(seed)
        if rng.random() < rate <= rng.random():
            return seed
    raise AssertionError("no seed")


def test_error_rate_is_retried_by_vnc_api(contrail_url, http):
    vnc = vnc_for(contrail_url)
    http.post("/_emulator/counters/reset")
    knobs = http.put("/_emulator/faults", json={"error_rate": 0.5,
                                                "seed": _seed_failing_once(0.5)}).json()
    assert knobs["error_rate"] == 0.5
    assert vnc.domain_read(id=vnc.fq_name_to_id("domain", ["default-domain"]))
    counters = http.get("/_emulator/counters").json()
    assert counters["faults"]["injected"] >= 1
    assert counters["by_operation"]["action fqname-to-id"] >= 2  # the 503 and the retry


def test_outage_window_then_recovery(contrail_url, http):
    http.put("/_emulator/faults", json={"outage_seconds": 0.5})
    assert http.get("/virtual-networks").status_code == 503
    assert http.get("/_emulator/faults").json()["outage_seconds"] > 0
    time.sleep(0.6)
    assert http.get("/virtual-networks").status_code == 200


def test_concurrency_cap_and_latency(contrail_emulator_factory):
    url = contrail_emulator_factory(max_concurrency=2, latency_ms=200)
    statuses: list[int] = []

    def call():
        statuses.append(httpx.get(f"{url}/virtual-networks", timeout=5).status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start >= 0.2
    assert statuses.count(200) >= 2 and statuses.count(503) >= 1
    faults = httpx.get(f"{url}/_emulator/counters").json()["faults"]
    assert faults["over_capacity"] == statuses.count(503)


def test_counters_by_operation_and_reset(contrail_url, http, vnc, project):
    http.post("/_emulator/counters/reset")
    vnc.virtual_network_create(VirtualNetwork("counted", project))
    http.get("/_emulator/faults")  # admin calls are not counted
    counters = http.get("/_emulator/counters").json()
    assert counters["by_operation"] == {"create virtual-network": 1}
    assert counters["by_method_type"] == {"POST virtual-network": 1}
    assert counters["total"] == 1
    http.post("/_emulator/counters/reset")
    assert http.get("/_emulator/counters").json()["total"] == 0


def test_keystone_tokens(contrail_emulator_factory):
    url = contrail_emulator_factory(keystone=True, users={"ckm": "s3cret"})
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "ckm", "domain": {"name": "Default"}, "password": "s3cret"}}}}}
    with httpx.Client(base_url=url) as http:
        assert http.get("/").status_code == 200
        assert http.get("/virtual-networks").status_code == 401
        bad = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "ckm", "password": "wrong"}}}}}
        assert http.post("/v3/auth/tokens", json=bad).status_code == 401
        issued = http.post("/v3/auth/tokens", json=auth)
        assert issued.status_code == 201
        token = issued.headers["X-Subject-Token"]
        assert http.get("/virtual-networks", headers={"X-Auth-Token": token}).status_code == 200
        assert http.post("/_emulator/keystone/revoke", json={"token": token}).json() == {
            "revoked": 1}
        assert http.get("/virtual-networks", headers={"X-Auth-Token": token}).status_code == 401


def test_vnc_api_reauthenticates_after_token_expiry(contrail_emulator_factory):
    url = contrail_emulator_factory(keystone=True)
    port = int(url.rsplit(":", 1)[1])
    vnc = vnc_for(url, auth_type="keystone", username="admin", password="contrail123",
                  tenant_name="admin", auth_host="127.0.0.1", auth_port=port,
                  auth_protocol="http", auth_url="/v3/auth/tokens")
    assert vnc.fq_name_to_id("domain", ["default-domain"])
    httpx.post(f"{url}/_emulator/keystone/expire", json={})
    assert vnc.fq_name_to_id("domain", ["default-domain"])  # 401 -> new token -> retry
    counters = httpx.get(f"{url}/_emulator/counters").json()
    assert counters["by_type"]["keystone"] == 2


def test_state_file_survives_restart(tmp_path):
    state = str(tmp_path / "contrail.sqlite")
    with serve_in_thread(create_app(state_file=state, flush_interval=0.05)) as url:
        vnc = vnc_for(url)
        project = vnc.project_read(fq_name=["default-domain", "default-project"])
        vn = user_vn(vnc, project, "kept")
        iip = InstanceIp("kept-iip")
        iip.add_virtual_network(vn)
        vnc.instance_ip_create(iip)
        vnc.kv_store("k", "v")
    with serve_in_thread(create_app(state_file=state)) as url:
        vnc = vnc_for(url)
        read = vnc.virtual_network_read(id=vn.uuid, exclude_children=False)
        assert read.virtual_network_network_id == 5 and read.get_routing_instances()
        assert vnc.instance_ip_read(id=iip.uuid).instance_ip_address == "10.47.255.252"
        nxt = InstanceIp("after-restart")
        nxt.add_virtual_network(read)
        vnc.instance_ip_create(nxt)
        assert vnc.instance_ip_read(id=nxt.uuid).instance_ip_address == "10.47.255.251"
        other = VirtualNetwork("second", project)
        vnc.virtual_network_create(other)
        assert vnc.virtual_network_read(id=other.uuid).virtual_network_network_id == 6
        assert vnc.kv_retrieve("k") == "v"
        assert httpx.post(f"{url}/_emulator/reset").status_code == 200
        assert vnc.virtual_networks_list(obj_uuids=[vn.uuid]) == {"virtual-networks": []}


def test_state_file_keeps_changes_made_after_a_flush(tmp_path):
    """Every flush, not only the first, writes what changed since the previous one."""
    path = str(tmp_path / "contrail.sqlite")
    state = StateFile(path)
    backend = _initial_backend(state)
    assert state.flush() == 0
    actions.useragent_kv(backend, {"operation": "STORE", "key": "first", "value": 1})
    assert state.flush() > 0
    actions.useragent_kv(backend, {"operation": "STORE", "key": "second", "value": 2})
    state.close()
    reloaded = Backend()
    assert StateFile(path).load_into(reloaded)
    assert reloaded.kv == {"first": 1, "second": 2}

"""The engine in-process: a key's run turns into done / retry / failed sync, and GC."""

from __future__ import annotations

import contextlib
import uuid

import httpx
import pytest

from tasks import naming, pod
from tasks.outcomes import NotReady
from workers.allocation import KEEP, MOVES, AllocationLock
from workers.apply import AppliedSet
from workers.engine import SyncFailed, run_key
from workers.gc import KINDS, collect_garbage
from workers.reconcilers import CLUSTER_KEY

pytestmark = pytest.mark.integration


def run(context, key):
    """Queue the key, then run its message (as a worker does)."""
    sent = []
    context.queue.enqueue([key])
    outcome = run_key(context, key, lambda keys, lane=None: sent.extend(keys))
    return outcome, sent


def project_uuid(context, name):
    return naming.object_uuid(context.settings.cluster_name, "Namespace", name, "project")


def add_namespace(context, name, annotations=None, uid="uid-1"):
    context.store.put("Namespace", "", name, {"uid": uid, "labels": {},
                                             "annotations": annotations or {}})


def test_namespace_becomes_a_project_with_owner_annotations(context):
    assert run(context, CLUSTER_KEY)[0] == "done"
    add_namespace(context, "team-a")
    assert run(context, "namespace/team-a") == ("done", [])
    project = context.contrail.read("project", project_uuid(context, "team-a"))
    assert project["fq_name"] == ["default-domain", "k8s-team-a"]
    notes = {p["key"]: p["value"] for p in project["annotations"]["key_value_pair"]}
    assert notes["owner"] == "k8s" and notes["cluster"] == "k8s"
    assert notes["kind"] == "Namespace" and notes["name"] == "team-a"
    assert context.failures.all() == []


def test_isolation_on_and_off_makes_and_removes_the_namespace_network(context):
    run(context, CLUSTER_KEY)
    add_namespace(context, "iso", {"opencontrail.kubernetes.isolated": "true"})
    assert run(context, "namespace/iso")[0] == "done"
    networks = context.contrail.list("virtual-network", parent_id=project_uuid(context, "iso"))
    assert [n["fq_name"][-1] for n in networks] == ["iso-vn"]
    add_namespace(context, "iso", {"opencontrail.kubernetes.isolated": "false"})
    run(context, "namespace/iso")
    assert context.contrail.list("virtual-network",
                                 parent_id=project_uuid(context, "iso")) == []


def test_deleted_namespace_loses_its_project_and_tombstone(context):
    run(context, CLUSTER_KEY)
    add_namespace(context, "gone")
    run(context, "namespace/gone")
    context.store.delete("Namespace", "", "gone")
    assert context.store.tombstone("Namespace", "", "gone") is not None
    assert run(context, "namespace/gone")[0] == "done"
    assert context.store.tombstone("Namespace", "", "gone") is None
    with pytest.raises(Exception, match="404"):
        context.contrail.read("project", project_uuid(context, "gone"))


def test_bad_annotation_is_a_failed_sync_at_once_without_retry(context):
    add_namespace(context, "bad", {"opencontrail.org/isolation": "yes please"})
    outcome, _ = run(context, "namespace/bad")
    assert outcome == "bad-input"
    failure = context.failures.get("namespace/bad")
    assert failure.permanent and failure.attempts == 1
    assert "opencontrail.org/isolation" in failure.error and "BadInput" in failure.traceback
    assert context.queue.delayed() == {}


def test_transient_errors_retry_with_backoff_then_become_failed_then_recover(make_context,
                                                                           contrail_url):
    context = make_context(contrail_url, max_attempts=2)
    run(context, CLUSTER_KEY)
    add_namespace(context, "flaky")
    httpx.put(f"{contrail_url}/_emulator/faults", json={"outage_seconds": 60})
    assert run(context, "namespace/flaky")[0] == "error"
    assert set(context.queue.delayed()) == {"namespace/flaky"}
    assert context.failures.get("namespace/flaky") is None       # 1 < max_attempts
    run(context, "namespace/flaky")
    failure = context.failures.get("namespace/flaky")
    assert failure.attempts == 2 and not failure.permanent and "Unavailable" in failure.error
    assert set(context.queue.delayed()) == {"namespace/flaky"}   # keeps retrying
    httpx.put(f"{contrail_url}/_emulator/faults", json={"outage_seconds": 0})
    assert run(context, "namespace/flaky")[0] == "done"
    assert context.failures.get("namespace/flaky") is None
    assert context.failures.attempts("namespace/flaky") == 0


def test_flower_shows_a_brief_error_green_and_a_failed_sync_red(make_context, contrail_url):
    """The Celery task raises (FAILURE in Flower) only once the key is a failed sync."""
    context = make_context(contrail_url, max_attempts=2)
    run(context, CLUSTER_KEY)
    add_namespace(context, "flaky")
    httpx.put(f"{contrail_url}/_emulator/faults", json={"outage_seconds": 60})
    try:
        context.queue.enqueue(["namespace/flaky"])
        assert run_key(context, "namespace/flaky", lambda *_: None,
                       raise_failures=True) == "error"          # attempt 1: retried, green
        context.queue.enqueue(["namespace/flaky"])
        with pytest.raises(SyncFailed, match=r"namespace/flaky: .*Unavailable.*retrying in"):
            run_key(context, "namespace/flaky", lambda *_: None, raise_failures=True)
    finally:
        httpx.put(f"{contrail_url}/_emulator/faults", json={"outage_seconds": 0})


def test_gc_deletes_orphans_only(context):
    run(context, CLUSTER_KEY)
    for kind in KINDS:
        context.store.writer(kind).listed("1")
    add_namespace(context, "alive")
    run(context, "namespace/alive")
    # made while ckm was down: a project for a namespace that no longer exists
    orphan = context.contrail.create("project", {
        "fq_name": ["default-domain", "k8s-orphan"], "parent_type": "domain",
        "annotations": {"key_value_pair": [
            {"key": "owner", "value": "k8s"}, {"key": "cluster", "value": "k8s"},
            {"key": "kind", "value": "Namespace"}, {"key": "name", "value": "orphan"}]}})["uuid"]
    other_cluster = context.contrail.create("project", {
        "fq_name": ["default-domain", "c2-x"], "parent_type": "domain",
        "annotations": {"key_value_pair": [
            {"key": "owner", "value": "k8s"}, {"key": "cluster", "value": "c2"},
            {"key": "kind", "value": "Namespace"}, {"key": "name", "value": "x"}]}})["uuid"]
    unowned = context.contrail.create("project", {
        "fq_name": ["default-domain", "manual"], "parent_type": "domain"})["uuid"]
    deleted = collect_garbage(context.contrail, context.store, "k8s", live_peers=set(),
                              hand_over=lambda *_: None)
    assert deleted == [orphan]
    for survivor in (other_cluster, unowned, project_uuid(context, "alive")):
        assert context.contrail.read("project", survivor)


def test_gc_hands_peer_groups_no_policy_names_to_their_keys(context):
    """GC never deletes a shared peer group itself (a new policy may be naming it right
    now): it hands it to its `peer/...` key, which decides under the key's lock."""
    run(context, CLUSTER_KEY)
    for kind in KINDS:
        context.store.writer(kind).listed("1")

    def peer_group(short):
        return context.contrail.create("security-group", {
            "fq_name": ["default-domain", "k8s-default", f"k8s-peer-{short}"],
            "parent_type": "project", "annotations": {"key_value_pair": [
                {"key": "owner", "value": "k8s"}, {"key": "cluster", "value": "k8s"},
                {"key": "kind", "value": "NetworkPolicyPeer"},
                {"key": "namespace", "value": ""}, {"key": "name", "value": short}]}})["uuid"]
    named, unnamed = peer_group("aaaa"), peer_group("cccc")
    handed = []
    deleted = collect_garbage(context.contrail, context.store, "k8s",
                              live_peers={"peer/aaaa"},
                              hand_over=lambda key, address: handed.append((key, address)))
    assert deleted == [] and handed == [("peer/cccc", ("security-group", unnamed))]
    AppliedSet(context.redis, "peer/cccc").record(("security-group", unnamed), "gc")
    assert run(context, "peer/cccc")[0] == "done"      # no policy names it: the key deletes it
    assert not context.contrail.list("security-group", obj_uuids=[unnamed])
    assert context.contrail.read("security-group", named)


def test_gc_waits_for_the_first_full_list(context):
    context.contrail.create("project", {
        "fq_name": ["default-domain", "k8s-orphan"], "parent_type": "domain",
        "annotations": {"key_value_pair": [
            {"key": "owner", "value": "k8s"}, {"key": "cluster", "value": "k8s"},
            {"key": "kind", "value": "Namespace"}, {"key": "name", "value": "orphan"}]}})
    assert collect_garbage(context.contrail, context.store, "k8s", live_peers=set(),
                              hand_over=lambda *_: None) == []


def test_bootstrap_repairs_what_is_missing_or_wrong(context):
    assert run(context, CLUSTER_KEY)[0] == "done"
    contrail = context.contrail
    ipam = contrail.fq_name_to_id("network-ipam", ["default-domain", "k8s-default",
                                                   "k8s-pod-ipam"])
    network = contrail.fq_name_to_id("virtual-network", ["default-domain", "k8s-default",
                                                         "cluster-network"])
    contrail.update("network-ipam", ipam, {"ipam_subnets": {"subnets": []}})
    contrail.ref_update("virtual-network", network, "network-ipam",
                        contrail.fq_name_to_id("network-ipam", [
                            "default-domain", "k8s-default", "k8s-service-ipam"]), "DELETE")
    assert run(context, CLUSTER_KEY)[0] == "done"   # remembered as applied: no calls ...
    assert contrail.read("network-ipam", ipam)["ipam_subnets"]["subnets"] == []
    context.redis.incr("ckm:epoch")                 # ... until a full resync verifies
    assert run(context, CLUSTER_KEY)[0] == "done"
    subnets = contrail.read("network-ipam", ipam)["ipam_subnets"]["subnets"]
    assert [s["subnet"]["ip_prefix"] for s in subnets] == ["10.32.0.0"]
    refs = contrail.read("virtual-network", network)["network_ipam_refs"]
    assert sorted(r["to"][-1] for r in refs) == ["k8s-pod-ipam", "k8s-service-ipam"]


def test_flower_sees_failures_but_not_runs_that_wait(context):
    """Celery tasks call run_key with raise_failures: bad input raises SyncFailed (FAILURE in
    Flower); a run waiting for another key does not, until it is a failed sync."""
    run(context, CLUSTER_KEY)
    add_namespace(context, "typo", {"opencontrail.org/isolation": "ture"})
    def run_queued(key, **flags):
        context.queue.enqueue([key])
        return run_key(context, key, lambda *_: None, **flags)

    with pytest.raises(SyncFailed, match="namespace/typo: BadInput"):
        run_queued("namespace/typo", raise_failures=True)
    context.store.put("NetworkPolicy", "later", "p", {"uid": "np-1", "spec": {}})
    assert run_queued("policy/later/p", raise_failures=True) == "not-ready"  # no project yet
    for _ in range(context.settings.max_attempts - 2):
        run_queued("policy/later/p")
    with pytest.raises(SyncFailed, match="NotReady"):         # now a failed sync
        run_queued("policy/later/p", raise_failures=True)
    assert context.failures.get("policy/later/p").attempts == context.settings.max_attempts


def test_a_pod_whose_address_cannot_move_stays_where_it_is(make_context, contrail_url):
    """Issue 13: a move keeps the pod's address or does not happen. Here pod_subnets was
    narrowed after the pod started, so its network's IPAM range no longer holds it."""
    context = make_context(contrail_url)
    run(context, CLUSTER_KEY)
    add_namespace(context, "shop")
    run(context, "namespace/shop")
    context.contrail.create("virtual-router", {"fq_name": ["default-global-system-config", "n1"],
                                               "parent_type": "global-system-config"})
    uid = str(uuid.uuid4())
    context.store.put("Pod", "shop", "web", {"uid": uid, "labels": {}, "annotations": {},
                                             "node": "n1", "host_network": False,
                                             "ports": [], "finished": False})
    assert run(context, "port/shop/web")[0] == "done"
    port = pod.vmi_uuid(context.settings, uid)

    def addresses():
        return [(i["instance_ip_address"], i["virtual_network_refs"][0]["to"][-1])
                for i in context.contrail.list("instance-ip", back_ref_id=port, fields=[
                    "instance_ip_address", "virtual_network_refs"])]
    (before,) = addresses()
    assert before[1] == "cluster-network"

    narrowed = make_context(contrail_url, pod_subnets=["10.40.0.0/16"])
    add_namespace(narrowed, "shop", {"opencontrail.kubernetes.isolated": "true"})
    assert run(narrowed, "namespace/shop")[0] == "done"
    assert run(narrowed, "port/shop/web")[0] == "bad-input"
    failure = narrowed.failures.get("port/shop/web")
    assert failure.permanent and f"its address {before[0]} is outside pod_subnets" in \
        failure.error and "stays on its network" in failure.error and "recreate" in failure.error
    assert addresses() == [before]  # nothing moved, nothing lost
    assert run(narrowed, "fip/shop/web")[0] == "done"  # it stays on cluster-network: no FIP
    assert context.contrail.list("floating-ip", back_ref_id=port) == []


def pod_on_cluster_network(context, name="web"):
    """A namespace and a running pod on cluster-network; returns (uid, port uuid, address)."""
    run(context, CLUSTER_KEY)
    add_namespace(context, "shop")
    run(context, "namespace/shop")
    with contextlib.suppress(Exception):  # the node's vrouter, once
        context.contrail.create("virtual-router", {
            "fq_name": ["default-global-system-config", "n1"],
            "parent_type": "global-system-config"})
    uid = str(uuid.uuid4())
    context.store.put("Pod", "shop", name, {"uid": uid, "labels": {}, "annotations": {},
                                            "node": "n1", "host_network": False,
                                            "ports": [], "finished": False})
    assert run(context, f"port/shop/{name}")[0] == "done"
    port = pod.vmi_uuid(context.settings, uid)
    (iip,) = context.contrail.list("instance-ip", back_ref_id=port,
                                   fields=["instance_ip_address"])
    return uid, port, iip


def held(context, port):
    return sorted((i["instance_ip_address"], i["virtual_network_refs"][0]["to"][-1])
                  for i in context.contrail.list("instance-ip", back_ref_id=port, fields=[
                      "instance_ip_address", "virtual_network_refs"]))


def died_mid_move(context) -> tuple[str, str]:
    """A pod whose namespace became isolated, and a run of its port key that claimed the
    move, deleted the old instance-ip and died; returns (port uuid, address)."""
    uid, port, iip = pod_on_cluster_network(context)
    add_namespace(context, "shop", {"opencontrail.kubernetes.isolated": "true"})
    run(context, "namespace/shop")
    AllocationLock(context.redis).claim_move("port/shop/web", uid, iip["instance_ip_address"])
    context.contrail.delete("instance-ip", iip["uuid"])
    AppliedSet(context.redis, "port/shop/web").remove(("instance-ip", iip["uuid"]))
    return port, iip["instance_ip_address"]


def test_a_move_whose_worker_died_after_the_delete_finishes_with_the_address(context):
    port, address = died_mid_move(context)
    # no other allocation while the move is unfinished
    with pytest.raises(NotReady), AllocationLock(context.redis, wait=0.2).shared():
        pass
    assert run(context, "port/shop/web")[0] == "done"
    assert held(context, port) == [(address, "shop-vn")]
    assert context.redis.zcard(MOVES) == 0 and context.redis.hlen(KEEP) == 0


def test_a_move_whose_address_was_taken_meanwhile_says_so_and_frees_the_lock(context):
    _, address = died_mid_move(context)
    network = context.contrail.fq_name_to_id(
        "virtual-network", ["default-domain", "k8s-default", "cluster-network"])
    context.contrail.create("instance-ip", {  # somebody outside ckm takes it
        "fq_name": ["intruder"], "instance_ip_address": address,
        "virtual_network_refs": [{"uuid": network}]})
    assert run(context, "port/shop/web")[0] == "bad-input"
    failure = context.failures.get("port/shop/web")
    assert f"lost its address {address}" in failure.error and "recreate" in failure.error
    assert context.redis.zcard(MOVES) == 0 and context.redis.hlen(KEEP) == 0
    with AllocationLock(context.redis, wait=0.2).shared():  # new pods allocate again
        pass


def test_a_move_after_redis_lost_the_port_keys_memory_keeps_the_address(context):
    _, port, iip = pod_on_cluster_network(context)
    address = iip["instance_ip_address"]
    context.redis.delete("ckm:applied:port/shop/web", "ckm:placed")  # Redis lost them
    add_namespace(context, "shop", {"opencontrail.kubernetes.isolated": "true"})
    run(context, "namespace/shop")
    assert run(context, "port/shop/web")[0] == "done"
    assert held(context, port) == [(address, "shop-vn")]


def test_a_changed_key_is_timed_from_its_enqueue_to_the_end_of_its_run(context):
    """The sync latency histogram: the enqueue of a change stamps the key (in the enqueue's own
    script), the run's ending reads and clears the stamp."""
    from workers import metrics
    from workers.queue import SINCE

    metrics.LATENCY.labels("cluster")  # the series, at 0 if nothing ran yet

    def observed() -> float:
        return next(s.value for m in metrics.LATENCY.collect() for s in m.samples
                    if s.name.endswith("_count") and s.labels == {"kind": "cluster"})

    before = observed()
    context.queue.enqueue([CLUSTER_KEY], changed=True)
    assert context.redis.hget(SINCE, CLUSTER_KEY)
    assert run_key(context, CLUSTER_KEY, lambda *_: None) == "done"
    assert context.redis.hget(SINCE, CLUSTER_KEY) is None
    assert observed() > before

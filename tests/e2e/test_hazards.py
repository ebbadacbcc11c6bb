"""Ordering hazards, skipped pods, public addresses, bad input, and a restart that missed
deletes and re-creations (uid change, GC)."""

from __future__ import annotations

import threading
import uuid

import pytest

from tasks import naming
from tests.e2e.conftest import wait_for
from tests.e2e.test_translation import pod_body, running_ip
from watcher.main import Watcher
from workers.dispatch import enqueue
from workers.reconcilers import CLUSTER_KEY
from workers.resync import resync

pytestmark = pytest.mark.integration


def vm_exists(contrail, uid):
    return bool(contrail.list("virtual-machine", obj_uuids=[uid]))


def test_pods_before_their_namespace_and_endpoints_before_their_service(celery_stack):
    stack = celery_stack
    stack.start_worker()
    store = stack.context.store
    uid = str(uuid.uuid4())
    store.put("Pod", "late-ns", "p", {"uid": uid, "labels": {}, "annotations": {}, "node": "",
                                     "host_network": False, "ports": [], "finished": False})
    store.put("Pod", "late-ns", "p", {"uid": uid, "labels": {}, "annotations": {},
                                     "node": "n1", "host_network": False, "ports": [],
                                     "finished": False})
    store.put("EndpointSlice", "late-ns", "svc-abc", {
        "uid": "s1", "labels": {}, "service": "svc", "ports": [
            {"name": "", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.47.255.200"], "ready": True, "pod": "p",
                       "pod_uid": uid}]})
    stack.enqueue([CLUSTER_KEY, "port/late-ns/p", "members/late-ns/svc"])
    wait_for(lambda: stack.context.failures.attempts("port/late-ns/p") > 0,
             what="port waiting for its namespace")
    store.put("Namespace", "", "late-ns", {"uid": "n", "labels": {}, "annotations": {}})
    store.put("Service", "late-ns", "svc", {
        "uid": str(uuid.uuid4()), "labels": {}, "annotations": {}, "type": "ClusterIP",
        "cluster_ip": "10.96.0.50", "external_ips": [], "selector": {"app": "x"},
        "ports": [{"name": "", "port": 80, "protocol": "TCP", "target_port": 80}]})
    stack.enqueue(["namespace/late-ns", "service/late-ns/svc"])
    contrail = stack.context.contrail
    contrail.create("virtual-router", {"fq_name": ["default-global-system-config", "n1"],
                                       "parent_type": "global-system-config"})
    stack.wait_idle(timeout=60)
    assert vm_exists(contrail, uid)
    members = contrail.list("loadbalancer-member", detail=True)
    assert [m["loadbalancer_member_properties"]["address"] for m in members] == [
        "10.47.255.200"]
    assert stack.context.failures.all() == []


def test_host_network_and_unmanaged_pods_get_no_port(system):
    system.core.create_namespaced_pod("default", {**pod_body("hostnet"), "spec": {
        "hostNetwork": True, "containers": [{"name": "c", "image": "x"}]}})
    system.core.create_namespaced_pod("kube-system", pod_body("coredns"))
    system.stack.wait_idle()
    for ns, name in (("default", "hostnet"), ("kube-system", "coredns")):
        uid = system.core.read_namespaced_pod(name, ns).metadata.uid
        assert not vm_exists(system.contrail, uid)


@pytest.fixture
def public_pool(celery_stack):
    contrail = celery_stack.context.contrail
    ipam = contrail.fq_name_to_id("network-ipam", ["default-domain", "default-project",
                                                   "default-network-ipam"])
    contrail.create("virtual-network", {
        "fq_name": ["default-domain", "default-project", "public"], "parent_type": "project",
        "network_ipam_refs": [{"to": ["default-domain", "default-project",
                                      "default-network-ipam"], "uuid": ipam,
                               "attr": {"ipam_subnets": [{"subnet": {
                                   "ip_prefix": "192.0.2.0", "ip_prefix_len": 24}}]}}]})
    contrail.create("floating-ip-pool", {
        "fq_name": ["default-domain", "default-project", "public", "public-pool"],
        "parent_type": "virtual-network"})
    return "default-domain:default-project:public:public-pool"


def test_public_addresses_and_bad_external_ip(make_system, public_pool):
    system = make_system(CKM_PUBLIC_FIP_POOL=public_pool)
    system.core.create_namespaced_service("default", {"metadata": {"name": "lb"}, "spec": {
        "type": "LoadBalancer", "selector": {"app": "lb"}, "ports": [{"port": 80}]}})
    system.core.create_namespaced_service("default", {"metadata": {"name": "ext"}, "spec": {
        "externalIPs": ["192.0.2.10"], "selector": {"app": "ext"}, "ports": [{"port": 80}]}})
    system.core.create_namespaced_service("default", {"metadata": {"name": "bad"}, "spec": {
        "externalIPs": ["198.51.100.7"], "selector": {"app": "bad"}, "ports": [{"port": 80}]}})
    lb_status = wait_for(lambda: system.core.read_namespaced_service_status(
        "lb", "default").status.load_balancer.ingress, what="LoadBalancer status")
    assert lb_status[0].ip.startswith("192.0.2.")
    ext_status = wait_for(lambda: system.core.read_namespaced_service_status(
        "ext", "default").status.load_balancer.ingress, what="externalIP status")
    assert [i.ip for i in ext_status] == ["192.0.2.10"]
    system.net.create_namespaced_ingress("default", {
        "metadata": {"name": "public"}, "spec": {"defaultBackend": {
            "service": {"name": "lb", "port": {"number": 80}}}}})
    ingress_status = wait_for(lambda: system.net.read_namespaced_ingress_status(
        "public", "default").status.load_balancer.ingress, what="ingress status")
    ips = sorted(i.ip for i in ingress_status)
    assert len(ips) == 2 and any(ip.startswith("192.0.2.") for ip in ips)  # VIP + public
    failure = wait_for(lambda: system.stack.context.failures.get("service/default/bad"))
    assert failure.permanent and "outside the public pool" in failure.error
    events = wait_for(lambda: [e for e in system.core.list_namespaced_event("default").items
                               if e.involved_object.name == "bad"], what="an Event")
    assert events[0].type == "Warning" and "198.51.100.7" in events[0].message


def test_restart_after_missed_deletes_and_recreations(make_system):
    system = make_system()
    stack, core = system.stack, system.core
    for name in ("gone", "reborn"):
        core.create_namespaced_pod("default", pod_body(name))
    for name in ("gone", "reborn"):
        wait_for(lambda n=name: running_ip(system, "default", n), what=f"{name} Running")
    stack.wait_idle()
    old = {n: core.read_namespaced_pod(n, "default").metadata.uid for n in ("gone", "reborn")}
    # ckm goes down and loses its Redis; meanwhile one pod is deleted, one re-created
    system.stop_watcher()
    for proc in stack.workers:
        stack.kill(proc)
    stack.workers.clear()
    stack.context.redis.flushdb()
    core.delete_namespaced_pod("gone", "default")
    core.delete_namespaced_pod("reborn", "default")
    wait_for(lambda: "reborn" not in [p.metadata.name for p in
                                      core.list_namespaced_pod("default").items])
    core.create_namespaced_pod("default", pod_body("reborn"))
    new_uid = core.read_namespaced_pod("reborn", "default").metadata.uid
    # ckm comes back: a new watcher (fresh store) and a new worker
    stack.start_worker(CKM_KUBE_URL=system.kube.url)

    def push(keys, urgent):
        enqueue(stack.app, stack.context.queue, keys, urgent=urgent)

    watcher = Watcher(system.kube.api_client(), stack.context.store, push,
                      bootstrap_keys=[CLUSTER_KEY], lease_seconds=1, identity="second-life")
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: vm_exists(stack.context.contrail, new_uid), what="new VM")
        wait_for(lambda: running_ip(system, "default", "reborn"), what="reborn Running")
        assert not vm_exists(stack.context.contrail, old["reborn"])
        wait_for(lambda: all(stack.context.store.resource_version(k) for k in (
            "Namespace", "Pod", "Service", "EndpointSlice", "NetworkPolicy", "Ingress",
            "Node")), what="every kind listed")
        stack.wait_idle()
        assert vm_exists(stack.context.contrail, old["gone"])   # nobody knew about it ...
        resync(stack.context, stack.app)                       # ... until GC
        assert not vm_exists(stack.context.contrail, old["gone"])
        port = naming.object_uuid("k8s", "Pod", old["gone"], "vmi")
        assert not stack.context.contrail.list("virtual-machine-interface", obj_uuids=[port])
    finally:
        watcher.stop.set()
        thread.join(10)


def test_a_pod_recreated_under_its_name_seen_only_as_the_new_pod_does_not_deadlock(
        celery_stack):
    """Issue 11, defect 9: after a 410 relist (or Contrail 503s delaying the key) the port key
    meets the new uid before it handled the delete. It used to delete the old port first and
    get RefsExist from the old egress floating IP, whose fip key waited for the new port."""
    stack = celery_stack
    stack.start_worker()
    store, contrail = stack.context.store, stack.context.contrail
    contrail.create("virtual-router", {"fq_name": ["default-global-system-config", "n1"],
                                       "parent_type": "global-system-config"})
    store.put("Namespace", "", "iso", {"uid": "ns-iso", "labels": {}, "annotations": {
        "opencontrail.org/isolation": "true"}})

    def pod(uid):
        return {"uid": uid, "labels": {}, "annotations": {}, "node": "n1",
                "host_network": False, "ports": [], "finished": False}

    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    store.put("Pod", "iso", "p", pod(old))
    keys = ["port/iso/p", "fip/iso/p", "sgs/iso/p"]
    stack.enqueue([CLUSTER_KEY, "namespace/iso", *keys])
    stack.wait_idle(timeout=60)
    fips = lambda: {f["uuid"]: f for f in contrail.list("floating-ip", detail=True)  # noqa: E731
                    if f.get("floating_ip_traffic_direction") == "egress"}
    assert len(fips()) == 1 and vm_exists(contrail, old)
    store.put("Pod", "iso", "p", pod(new))           # the delete was never seen
    stack.enqueue(keys)
    stack.wait_idle(timeout=60)
    assert stack.context.failures.all() == []
    assert vm_exists(contrail, new) and not vm_exists(contrail, old)
    (fip,) = fips().values()
    assert [r["uuid"] for r in fip["virtual_machine_interface_refs"]] == [
        pod_vmi(stack, new)]


def pod_vmi(stack, uid):
    from tasks import pod

    return pod.vmi_uuid(stack.context.settings, uid)


@pytest.mark.parametrize("lost", ["virtual-machine-interface", "instance-ip"])
def test_a_pod_deleted_after_a_run_died_between_making_its_port_and_recording_it(
        celery_stack, lost):
    """Found by the fault suite (R1), twice: a worker killed after creating the VMI (or its
    instance-ip) but before recording it left the port key's memory without it; deleting the
    pod then tried the VM (or the VMI) first, got RefsExist for ever and leaked them all."""
    stack = celery_stack
    stack.start_worker()
    store, contrail = stack.context.store, stack.context.contrail
    contrail.create("virtual-router", {"fq_name": ["default-global-system-config", "n1"],
                                       "parent_type": "global-system-config"})
    store.put("Namespace", "", "k", {"uid": "ns-k", "labels": {}, "annotations": {}})
    uid = str(uuid.uuid4())
    store.put("Pod", "k", "p", {"uid": uid, "labels": {}, "annotations": {}, "node": "n1",
                                "host_network": False, "ports": [], "finished": False})
    stack.enqueue([CLUSTER_KEY, "namespace/k", "port/k/p"])
    stack.wait_idle(timeout=60)
    port = pod_vmi(stack, uid)
    # the state a kill between the VMI's create and its record leaves behind
    from workers.apply import AppliedSet

    (iip,) = contrail.list("instance-ip", back_ref_id=port)
    made = {"virtual-machine-interface": port, "instance-ip": iip["uuid"]}
    AppliedSet(stack.context.redis, "port/k/p").remove((lost, made[lost]))
    store.delete("Pod", "k", "p")
    stack.enqueue(["port/k/p"])
    stack.wait_idle(timeout=60)
    assert stack.context.failures.all() == []
    assert not vm_exists(contrail, uid)
    assert not contrail.list("virtual-machine-interface", obj_uuids=[port])
    assert not contrail.list("instance-ip", obj_uuids=[iip["uuid"]])



def test_ecmp_backends_stay_exact_after_redis_lost_their_memory(system):
    """The members key diffs a service's ECMP refs against its memory in Redis; without it,
    against the floating IP. Once that memory was lost, adding one backend must not leave a
    memory of that backend alone, or a later removal is never written (found by fault R3b)."""
    core, stack = system.core, system.stack
    core.create_namespace({"metadata": {"name": "shop"}})
    core.create_namespaced_service("shop", {"metadata": {"name": "web"}, "spec": {
        "selector": {"tier": "web"}, "ports": [{"port": 80}]}})
    for name in ("a", "b", "c"):
        core.create_namespaced_pod("shop", pod_body(name, {"tier": "web"}))

    def backends() -> set[str] | None:
        fips = [f for f in stack.context.contrail.list("floating-ip", detail=True)
                if f["fq_name"][-1].startswith("web__") and f["fq_name"][-1].endswith("__ecmp")]
        if len(fips) != 1:
            return None
        return {r["to"][-1].split("__")[0] for r in
                fips[0].get("virtual_machine_interface_refs") or []}

    wait_for(lambda: backends() == {"a", "b", "c"}, timeout=60, what="three backends")
    stack.wait_idle()
    for memo in stack.context.redis.scan_iter("ckm:ecmp:*"):  # Redis lost this memory
        stack.context.redis.delete(memo)
    core.create_namespaced_pod("shop", pod_body("d", {"tier": "web"}))
    wait_for(lambda: backends() == {"a", "b", "c", "d"}, timeout=60, what="d added")
    core.patch_namespaced_pod("a", "shop", {"metadata": {"labels": {"tier": "canary"}}})
    wait_for(lambda: backends() == {"b", "c", "d"}, timeout=60, what="a removed")

"""A pod keeps its address for life (issue 13): 20 running pods move between networks at once
(isolation on and off, app label added, changed, removed), and after each step every pod's
`status.podIP` is held by exactly one instance-ip, on the pod's new network; the isolation
behaviours (a)-(e) hold for those addresses, and the service over the pods keeps working."""

from __future__ import annotations

import pytest

from ckm.reach_cli import Cluster
from contrail.ensure import annotations_of
from tasks import pod as pods
from tests.e2e.conftest import wait_for
from tests.e2e.test_translation import pod_body, running_ip

pytestmark = pytest.mark.integration

COUNT = 20
ISOLATED = "opencontrail.kubernetes.isolated"
APP = "opencontrail.org/name"
SERVICE = {"metadata": {"name": "web"},
           "spec": {"selector": {"tier": "web"}, "ports": [{"port": 80, "targetPort": 80}]}}


def addresses_by_network(system, uid: str) -> list[tuple[str, str]]:
    """(address, network name) of every instance-ip on the pod's port."""
    port = pods.vmi_uuid(system.stack.context.settings, uid)
    return sorted((iip["instance_ip_address"], iip["virtual_network_refs"][0]["to"][-1])
                  for iip in system.contrail.list("instance-ip", back_ref_id=port, fields=[
                      "instance_ip_address", "virtual_network_refs"]))


def egress_fips(system, uid: str) -> int:
    """The pod's own floating IPs (not the ECMP one of the service it backs)."""
    port = pods.vmi_uuid(system.stack.context.settings, uid)
    return sum(annotations_of(f).get("kind") == "Pod" for f in system.contrail.list(
        "floating-ip", back_ref_id=port, fields=["annotations"]))


def settled(system, ips: dict[str, str], uids: dict[str, str], network: str, fip: bool):
    """Every pod on `network` with its own address only, its egress FIP as the network wants,
    nothing left to run."""
    for name, ip in ips.items():
        if addresses_by_network(system, uids[name]) != [(ip, network)]:
            return False
        if egress_fips(system, uids[name]) != (1 if fip else 0):
            return False
    return True


def check_step(system, ips, uids, network, fip, *, isolated=False):
    try:
        wait_for(lambda: settled(system, ips, uids, network, fip), timeout=90,
                 what=f"every pod on {network} with its address")
    except AssertionError:  # say how far from it
        for name in ips:
            print(name, ips[name], addresses_by_network(system, uids[name]),
                  egress_fips(system, uids[name]))
        raise
    system.stack.wait_idle()
    core = system.core
    for name, ip in ips.items():  # the kubelet never renumbers a running pod
        assert core.read_namespaced_pod(name, "shop").status.pod_ip == ip
    assert system.stack.context.failures.all() == []
    cluster = Cluster(system.stack.context.settings, system.contrail)

    def allowed(src, dst, port=80):
        return cluster.reach(src, dst, port, "tcp").allowed

    web0, web1 = "shop/web-0", "shop/web-1"
    assert allowed(web0, ips["web-1"])                      # (a) among themselves
    assert allowed(web0, client_ip(system))                 # (c) out of their network
    assert allowed(web1, "svc:default/echo")                # (d) every service
    assert allowed("default/client", "svc:shop/web")        # (e) through their service
    # (b) other namespaces reach them only when nothing isolates them
    assert allowed("default/client", ips["web-0"]) is not isolated
    assert sorted(lb_members(system)) == sorted(ips.values())  # the service keeps its pods


def client_ip(system) -> str:
    return running_ip(system, "default", "client")


def lb_members(system) -> list[str]:
    return [m["loadbalancer_member_properties"]["address"]
            for m in system.contrail.list("loadbalancer-member", detail=True)
            if m["fq_name"][1] == "k8s-shop"]


def test_twenty_running_pods_move_between_networks_and_keep_their_addresses(system):
    core = system.core
    core.create_namespace({"metadata": {"name": "shop"}})
    core.create_namespaced_pod("default", pod_body("client", {"tier": "client"}))
    core.create_namespaced_service("default", {
        "metadata": {"name": "echo"},
        "spec": {"selector": {"tier": "client"}, "ports": [{"port": 80}]}})
    core.create_namespaced_service("shop", SERVICE)
    for i in range(COUNT):
        core.create_namespaced_pod("shop", pod_body(f"web-{i}", {"tier": "web"}))
    names = [f"web-{i}" for i in range(COUNT)]
    ips = {name: wait_for(lambda n=name: running_ip(system, "shop", n), timeout=60,
                          what=f"{name} running") for name in names}
    uids = {name: core.read_namespaced_pod(name, "shop").metadata.uid for name in names}
    wait_for(lambda: client_ip(system), what="client running")
    check_step(system, ips, uids, "cluster-network", fip=False)

    def annotate(value):
        core.patch_namespace("shop", {"metadata": {"annotations": {ISOLATED: value}}})

    def label_all(value):
        for name in names:
            core.patch_namespaced_pod(name, "shop", {"metadata": {"labels": {APP: value}}})

    annotate("true")
    # new pods elsewhere take addresses while the 20 move: none may take a moving one
    for i in range(10):
        core.create_namespaced_pod("default", pod_body(f"newcomer-{i}"))
    check_step(system, ips, uids, "shop-vn", fip=True, isolated=True)
    newcomers = [wait_for(lambda n=f"newcomer-{i}": running_ip(system, "default", n),
                          timeout=60, what="newcomers running") for i in range(10)]
    assert len(set(newcomers)) == 10 and not set(newcomers) & set(ips.values())
    annotate("false")
    check_step(system, ips, uids, "cluster-network", fip=False)
    label_all("blue")
    check_step(system, ips, uids, "blue-vn", fip=True, isolated=True)
    label_all("green")
    check_step(system, ips, uids, "green-vn", fip=True, isolated=True)
    label_all(None)
    check_step(system, ips, uids, "cluster-network", fip=False)

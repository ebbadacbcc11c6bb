"""Pods, isolation, app isolation, services with ECMP and ingress, end to end through the real
`kubernetes` client, the watcher, Celery workers and both emulators."""

from __future__ import annotations

import pytest

from tasks import naming
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.integration

CLUSTER_NET = ["default-domain", "k8s-default", "cluster-network"]


def pod_body(name, labels=None, ports=None):
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "ports": ports or []}]}}


def namespace(system, name, annotations=None):
    system.core.create_namespace({"metadata": {"name": name, "annotations": annotations}})


def running_ip(system, ns, name):
    pod = system.core.read_namespaced_pod(name, ns)
    return pod.status.pod_ip if pod.status.phase == "Running" else None


def port_of(system, ns, name):
    pod = system.core.read_namespaced_pod(name, ns)
    vmi = naming.object_uuid("k8s", "Pod", pod.metadata.uid, "vmi")
    try:
        return system.contrail.read("virtual-machine-interface", vmi, back_refs=True)
    except Exception:
        return None


def network_of(system, ns, name):
    port = port_of(system, ns, name)
    return port["virtual_network_refs"][0]["to"] if port else None


def egress_fips(port):
    return [f for f in port.get("floating_ip_back_refs") or []]


def test_default_pods_get_contrail_addresses_and_leave_nothing_behind(system):
    for name in ("client-1", "client-2"):
        system.core.create_namespaced_pod("default", pod_body(name))
    ips = [wait_for(lambda n=n: running_ip(system, "default", n), what=f"{n} Running")
           for n in ("client-1", "client-2")]
    assert all(ip.startswith("10.4") for ip in ips) and ips[0] != ips[1]
    assert network_of(system, "default", "client-1") == CLUSTER_NET
    port = port_of(system, "default", "client-1")
    iip = system.contrail.read("instance-ip", port["instance_ip_back_refs"][0]["uuid"])
    assert iip["instance_ip_address"] == ips[0]        # kubectl shows Contrail's address
    assert not egress_fips(port)
    vm_uuid = system.core.read_namespaced_pod("client-1", "default").metadata.uid
    vm = system.contrail.read("virtual-machine", vm_uuid, back_refs=True)
    assert vm["virtual_router_back_refs"]                # linked to its node's vrouter
    system.core.delete_namespaced_pod("client-1", "default")
    wait_for(lambda: not system.contrail.list("virtual-machine", obj_uuids=[vm_uuid]),
             what="VM deleted")
    assert not system.contrail.list("virtual-machine-interface", obj_uuids=[port["uuid"]])
    assert not system.contrail.list("instance-ip", obj_uuids=[iip["uuid"]])


def test_isolated_namespace_pods_move_when_isolation_changes(system):
    namespace(system, "test-isolated-ns", {"opencontrail.kubernetes.isolated": "true"})
    system.core.create_namespaced_pod("test-isolated-ns", pod_body("example3"))
    wait_for(lambda: running_ip(system, "test-isolated-ns", "example3"))
    assert network_of(system, "test-isolated-ns", "example3")[-1] == "test-isolated-ns-vn"
    wait_for(lambda: egress_fips(port_of(system, "test-isolated-ns", "example3")),
             what="egress FIP")
    fip = system.contrail.read("floating-ip", egress_fips(
        port_of(system, "test-isolated-ns", "example3"))[0]["uuid"])
    assert fip["floating_ip_traffic_direction"] == "egress"
    assert fip["fq_name"][:4] == [*CLUSTER_NET, "cluster-network-fip-pool"]
    system.core.patch_namespace("test-isolated-ns", {"metadata": {"annotations": {
        "opencontrail.kubernetes.isolated": "false"}}})
    wait_for(lambda: network_of(system, "test-isolated-ns", "example3") == CLUSTER_NET,
             what="pod moved to cluster-network")
    wait_for(lambda: not egress_fips(port_of(system, "test-isolated-ns", "example3")),
             what="FIP removed")
    port = port_of(system, "test-isolated-ns", "example3")
    assert len(port["instance_ip_back_refs"]) == 1


def test_app_network_lives_with_its_pods(system):
    app = {"opencontrail.org/name": "frontend"}
    for name in ("fe-1", "fe-2"):
        system.core.create_namespaced_pod("default", pod_body(name, app))
    for name in ("fe-1", "fe-2"):
        wait_for(lambda n=name: network_of(system, "default", n) == [
            "default-domain", "k8s-default", "frontend-vn"], what=f"{name} on frontend-vn")
    wait_for(lambda: egress_fips(port_of(system, "default", "fe-1")), what="egress FIP")
    for name in ("fe-1", "fe-2"):
        system.core.delete_namespaced_pod(name, "default")
    vn = ["default-domain", "k8s-default", "frontend-vn"]
    wait_for(lambda: not system.contrail.list(
        "virtual-network", parent_id=system.contrail.fq_name_to_id("project", vn[:2]),
        filters={"display_name": "frontend-vn"}), what="frontend-vn removed")


def test_configured_app_label_is_followed_by_watcher_and_workers(make_system):
    system = make_system(app_label="example.com/app")
    system.core.create_namespaced_pod("default", pod_body("shop-1", {"example.com/app": "shop"}))
    vn = ["default-domain", "k8s-default", "shop-vn"]
    wait_for(lambda: network_of(system, "default", "shop-1") == vn, what="shop-1 on shop-vn")
    system.core.delete_namespaced_pod("shop-1", "default")
    wait_for(lambda: not system.contrail.list(
        "virtual-network", parent_id=system.contrail.fq_name_to_id("project", vn[:2]),
        filters={"display_name": "shop-vn"}), what="shop-vn removed with its last pod")


def service_body(name, selector, ports, cluster_ip=None):
    spec = {"selector": selector, "ports": ports}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"metadata": {"name": name}, "spec": spec}


def lb_state(system, ns, name):
    svc = system.core.read_namespaced_service(name, ns)
    try:
        lb = system.contrail.read("loadbalancer", svc.metadata.uid)
    except Exception:
        return None
    return svc, lb


def members_of(system, svc):
    out = set()
    for pool in system.contrail.list("loadbalancer-pool", parent_id=system.contrail.fq_name_to_id(
            "project", ["default-domain", "k8s-default"]), detail=True):
        if pool["fq_name"][-1].startswith(f"{svc.metadata.name}__{svc.metadata.uid}"):
            for m in system.contrail.list("loadbalancer-member", parent_id=pool["uuid"],
                                          detail=True):
                p = m["loadbalancer_member_properties"]
                out.add((p["address"], p["protocol_port"]))
    return out


def ecmp_backends(system, svc):
    for fip in system.contrail.list("floating-ip", detail=True):
        if fip.get("floating_ip_address") == svc.spec.cluster_ip and fip.get(
                "parent_type") == "instance-ip":
            return {r["uuid"] for r in fip.get("virtual_machine_interface_refs") or []}, fip
    return None, None


def test_service_loadbalancer_members_and_ecmp_follow_ready_pods(system):
    ports = [{"name": "http", "containerPort": 8080}]
    for name in ("web-1", "web-2"):
        system.core.create_namespaced_pod("default", pod_body(name, {"app": "web"}, ports))
    system.core.create_namespaced_service("default", service_body(
        "web", {"app": "web"}, [{"name": "http", "port": 80, "targetPort": "http"},
                                {"name": "alt", "port": 81, "targetPort": 9090}]))
    svc, lb = wait_for(lambda: lb_state(system, "default", "web"), what="loadbalancer")
    assert lb["loadbalancer_properties"]["vip_address"] == svc.spec.cluster_ip
    assert lb["loadbalancer_provider"] == "native"
    ips = [wait_for(lambda n=n: running_ip(system, "default", n)) for n in ("web-1", "web-2")]
    wait_for(lambda: members_of(system, svc) == {(ip, port) for ip in ips
                                                  for port in (8080, 9090)},
             what="members on the named and the numeric target port")
    backends = {port_of(system, "default", n)["uuid"] for n in ("web-1", "web-2")}
    wait_for(lambda: ecmp_backends(system, svc)[0] == backends, what="ECMP refs")
    _, fip = ecmp_backends(system, svc)
    assert {(m["src_port"], m["dst_port"]) for m in
            fip["floating_ip_port_mappings"]["port_mappings"]} == {(80, 8080), (81, 9090)}
    # one backend goes away: its member and ECMP ref follow
    system.core.delete_namespaced_pod("web-2", "default")
    wait_for(lambda: members_of(system, svc) == {(ips[0], 8080), (ips[0], 9090)},
             what="member removed")
    wait_for(lambda: ecmp_backends(system, svc)[0] == {port_of(system, "default",
                                                               "web-1")["uuid"]})
    # a removed port loses its listener and pool
    current = system.core.read_namespaced_service("web", "default")
    current.spec.ports = [p for p in current.spec.ports if p.port == 80]
    system.core.replace_namespaced_service("web", "default", current)
    wait_for(lambda: members_of(system, svc) == {(ips[0], 8080)}, what="port 81 gone")

    def listener_ports():
        return [x["loadbalancer_listener_properties"]["protocol_port"]
                for x in system.contrail.list("loadbalancer-listener", detail=True)
                if x["fq_name"][-1].startswith(f"web__{svc.metadata.uid}")]

    wait_for(lambda: listener_ports() == [80], what="listener of port 81 gone")
    # deleting the service leaves nothing of it
    system.core.delete_namespaced_service("web", "default")
    wait_for(lambda: not system.contrail.list("loadbalancer", obj_uuids=[svc.metadata.uid]),
             what="loadbalancer deleted")
    system.stack.wait_idle()
    assert ecmp_backends(system, svc) == (None, None)
    assert system.stack.context.failures.all() == []


def test_headless_and_external_name_services_are_skipped(system):
    system.core.create_namespaced_service("default", {
        "metadata": {"name": "headless"},
        "spec": {"clusterIP": "None", "selector": {"app": "x"}, "ports": [{"port": 80}]}})
    system.core.create_namespaced_service("default", {
        "metadata": {"name": "ext"}, "spec": {"type": "ExternalName",
                                              "externalName": "example.com"}})
    system.stack.wait_idle()
    for name in ("headless", "ext"):
        uid = system.core.read_namespaced_service(name, "default").metadata.uid
        assert not system.contrail.list("loadbalancer", obj_uuids=[uid])


def test_ingress_waits_for_its_service_then_writes_its_status(system):
    system.net.create_namespaced_ingress("default", {
        "metadata": {"name": "site"},
        "spec": {"rules": [{"host": "a.example", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "late", "port": {"name": "http"}}}}]}}]}})
    uid = system.net.read_namespaced_ingress("site", "default").metadata.uid
    wait_for(lambda: system.stack.context.failures.get("ingress/default/site") is None and
             system.stack.context.failures.attempts("ingress/default/site") > 0,
             what="ingress waiting for its service")
    assert not system.contrail.list("loadbalancer", obj_uuids=[uid])
    system.core.create_namespaced_service("default", service_body(
        "late", {"app": "late"}, [{"name": "http", "port": 8000, "targetPort": 80}]))
    lb = wait_for(lambda: system.contrail.list("loadbalancer", obj_uuids=[uid], detail=True),
                  what="ingress loadbalancer")[0]
    assert lb["loadbalancer_provider"] == "opencontrail"
    cluster_ip = system.core.read_namespaced_service("late", "default").spec.cluster_ip

    def members():
        return [(m["loadbalancer_member_properties"]["address"],
                 m["loadbalancer_member_properties"]["protocol_port"])
                for m in system.contrail.list("loadbalancer-member", detail=True)
                if m["fq_name"][-2].startswith(f"site__{uid}")]

    wait_for(lambda: members() == [(cluster_ip, 8000)], what="ingress member")
    status = wait_for(lambda: system.net.read_namespaced_ingress_status(
        "site", "default").status.load_balancer.ingress, what="ingress status")
    assert status[0].ip.startswith("10.4")


def test_ingress_of_another_class_is_ignored(system):
    system.core.create_namespaced_service("default", service_body(
        "svc", {"app": "x"}, [{"name": "http", "port": 80}]))
    system.net.create_namespaced_ingress("default", {
        "metadata": {"name": "nginx-only"},
        "spec": {"ingressClassName": "nginx", "defaultBackend": {
            "service": {"name": "svc", "port": {"number": 80}}}}})
    system.stack.wait_idle()
    uid = system.net.read_namespaced_ingress("nginx-only", "default").metadata.uid
    assert not system.contrail.list("loadbalancer", obj_uuids=[uid])


def test_service_type_changes_and_app_label_moves(system):
    core = system.core
    core.create_namespaced_pod("default", pod_body("mover"))
    wait_for(lambda: network_of(system, "default", "mover") == CLUSTER_NET)
    core.patch_namespaced_pod("mover", "default", {"metadata": {"labels": {
        "opencontrail.org/name": "blue"}}})
    wait_for(lambda: network_of(system, "default", "mover") == [
        "default-domain", "k8s-default", "blue-vn"], what="moved to blue-vn")
    core.patch_namespaced_pod("mover", "default", {"metadata": {"labels": {
        "opencontrail.org/name": None}}})
    wait_for(lambda: network_of(system, "default", "mover") == CLUSTER_NET,
             what="back on cluster-network")
    core.create_namespaced_service("default", service_body(
        "shifty", {"app": "x"}, [{"name": "http", "port": 80}]))
    svc, _ = wait_for(lambda: lb_state(system, "default", "shifty"))
    core.patch_namespaced_service("shifty", "default", {"spec": {
        "type": "ExternalName", "externalName": "example.com", "clusterIP": None,
        "selector": None}})
    wait_for(lambda: not system.contrail.list("loadbalancer", obj_uuids=[svc.metadata.uid]),
             what="ExternalName: loadbalancer removed")
    system.stack.wait_idle()
    assert system.stack.context.failures.all() == []

"""The simulated node layer end to end: scheduler, vrouters, CNI against the Contrail emulator,
EndpointSlice and Endpoints controllers."""

import shutil
import subprocess
import time

import httpx
import kubernetes.client as k8s
import pytest

from tests.emulators.kube.helpers import pod, wait_for

PROJECT = ["default-domain", "k8s-default"]
VN = [*PROJECT, "pod-network"]


def make_pod_network(contrail: httpx.Client) -> None:
    for kind, body in [
        ("project", {"fq_name": PROJECT, "parent_type": "domain"}),
        ("network-ipam", {"fq_name": [*PROJECT, "pod-ipam"], "parent_type": "project"}),
        ("virtual-network", {"fq_name": VN, "parent_type": "project", "network_ipam_refs": [
            {"to": [*PROJECT, "pod-ipam"], "attr": {"ipam_subnets": [
                {"subnet": {"ip_prefix": "10.32.0.0", "ip_prefix_len": 12}}]}}]}),
    ]:
        contrail.post(f"/{kind}s", json={kind: body}).raise_for_status()


def make_port(contrail: httpx.Client, pod_name: str, pod_uid: str) -> str:
    """What ckm does for a pod: VM (uuid = pod uid), VMI, instance-ip. Returns the address."""
    vmi = [*PROJECT, f"{pod_name}__{pod_uid}"]
    for kind, body in [
        ("virtual-machine", {"fq_name": [f"c__default__{pod_name}"], "uuid": pod_uid}),
        ("virtual-machine-interface", {
            "fq_name": vmi, "parent_type": "project", "virtual_network_refs": [{"to": VN}],
            "virtual_machine_refs": [{"to": [f"c__default__{pod_name}"]}]}),
    ]:
        contrail.post(f"/{kind}s", json={kind: body}).raise_for_status()
    created = contrail.post("/instance-ips", json={"instance-ip": {
        "fq_name": [f"{pod_name}-iip"], "virtual_network_refs": [{"to": VN}],
        "virtual_machine_interface_refs": [{"to": vmi}]}})
    created.raise_for_status()
    iip = contrail.get(f"/instance-ip/{created.json()['instance-ip']['uuid']}").json()
    return iip["instance-ip"]["instance_ip_address"]


def service(name: str, target_port) -> dict:
    return {"metadata": {"name": name}, "spec": {
        "selector": {"app": name}, "ports": [{"name": "http", "port": 80,
                                              "targetPort": target_port}]}}


def slice_of(discovery, name: str):
    slices = discovery.list_namespaced_endpoint_slice(
        "default", label_selector=f"kubernetes.io/service-name={name}").items
    return slices[0] if len(slices) == 1 else None


@pytest.fixture
def contrail(contrail_url):
    with httpx.Client(base_url=contrail_url, timeout=5) as client:
        yield client


def test_pod_gets_its_contrail_address_only_once_the_port_exists(
        contrail, contrail_url, kube_emulator_factory):
    emulator = kube_emulator_factory(contrail_url=contrail_url, nodes=2, cni_poll_interval=0.05)
    api = emulator.api_client()
    core, discovery = k8s.CoreV1Api(api), k8s.DiscoveryV1Api(api)

    routers = wait_for(lambda: contrail.get("/virtual-routers").json()["virtual-routers"]
                       if len(contrail.get("/virtual-routers").json()["virtual-routers"]) == 2
                       else None)
    assert sorted(r["fq_name"][1] for r in routers) == ["node-1", "node-2"]
    router = contrail.get(f"/virtual-router/{routers[0]['uuid']}").json()["virtual-router"]
    assert router["virtual_router_ip_address"] in ("172.18.0.2", "172.18.0.3")
    nodes = core.list_node().items
    assert [n.metadata.name for n in nodes] == ["node-1", "node-2"]
    assert nodes[0].status.conditions[0].type == "Ready"
    leases = k8s.CoordinationV1Api(api).list_namespaced_lease("kube-node-lease").items
    assert [lease.spec.holder_identity for lease in leases] == ["node-1", "node-2"]

    make_pod_network(contrail)
    core.create_namespaced_service("default", service("web", "http"))
    body = pod("web-1", {"app": "web"})
    body["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
    created = core.create_namespaced_pod("default", body)
    scheduled = wait_for(lambda: core.read_namespaced_pod("web-1", "default").spec.node_name)
    assert scheduled == "node-1"
    time.sleep(0.4)  # the CNI keeps waiting: no port in Contrail yet
    waiting = core.read_namespaced_pod("web-1", "default")
    assert waiting.status.phase == "Pending" and waiting.status.pod_ip is None
    placeholder = wait_for(lambda: slice_of(discovery, "web"))
    assert placeholder.endpoints == []

    address = make_port(contrail, "web-1", created.metadata.uid)
    running = wait_for(lambda: (p := core.read_namespaced_pod("web-1", "default")).status.phase
                       == "Running" and p)
    assert running.status.pod_ip == address and running.status.pod_i_ps[0].ip == address
    assert running.status.host_ip == "172.18.0.2"
    ready = {c.type: c.status for c in running.status.conditions}
    assert ready["Ready"] == "True" and ready["ContainersReady"] == "True"

    # The EndpointSlice (and Endpoints) follow, with the named targetPort resolved.
    endpoints = wait_for(lambda: (s := slice_of(discovery, "web")) and s.endpoints and s)
    assert [(e.addresses, e.conditions.ready, e.target_ref.name, e.node_name)
            for e in endpoints.endpoints] == [([address], True, "web-1", "node-1")]
    assert [(p.name, p.port, p.protocol) for p in endpoints.ports] == [("http", 8080, "TCP")]
    legacy = core.read_namespaced_endpoints("web", "default")
    assert [a.ip for a in legacy.subsets[0].addresses] == [address]

    # kubectl shows the Contrail address, as in the design doc.
    if shutil.which("kubectl"):
        out = subprocess.run(["kubectl", "--kubeconfig", str(emulator.kubeconfig), "get", "pods",
                              "-o", "wide"], capture_output=True, text=True, check=True).stdout
        assert out.splitlines()[1].split()[:7] == [
            "web-1", "1/1", "Running", "0", out.splitlines()[1].split()[4], address, "node-1"]

    # Readiness drives conditions.ready; deletion empties the slice.
    core.patch_namespaced_pod_status("web-1", "default", {"status": {"conditions": [
        {"type": "Ready", "status": "False"}]}})
    wait_for(lambda: slice_of(discovery, "web").endpoints[0].conditions.ready is False)
    legacy = wait_for(lambda: (e := core.read_namespaced_endpoints("web", "default")).subsets
                      and e.subsets[0].not_ready_addresses and e)
    assert legacy.subsets[0].addresses is None
    core.delete_namespaced_pod("web-1", "default")
    wait_for(lambda: slice_of(discovery, "web").endpoints == [])


def test_host_network_pods_get_the_node_address(contrail_url, kube_emulator_factory):
    emulator = kube_emulator_factory(contrail_url=contrail_url, nodes=1)
    core = k8s.CoreV1Api(emulator.api_client())
    core.create_namespaced_pod("default", pod("agent", hostNetwork=True))
    running = wait_for(lambda: (p := core.read_namespaced_pod("agent", "default")).status.pod_ip
                       and p)
    assert running.status.pod_ip == running.status.host_ip == "172.18.0.2"


def test_without_contrail_pods_get_local_addresses(kube_emulator_factory):
    emulator = kube_emulator_factory(nodes=3)
    api = emulator.api_client()
    core, discovery = k8s.CoreV1Api(api), k8s.DiscoveryV1Api(api)
    core.create_namespaced_service("default", service("web", 80))
    for n in range(3):
        core.create_namespaced_pod("default", pod(f"web-{n}", {"app": "web"}))
    pods = wait_for(lambda: (items := core.list_namespaced_pod("default").items)
                    and all(p.status.phase == "Running" for p in items) and items)
    assert [p.spec.node_name for p in pods] == ["node-1", "node-2", "node-3"]
    assert [p.status.pod_ip for p in pods] == ["10.244.0.1", "10.244.0.2", "10.244.0.3"]
    found = wait_for(lambda: (s := slice_of(discovery, "web")) and len(s.endpoints) == 3 and s)
    assert sorted(e.addresses[0] for e in found.endpoints) == [p.status.pod_ip for p in pods]
    # Changing the selector moves endpoints; removing it leaves the slices alone.
    core.patch_namespaced_service("web", "default", {"spec": {"selector": {"app": "none"}}})
    wait_for(lambda: slice_of(discovery, "web").endpoints == [])
    core.delete_namespaced_service("web", "default")
    wait_for(lambda: slice_of(discovery, "web") is None)
    with pytest.raises(k8s.ApiException):
        core.read_namespaced_endpoints("web", "default")


def test_services_without_selector_are_left_alone(kube_emulator_factory):
    emulator = kube_emulator_factory(nodes=1)
    api = emulator.api_client()
    core, discovery = k8s.CoreV1Api(api), k8s.DiscoveryV1Api(api)
    core.create_namespaced_service("default", {"metadata": {"name": "external"},
                                               "spec": {"ports": [{"port": 5432}]}})
    core.create_namespaced_endpoints("default", {"metadata": {"name": "external"}, "subsets": [
        {"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]})
    core.create_namespaced_service("default", service("web", 80))
    wait_for(lambda: slice_of(discovery, "web"))
    core.create_namespaced_pod("default", pod("web-0", {"app": "web"}))
    wait_for(lambda: slice_of(discovery, "web").endpoints)
    assert slice_of(discovery, "external") is None
    kept = core.read_namespaced_endpoints("external", "default")
    assert kept.subsets[0].addresses[0].ip == "192.0.2.10"


def test_node_selector_is_honoured(kube_emulator_factory):
    emulator = kube_emulator_factory(nodes=2)
    core = k8s.CoreV1Api(emulator.api_client())
    core.create_namespaced_pod("default", pod("pinned", nodeSelector={
        "kubernetes.io/hostname": "node-2"}))
    core.create_namespaced_pod("default", pod("nowhere", nodeSelector={"disk": "ssd"}))
    assert wait_for(lambda: core.read_namespaced_pod("pinned", "default").spec.node_name) == (
        "node-2")
    time.sleep(0.2)
    assert core.read_namespaced_pod("nowhere", "default").spec.node_name is None

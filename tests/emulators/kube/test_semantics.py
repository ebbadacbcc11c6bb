"""Kind-specific server behaviour: namespaces, Services, NetworkPolicies, EndpointSlices."""

import json

import kubernetes.client as k8s
import pytest
from kubernetes import watch
from kubernetes.client.rest import ApiException

from tests.emulators.kube.helpers import namespace, pod, wait_for


def service(name: str, **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}], **spec}}


def test_namespace_gets_its_name_label_and_phase(core):
    created = core.create_namespace(namespace("team-a", {"team": "a"}))
    assert created.metadata.labels == {"team": "a", "kubernetes.io/metadata.name": "team-a"}
    assert created.status.phase == "Active"
    replaced = core.patch_namespace("team-a", {"metadata": {"labels": None}})
    assert replaced.metadata.labels == {"kubernetes.io/metadata.name": "team-a"}


def test_namespace_deletion_removes_its_objects(core, networking):
    core.create_namespace(namespace("doomed"))
    core.create_namespaced_pod("doomed", pod("p"))
    core.create_namespaced_service("doomed", service("s"))
    networking.create_namespaced_network_policy(
        "doomed", {"metadata": {"name": "np"}, "spec": {"podSelector": {}}})
    core.create_namespaced_pod("default", pod("survivor"))
    rv = core.list_namespace().metadata.resource_version
    # The real server answers with the Namespace, Terminating (the client's model says Status).
    deleted = json.loads(core.delete_namespace("doomed", _preload_content=False).data)
    assert deleted["kind"] == "Namespace" and deleted["status"]["phase"] == "Terminating"
    assert core.list_namespaced_pod("doomed").items == []
    assert core.list_namespaced_service("doomed").items == []
    assert networking.list_namespaced_network_policy("doomed").items == []
    assert [p.metadata.name for p in core.list_pod_for_all_namespaces().items] == ["survivor"]
    with pytest.raises(ApiException):
        core.read_namespace("doomed")
    seen = [(e["type"], e["raw_object"]["metadata"]["name"]) for e in watch.Watch().stream(
        core.list_pod_for_all_namespaces, resource_version=rv, timeout_seconds=1)]
    assert seen == [("DELETED", "p")]


def test_terminating_namespace_refuses_new_objects(kube_emulator_factory):
    emulator = kube_emulator_factory(namespace_grace=0.5)
    core = k8s.CoreV1Api(emulator.api_client())
    core.create_namespace(namespace("slow"))
    core.create_namespaced_pod("slow", pod("p"))
    core.delete_namespace("slow")
    assert core.read_namespace("slow").status.phase == "Terminating"
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod("slow", pod("q"))
    assert caught.value.status == 403
    assert "because it is being terminated" in json.loads(caught.value.body)["message"]
    wait_for(lambda: "slow" not in {n.metadata.name for n in core.list_namespace().items})
    assert core.list_namespaced_pod("slow").items == []


def test_cluster_ip_allocation(core):
    first = core.create_namespaced_service("default", service("a"))
    second = core.create_namespaced_service("default", service("b"))
    assert first.spec.cluster_ip == "10.96.0.2"  # .1 is default/kubernetes
    assert second.spec.cluster_ip == "10.96.0.3"
    assert first.spec.cluster_i_ps == ["10.96.0.2"]
    assert first.spec.ip_families == ["IPv4"] and first.spec.type == "ClusterIP"
    assert first.spec.ports[0].target_port == 80 and first.spec.ports[0].protocol == "TCP"
    requested = core.create_namespaced_service("default", service("c", clusterIP="10.96.5.5"))
    assert requested.spec.cluster_ip == "10.96.5.5"
    headless = core.create_namespaced_service("default", service("h", clusterIP="None"))
    assert headless.spec.cluster_ip == "None"
    external = core.create_namespaced_service("default", {
        "metadata": {"name": "ext"}, "spec": {"type": "ExternalName",
                                              "externalName": "example.com"}})
    assert external.spec.cluster_ip is None
    # Freed on delete, then reused.
    core.delete_namespaced_service("a", "default")
    assert core.create_namespaced_service("default", service("d")).spec.cluster_ip == "10.96.0.2"


@pytest.mark.parametrize(("ip", "words"), [
    ("10.96.0.1", "provided IP is already allocated"),
    ("192.168.0.1", "provided IP is not in the valid range"),
])
def test_cluster_ip_refusals_are_422(core, ip, words):
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service("default", service("bad", clusterIP=ip))
    assert caught.value.status == 422
    status = json.loads(caught.value.body)
    assert status["reason"] == "Invalid" and words in status["message"]


def test_cluster_ip_survives_updates_and_cannot_change(core):
    created = core.create_namespaced_service("default", service("s", selector={"app": "x"}))
    created.spec.cluster_ip = None
    created.spec.cluster_i_ps = None
    updated = core.replace_namespaced_service("s", "default", created)
    assert updated.spec.cluster_ip == "10.96.0.2"
    with pytest.raises(ApiException) as caught:
        core.patch_namespaced_service("s", "default", {"spec": {"clusterIP": "10.96.9.9"}})
    assert caught.value.status == 422


def test_node_ports(core):
    svc = core.create_namespaced_service("default", service("np", type="NodePort"))
    assert svc.spec.ports[0].node_port == 30000
    assert svc.spec.external_traffic_policy == "Cluster"


@pytest.mark.parametrize(("spec", "expected"), [
    ({"podSelector": {}}, ["Ingress"]),
    ({"podSelector": {}, "ingress": [{}]}, ["Ingress"]),
    ({"podSelector": {}, "egress": [{}]}, ["Ingress", "Egress"]),
    ({"podSelector": {}, "policyTypes": ["Egress"]}, ["Egress"]),
])
def test_network_policy_types_default_as_the_api_server(networking, spec, expected):
    created = networking.create_namespaced_network_policy(
        "default", {"metadata": {"name": "np"}, "spec": spec})
    assert created.spec.policy_types == expected


def test_network_policy_port_protocol_defaults_to_tcp(networking):
    created = networking.create_namespaced_network_policy("default", {
        "metadata": {"name": "np"},
        "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}})
    assert created.spec.ingress[0].ports[0].protocol == "TCP"


def test_endpoint_slice_and_ingress_class(kube_api):
    discovery = k8s.DiscoveryV1Api(kube_api)
    created = discovery.create_namespaced_endpoint_slice("default", {
        "metadata": {"name": "s-abc", "labels": {"kubernetes.io/service-name": "s"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 80}],
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}]})
    assert created.ports[0].protocol == "TCP"
    listed = discovery.list_endpoint_slice_for_all_namespaces(
        label_selector="kubernetes.io/service-name=s")
    assert [s.metadata.name for s in listed.items] == ["s-abc"]
    networking = k8s.NetworkingV1Api(kube_api)
    networking.create_ingress_class({"metadata": {"name": "opencontrail"},
                                     "spec": {"controller": "opencontrail.org/ingress"}})
    assert networking.read_ingress_class("opencontrail").spec.controller == (
        "opencontrail.org/ingress")


def test_pod_spec_is_immutable_but_for_images(core):
    core.create_namespaced_pod("default", pod("p"))
    core.patch_namespaced_pod("p", "default", {"spec": {"containers": [
        {"name": "app", "image": "nginx:1.28"}]}})
    with pytest.raises(ApiException) as caught:
        core.patch_namespaced_pod("p", "default", {"spec": {"hostNetwork": True}})
    assert caught.value.status == 422


def test_binding_subresource(core):
    core.create_namespaced_pod("default", pod("p"))
    core.create_namespaced_pod_binding("p", "default", {
        "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}},
        _preload_content=False)
    bound = core.read_namespaced_pod("p", "default")
    assert bound.spec.node_name == "node-1"
    assert [c.type for c in bound.status.conditions] == ["PodScheduled"]

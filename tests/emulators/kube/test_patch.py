"""PATCH in its three formats, through the client and as pure functions."""

import pytest
from kubernetes.client.rest import ApiException

from emulators.kube.patching import json_patch, merge_patch, strategic_merge_patch
from tests.emulators.kube.helpers import pod


def two_containers() -> dict:
    body = pod("p", {"app": "web", "tier": "front"})
    body["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1",
                                       "ports": [{"containerPort": 9901}]})
    return body


def test_strategic_merge_is_the_clients_default(core):
    core.create_namespaced_pod("default", two_containers())
    # A dict body goes out as application/strategic-merge-patch+json: containers merge by name.
    patched = core.patch_namespaced_pod("p", "default", {
        "metadata": {"labels": {"tier": None, "color": "blue"}},
        "spec": {"containers": [{"name": "sidecar", "image": "envoy:2"}]}})
    assert patched.metadata.labels == {"app": "web", "color": "blue"}
    assert [(c.name, c.image) for c in patched.spec.containers] == [
        ("app", "nginx:1.27"), ("sidecar", "envoy:2")]
    assert patched.spec.containers[1].ports[0].container_port == 9901


def test_merge_patch_replaces_lists(core):
    core.create_namespaced_pod("default", two_containers())
    patched = core.api_client.call_api(
        "/api/v1/namespaces/{namespace}/pods/{name}", "PATCH",
        path_params={"namespace": "default", "name": "p"},
        header_params={"Content-Type": "application/merge-patch+json",
                       "Accept": "application/json"},
        body={"metadata": {"annotations": {"a": "1"}}}, response_type="V1Pod",
        _return_http_data_only=True)
    assert patched.metadata.annotations == {"a": "1"}
    assert len(patched.spec.containers) == 2


def test_json_patch(core):
    core.create_namespaced_pod("default", pod("p", {"app": "web"}))
    patched = core.patch_namespaced_pod("p", "default", [
        {"op": "add", "path": "/metadata/labels/extra", "value": "yes"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:1.28"},
        {"op": "test", "path": "/metadata/labels/app", "value": "web"}])
    assert patched.metadata.labels == {"app": "web", "extra": "yes"}
    assert patched.spec.containers[0].image == "nginx:1.28"
    with pytest.raises(ApiException) as caught:
        core.patch_namespaced_pod("p", "default", [
            {"op": "test", "path": "/metadata/labels/app", "value": "db"}])
    assert caught.value.status == 422


def test_patch_with_stale_resource_version_conflicts(core):
    created = core.create_namespaced_pod("default", pod("p"))
    core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"a": "1"}}})
    with pytest.raises(ApiException) as caught:
        core.patch_namespaced_pod("p", "default", {"metadata": {
            "resourceVersion": created.metadata.resource_version, "labels": {"a": "2"}}})
    assert caught.value.status == 409


def test_service_ports_merge_by_port(core):
    core.create_namespaced_service("default", {"metadata": {"name": "s"}, "spec": {
        "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}})
    patched = core.patch_namespaced_service("s", "default", {
        "spec": {"ports": [{"port": 443, "targetPort": 8443}, {"port": 80, "$patch": "delete"}]}})
    assert [(p.port, p.target_port) for p in patched.spec.ports] == [(443, 8443)]


# --- pure functions ---------------------------------------------------------------------

def test_merge_patch_rfc7386():
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1, 2]}, {"a": {"b": None, "d": 3},
                                                              "l": [3]}) == {
        "a": {"c": 2, "d": 3}, "l": [3]}


def test_strategic_directives_kubectl_sends():
    original = {"metadata": {"finalizers": ["a"]}, "spec": {"containers": [
        {"name": "x", "image": "1", "env": [{"name": "A", "value": "1"}]},
        {"name": "y", "image": "1"}]}}
    patch = {
        "metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]},
        "spec": {"$setElementOrder/containers": [{"name": "y"}, {"name": "x"}],
                 "containers": [{"name": "x", "env": [{"name": "B", "value": "2"}]}]}}
    result = strategic_merge_patch(original, patch, "Pod")
    assert result["metadata"]["finalizers"] == ["b"]
    assert [c["name"] for c in result["spec"]["containers"]] == ["y", "x"]
    assert result["spec"]["containers"][1]["env"] == [{"name": "A", "value": "1"},
                                                      {"name": "B", "value": "2"}]


def test_strategic_replace_and_retain_keys():
    original = {"spec": {"containers": [{"name": "x"}], "volumes": [{"name": "v", "emptyDir": {}}]}}
    replaced = strategic_merge_patch(original, {"spec": {"containers": [
        {"name": "z"}, {"$patch": "replace"}]}}, "Pod")
    assert replaced["spec"]["containers"] == [{"name": "z"}]
    retained = strategic_merge_patch(original, {"spec": {"volumes": [
        {"name": "v", "hostPath": {"path": "/x"}, "$retainKeys": ["name", "hostPath"]}]}}, "Pod")
    assert retained["spec"]["volumes"] == [{"name": "v", "hostPath": {"path": "/x"}}]


def test_strategic_atomic_lists_are_replaced():
    original = {"spec": {"ingress": [{"from": [{"podSelector": {}}]}]}}
    result = strategic_merge_patch(original, {"spec": {"ingress": [{}]}}, "NetworkPolicy")
    assert result["spec"]["ingress"] == [{}]


def test_json_patch_move_copy_remove():
    doc = {"a": {"b": 1}, "l": [1, 2, 3]}
    result = json_patch(doc, [{"op": "copy", "from": "/a/b", "path": "/c"},
                              {"op": "move", "from": "/l/0", "path": "/l/-"},
                              {"op": "remove", "path": "/a"}])
    assert result == {"c": 1, "l": [2, 3, 1]}
    assert doc == {"a": {"b": 1}, "l": [1, 2, 3]}

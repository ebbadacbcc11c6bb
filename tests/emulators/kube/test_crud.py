"""Create / get / update / delete through the official Python client."""

import json
import uuid

import pytest
from kubernetes.client import CoordinationV1Api
from kubernetes.client.rest import ApiException

from tests.emulators.kube.helpers import namespace, pod


def status_of(error: ApiException) -> dict:
    return json.loads(error.body)


def test_create_sets_server_metadata(core):
    created = core.create_namespaced_pod("default", pod("p1", {"app": "web"}))
    meta = created.metadata
    assert uuid.UUID(meta.uid).version == 4
    assert int(meta.resource_version) > 0
    assert meta.creation_timestamp is not None
    assert meta.generation == 1
    assert created.status.phase == "Pending"
    assert created.spec.containers[0].image_pull_policy == "IfNotPresent"
    fetched = core.read_namespaced_pod("p1", "default")
    assert fetched.metadata.uid == meta.uid
    assert fetched.metadata.labels == {"app": "web"}


def test_resource_versions_come_from_one_counter(core, networking):
    a = core.create_namespace(namespace("rv-a"))
    b = networking.create_namespaced_network_policy(
        "rv-a", {"metadata": {"name": "np"}, "spec": {"podSelector": {}}})
    c = core.create_namespaced_pod("rv-a", pod("p"))
    versions = [int(o.metadata.resource_version) for o in (a, b, c)]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_already_exists_is_a_status(core):
    core.create_namespaced_pod("default", pod("dup"))
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod("default", pod("dup"))
    assert caught.value.status == 409
    status = status_of(caught.value)
    assert status["kind"] == "Status" and status["status"] == "Failure"
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'pods "dup" already exists'
    assert status["details"] == {"name": "dup", "kind": "pods"}


def test_not_found_is_a_status(core, networking):
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod("missing", "default")
    assert caught.value.status == 404
    assert status_of(caught.value)["reason"] == "NotFound"
    with pytest.raises(ApiException) as caught:
        networking.read_namespaced_ingress("missing", "default")
    assert status_of(caught.value)["message"] == (
        'ingresses.networking.k8s.io "missing" not found')
    assert status_of(caught.value)["details"]["group"] == "networking.k8s.io"


def test_create_in_missing_namespace_is_404(core):
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod("nowhere", pod("p"))
    assert caught.value.status == 404
    assert status_of(caught.value)["message"] == 'namespaces "nowhere" not found'


def test_generate_name(core):
    body = pod("")
    body["metadata"] = {"generateName": "worker-"}
    created = core.create_namespaced_pod("default", body)
    assert created.metadata.name.startswith("worker-") and len(created.metadata.name) == 12


def test_invalid_name_is_422(core):
    with pytest.raises(ApiException) as caught:
        core.create_namespace(namespace("Not_Valid"))
    assert caught.value.status == 422
    assert status_of(caught.value)["reason"] == "Invalid"


def test_stale_update_conflicts(core):
    created = core.create_namespaced_pod("default", pod("p"))
    created.metadata.labels = {"v": "1"}
    updated = core.replace_namespaced_pod("p", "default", created)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    created.metadata.labels = {"v": "2"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_pod("p", "default", created)
    assert caught.value.status == 409
    status = status_of(caught.value)
    assert status["reason"] == "Conflict"
    assert status["message"].startswith('Operation cannot be fulfilled on pods "p": '
                                        "the object has been modified")


def test_noop_update_keeps_resource_version(core):
    created = core.create_namespaced_pod("default", pod("p"))
    again = core.replace_namespaced_pod("p", "default", created)
    assert again.metadata.resource_version == created.metadata.resource_version


def test_generation_tracks_spec_only(networking):
    body = {"metadata": {"name": "np"}, "spec": {"podSelector": {}}}
    created = networking.create_namespaced_network_policy("default", body)
    labelled = networking.patch_namespaced_network_policy(
        "np", "default", {"metadata": {"labels": {"a": "b"}}})
    assert labelled.metadata.generation == 1
    changed = networking.patch_namespaced_network_policy(
        "np", "default", {"spec": {"podSelector": {"matchLabels": {"app": "x"}}}})
    assert changed.metadata.generation == 2
    assert int(changed.metadata.resource_version) > int(created.metadata.resource_version)


def test_status_subresource(core):
    core.create_namespaced_pod("default", pod("p"))
    # The main resource ignores status ...
    core.patch_namespaced_pod("p", "default", {"status": {"phase": "Running"}})
    assert core.read_namespaced_pod("p", "default").status.phase == "Pending"
    # ... the status subresource changes only status.
    patched = core.patch_namespaced_pod_status(
        "p", "default", {"status": {"phase": "Running", "podIP": "10.0.0.5"},
                         "metadata": {"labels": {"ignored": "yes"}}})
    assert patched.status.phase == "Running" and patched.status.pod_ip == "10.0.0.5"
    assert not (patched.metadata.labels or {}).get("ignored")


def test_delete_answers_object_or_status_as_the_real_server(core, networking):
    core.create_namespaced_pod("default", pod("p"))
    deleted = core.delete_namespaced_pod("p", "default")
    assert deleted.metadata.name == "p"
    with pytest.raises(ApiException):
        core.read_namespaced_pod("p", "default")
    core.create_namespaced_service("default", {"metadata": {"name": "s"},
                                               "spec": {"ports": [{"port": 80}]}})
    assert core.delete_namespaced_service("s", "default").spec.cluster_ip
    networking.create_namespaced_network_policy(
        "default", {"metadata": {"name": "np"}, "spec": {"podSelector": {}}})
    status = networking.delete_namespaced_network_policy("np", "default")
    assert status.status == "Success" and status.details.name == "np"


def test_finalizers_hold_deletion(core):
    body = pod("p")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_pod("default", body)
    core.delete_namespaced_pod("p", "default")
    held = core.read_namespaced_pod("p", "default")
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_pod("p", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod("p", "default")
    assert caught.value.status == 404


def test_lease_crud(kube_api):
    leases = CoordinationV1Api(kube_api)
    body = {"metadata": {"name": "ckm-watcher"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    created = leases.create_namespaced_lease("kube-system", body)
    created.spec.holder_identity = "b"
    updated = leases.replace_namespaced_lease("ckm-watcher", "kube-system", created)
    assert updated.spec.holder_identity == "b"
    created.spec.holder_identity = "c"
    with pytest.raises(ApiException) as caught:  # the loser of a leader race
        leases.replace_namespaced_lease("ckm-watcher", "kube-system", created)
    assert caught.value.status == 409


def test_cluster_scoped_and_all_namespaces_urls(core):
    core.create_namespace(namespace("team-a"))
    core.create_namespaced_pod("team-a", pod("a"))
    core.create_namespaced_pod("default", pod("b"))
    names = [(p.metadata.namespace, p.metadata.name)
             for p in core.list_pod_for_all_namespaces().items]
    assert names == [("default", "b"), ("team-a", "a")]
    assert {"default", "kube-system", "team-a"} <= {
        n.metadata.name for n in core.list_namespace().items}


def test_a_body_in_a_format_it_does_not_speak_is_415_not_a_decoding_error(kube_emulator):
    """kubectl's generators send protobuf: the answer says the format is unknown, as an API
    server that does not speak it would, rather than failing to parse it as JSON."""
    import httpx

    answer = httpx.post(f"{kube_emulator.url}/api/v1/namespaces", content=b"k8s\x00\x0a\x0f",
                        headers={"Content-Type": "application/vnd.kubernetes.protobuf"})
    assert answer.status_code == 415
    body = answer.json()
    assert (body["kind"], body["reason"]) == ("Status", "UnsupportedMediaType")
    assert "application/vnd.kubernetes.protobuf" in body["message"]

"""The /_emulator control plane, fault knobs, discovery and the kubeconfig helper."""

import time

import httpx
import kubernetes.client as k8s
import kubernetes.config
import kubernetes.watch
import pytest
import urllib3
from kubernetes.client.rest import ApiException

from tests.emulators.kube.helpers import pod
from tests.helpers import wait_for


def test_counters_by_verb_and_resource(core, kube_emulator):
    kube_emulator.admin("POST", "counters/reset")
    core.create_namespaced_pod("default", pod("p"))
    core.list_namespaced_pod("default")
    core.list_namespaced_pod("default")
    core.patch_namespaced_pod_status("p", "default", {"status": {"phase": "Running"}})
    counters = kube_emulator.admin("GET", "counters")
    assert counters == {"create": {"pods": 1}, "list": {"pods": 2},
                        "patch": {"pods/status": 1}}
    kube_emulator.admin("POST", "counters/reset")
    assert kube_emulator.admin("GET", "counters") == {}


def test_unavailable_answers_503_for_a_while(core, kube_emulator):
    kube_emulator.admin("POST", "faults", {"unavailable_for": 0.5})
    with pytest.raises(ApiException) as caught:
        core.list_namespace()
    assert caught.value.status == 503
    time.sleep(0.6)
    assert core.list_namespace().items


def test_unavailable_from_start_and_latency_options(kube_emulator_factory):
    # long enough that a loaded machine's start-up does not use it all up
    emulator = kube_emulator_factory(unavailable_for=3, latency=0.1)
    assert httpx.get(f"{emulator.url}/api/v1/namespaces").status_code == 503
    wait_for(lambda: httpx.get(f"{emulator.url}/api/v1/namespaces").status_code == 200,
             timeout=10, what="the end of the unavailability")
    started = time.monotonic()
    assert httpx.get(f"{emulator.url}/api/v1/namespaces").status_code == 200
    assert time.monotonic() - started >= 0.1
    emulator.admin("POST", "faults", {"latency": 0})
    assert emulator.admin("GET", "faults") == {"latency": 0.0, "unavailable_for": 0.0}


def test_outage_refuses_connections_and_keeps_state(kube_emulator):
    core = k8s.CoreV1Api(kube_emulator.api_client())
    core.create_namespaced_pod("default", pod("kept"))
    with kube_emulator.down():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{kube_emulator.url}/version")
        with pytest.raises(urllib3.exceptions.MaxRetryError):
            core.list_namespaced_pod("default", _request_timeout=1)
    assert [p.metadata.name for p in core.list_namespaced_pod("default").items] == ["kept"]


def test_reset_gives_a_fresh_cluster_with_growing_resource_versions(core, kube_emulator):
    core.create_namespace({"metadata": {"name": "left-over"}})
    before = int(core.list_namespace().metadata.resource_version)
    kube_emulator.admin("POST", "faults", {"latency": 0.05})
    kube_emulator.admin("POST", "reset")
    assert kube_emulator.admin("GET", "faults")["latency"] == 0
    listed = core.list_namespace()
    assert "left-over" not in {n.metadata.name for n in listed.items}
    assert int(listed.metadata.resource_version) > before
    with pytest.raises(ApiException) as caught:  # history from before the reset is gone
        list(kubernetes.watch.Watch().stream(core.list_namespace, resource_version=str(before),
                                      timeout_seconds=1))
    assert caught.value.status == 410


def test_state(kube_emulator):
    state = kube_emulator.admin("GET", "state")
    assert state["objects"]["namespaces"] == 4 and state["watches"] == 0


def test_discovery(kube_url):
    assert httpx.get(f"{kube_url}/version").json()["minor"] == "32"
    assert httpx.get(f"{kube_url}/api").json()["versions"] == ["v1"]
    groups = {g["name"] for g in httpx.get(f"{kube_url}/apis").json()["groups"]}
    assert groups == {"discovery.k8s.io", "networking.k8s.io", "coordination.k8s.io"}
    core = {r["name"]: r for r in httpx.get(f"{kube_url}/api/v1").json()["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["namespaced"]
    assert core["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert not core["namespaces"]["namespaced"] and core["namespaces"]["singularName"] == (
        "namespace")
    missing = httpx.get(f"{kube_url}/apis/apps/v1")
    assert missing.status_code == 404 and missing.json()["kind"] == "Status"


def test_kubeconfig_loads_in_the_python_client(kube_emulator):
    client = kubernetes.config.new_client_from_config(str(kube_emulator.kubeconfig))
    names = [n.metadata.name for n in k8s.CoreV1Api(client).list_namespace().items]
    assert "default" in names

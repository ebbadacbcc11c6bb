"""End to end: Kubernetes objects made with the official client -> watcher -> Redis -> Celery
workers -> Contrail emulator, checked in Contrail."""

from __future__ import annotations

import threading
import time

import kubernetes.client
import pytest

from tasks import naming
from watcher.main import Watcher
from workers.dispatch import enqueue
from workers.reconcilers import CLUSTER_KEY

pytestmark = pytest.mark.integration


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return value


@pytest.fixture
def system(celery_stack, kube_emulator_factory):
    kube = kube_emulator_factory()
    client = kube.api_client()
    stack = celery_stack
    stack.start_worker()

    def push(keys, urgent):
        enqueue(stack.app, stack.context.queue, keys, urgent=urgent)

    watcher = Watcher(kube.api_client(), stack.context.store, push,
                      bootstrap_keys=[CLUSTER_KEY], lease_seconds=2)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    yield stack, kubernetes.client.CoreV1Api(client)
    watcher.stop.set()
    thread.join(10)
    client.close()


def networks_of(stack, namespace):
    project = naming.object_uuid("k8s", "Namespace", namespace, "project")
    return sorted(n["fq_name"][-1] for n in stack.context.contrail.list(
        "virtual-network", parent_id=project))


def has_project(stack, namespace):
    try:
        stack.context.contrail.read(
            "project", naming.object_uuid("k8s", "Namespace", namespace, "project"))
    except Exception:
        return False
    return True


def test_namespaces_flow_from_kubernetes_to_contrail(system):
    stack, core = system
    wait_for(lambda: has_project(stack, "default") and has_project(stack, "kube-system"))
    cluster_vn = stack.context.contrail.fq_name_to_id(
        "virtual-network", ["default-domain", "k8s-default", "cluster-network"])
    assert cluster_vn
    core.create_namespace(kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(
        name="test-isolated-ns",
        annotations={"opencontrail.kubernetes.isolated": "true"})))
    wait_for(lambda: networks_of(stack, "test-isolated-ns") == ["test-isolated-ns-vn"])
    core.patch_namespace("test-isolated-ns", {"metadata": {"annotations": {
        "opencontrail.kubernetes.isolated": None}}})
    wait_for(lambda: networks_of(stack, "test-isolated-ns") == [])
    core.delete_namespace("test-isolated-ns")
    wait_for(lambda: not has_project(stack, "test-isolated-ns"))
    stack.wait_idle()
    assert stack.context.failures.all() == []


def test_bad_annotation_is_a_visible_failed_sync(system):
    stack, core = system
    core.create_namespace(kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(
        name="typo", annotations={"opencontrail.org/isolation": "ture"})))
    failure = wait_for(lambda: stack.context.failures.get("namespace/typo"))
    assert failure.permanent and "ture" in failure.error
    core.patch_namespace("typo", {"metadata": {"annotations": {
        "opencontrail.org/isolation": "true"}}})
    wait_for(lambda: networks_of(stack, "typo") == ["typo-vn"])
    assert stack.context.failures.get("namespace/typo") is None

"""End to end: Kubernetes objects made with the official client -> watcher -> Redis -> Celery
workers -> Contrail emulator, checked in Contrail."""

from __future__ import annotations

import kubernetes.client
import pytest

from tasks import naming
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.integration


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
    stack, core = system.stack, system.core
    wait_for(lambda: has_project(stack, "default") and has_project(stack, "kube-system"))
    wait_for(lambda: stack.context.contrail.list(
        "virtual-network", filters={"display_name": "cluster-network"}),
        what="cluster bootstrap")
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
    stack, core = system.stack, system.core
    core.create_namespace(kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(
        name="typo", annotations={"opencontrail.org/isolation": "ture"})))
    failure = wait_for(lambda: stack.context.failures.get("namespace/typo"))
    assert failure.permanent and "ture" in failure.error
    core.patch_namespace("typo", {"metadata": {"annotations": {
        "opencontrail.org/isolation": "true"}}})
    wait_for(lambda: networks_of(stack, "typo") == ["typo-vn"])
    # cleared when the run that made the network ends
    wait_for(lambda: stack.context.failures.get("namespace/typo") is None, what="recovered")

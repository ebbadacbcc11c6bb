"""The design document's walkthrough, checked with the reachability rules of the contract on
the live Contrail configuration: default mode, and an isolated namespace's behaviours (a)-(e)."""

from __future__ import annotations

import pytest

from contrail.snapshot import load
from tasks import naming
from tasks.reach import REACH_TYPES, Snapshot, evaluate
from tests.e2e.conftest import wait_for
from tests.e2e.test_translation import pod_body, running_ip

pytestmark = pytest.mark.integration


def vmi_of(system, ns, name):
    uid = system.core.read_namespaced_pod(name, ns).metadata.uid
    return naming.object_uuid("k8s", "Pod", uid, "vmi")


def test_walkthrough_default_mode_and_isolated_namespace(system):
    core = system.core
    core.create_namespace({"metadata": {"name": "test-isolated-ns", "annotations": {
        "opencontrail.kubernetes.isolated": "true"}}})
    web = [{"name": "http", "containerPort": 80}]
    pods = {("default", "example1"): {}, ("default", "example2"): {"app": "ex2"},
            ("test-isolated-ns", "example3"): {"app": "ex3"},
            ("test-isolated-ns", "example4"): {}}
    for (ns, name), labels in pods.items():
        core.create_namespaced_pod(ns, pod_body(name, labels, web))
    core.create_namespaced_service("default", {"metadata": {"name": "ex2"}, "spec": {
        "selector": {"app": "ex2"}, "ports": [{"name": "http", "port": 8080,
                                               "targetPort": "http"}]}})
    core.create_namespaced_service("test-isolated-ns", {"metadata": {"name": "ex3"}, "spec": {
        "selector": {"app": "ex3"}, "ports": [{"name": "http", "port": 8080,
                                               "targetPort": "http"}]}})
    ip = {key: wait_for(lambda k=key: running_ip(system, *k), what=f"{key} Running")
          for key in pods}
    vip = {ns: core.read_namespaced_service(svc, ns).spec.cluster_ip
           for ns, svc in (("default", "ex2"), ("test-isolated-ns", "ex3"))}
    system.stack.wait_idle()
    cluster_net = system.contrail.fq_name_to_id(
        "virtual-network", ["default-domain", "k8s-default", "cluster-network"])

    def reach(src, address, port=80):
        snap = Snapshot(load(system.contrail, REACH_TYPES))
        return evaluate(snap, vmi_of(system, *src), address, port, "tcp",
                        cluster_network=cluster_net)

    d1, d2 = ("default", "example1"), ("default", "example2")
    i3, i4 = ("test-isolated-ns", "example3"), ("test-isolated-ns", "example4")
    # default mode: every pod reaches every other pod of the cluster network
    assert reach(d1, ip[d2]).allowed
    # (a) pods of an isolated namespace reach each other
    assert reach(i3, ip[i4]).allowed
    # (b) pods of other namespaces do not reach them
    verdict = reach(d1, ip[i3])
    assert not verdict.allowed and "no network path" in verdict.reasons[0]
    # (c) isolated pods reach pods of other namespaces (egress floating IP)
    verdict = reach(i3, ip[d1])
    assert verdict.allowed and "egress floating IP" in verdict.path
    # (d) isolated pods reach every service
    assert reach(i4, vip["default"], 8080).allowed
    # (e) isolated pods are reached from other namespaces through their service IP
    verdict = reach(d1, vip["test-isolated-ns"], 8080)
    assert verdict.allowed and "service VIP" in verdict.path
    # and services are reachable from every pod, on their service port only
    for src in pods:
        assert reach(src, vip["default"], 8080).allowed
    assert not reach(d1, vip["default"], 9999).allowed

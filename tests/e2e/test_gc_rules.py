"""GC's rule for every owner kind ckm writes (issue 11, defect 2): on a live system with one
object of every kind, GC deletes nothing; and per owner kind, what GC does once the owner is
gone. App networks used to be deleted while their pods lived (owner kind `App` is not a
store kind, so the old rule read "gone")."""

from __future__ import annotations

import pytest

from contrail.ensure import annotations_of
from tasks.model import DELETE_ORDER
from tests.e2e.conftest import wait_for
from tests.e2e.test_translation import pod_body, running_ip
from workers.gc import HAND_OVER, KEEP, OWNER_RULES, collect_garbage, gc_verdict

pytestmark = pytest.mark.integration


def owned(system) -> list[tuple[str, dict, dict]]:
    """(type, object, owner annotations) of every Contrail object ckm wrote."""
    out = []
    for type_ in DELETE_ORDER:
        for item in system.contrail.list(type_, fields=["annotations"]):
            notes = annotations_of(item)
            if notes.get("owner") == "k8s":
                out.append((type_, item, notes))
    return out


def test_gc_keeps_everything_live_and_has_a_rule_for_every_owner_kind(system):
    core, net = system.core, system.net
    core.create_namespace({"metadata": {"name": "iso", "annotations": {
        "opencontrail.kubernetes.isolated": "true"}}})
    web = [{"name": "http", "containerPort": 80}]
    pods = {("default", "a1"): {"opencontrail.org/name": "shop", "app": "shop"},
            ("default", "a2"): {"role": "client"}, ("iso", "i1"): {"app": "shop"}}
    for (ns, name), labels in pods.items():
        core.create_namespaced_pod(ns, pod_body(name, labels, web))
    core.create_namespaced_service("default", {"metadata": {"name": "shop"}, "spec": {
        "selector": {"app": "shop"}, "ports": [{"name": "http", "port": 80,
                                                "targetPort": "http"}]}})
    net.create_namespaced_ingress("default", {"metadata": {"name": "in"}, "spec": {
        "defaultBackend": {"service": {"name": "shop", "port": {"number": 80}}}}})
    net.create_namespaced_network_policy("default", {"metadata": {"name": "np"}, "spec": {
        "podSelector": {"matchLabels": {"app": "shop"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}})
    for key in pods:
        wait_for(lambda k=key: running_ip(system, *k), what=f"{key} Running")
    system.stack.wait_idle(timeout=90)
    store = system.stack.context.store
    wait_for(store.complete, what="a complete store")

    objects = owned(system)
    kinds = {notes["kind"] for _, _, notes in objects}
    # one object of every owner kind ckm writes is here, and each kind has a rule
    assert kinds >= {"Cluster", "Namespace", "Pod", "App", "Service", "Ingress",
                     "NetworkPolicy", "NetworkPolicyPeer"}, kinds
    assert kinds <= set(OWNER_RULES), kinds - set(OWNER_RULES)

    handed = []
    deleted = collect_garbage(system.contrail, store, "k8s",
                              live_peers={k for _, _, n in objects
                                          if n["kind"] == "NetworkPolicyPeer"
                                          for k in [f"peer/{n['namespace']}/{n['name']}"
                                                    if n["namespace"] else f"peer/{n['name']}"]},
                              hand_over=lambda key, address: handed.append(key))
    assert deleted == [] and handed == []
    before = {item["uuid"] for _, item, _ in objects}
    assert before <= {item["uuid"] for _, item, _ in owned(system)}  # every one still there

    # per owner kind, once its owner is gone
    expected = {"Cluster": KEEP, "Namespace": "delete", "Pod": "delete", "Service": "delete",
                "Ingress": "delete", "NetworkPolicy": "delete", "App": HAND_OVER,
                "NetworkPolicyPeer": HAND_OVER, "SomethingNew": KEEP}
    for kind, verdict in expected.items():
        gone = {"owner": "k8s", "cluster": "k8s", "kind": kind, "namespace": "default",
                "name": "not-there", "k8s_uid": "no-such-uid"}
        assert gc_verdict(store, gone, live_peers=set(),
                          app_label="opencontrail.org/name")[0] == verdict, kind
    # a live owner with another uid is an older incarnation
    pod_uid = core.read_namespaced_pod("a1", "default").metadata.uid
    older = {"owner": "k8s", "cluster": "k8s", "kind": "Pod", "namespace": "default",
             "name": "a1", "k8s_uid": "an-older-uid"}
    assert gc_verdict(store, older, live_peers=set(), app_label="opencontrail.org/name")[0] \
        == "delete"
    assert gc_verdict(store, {**older, "k8s_uid": pod_uid}, live_peers=set(),
                      app_label="opencontrail.org/name")[0] == KEEP
    # an app network whose pods are all gone goes to its key, which decides under its lock
    assert gc_verdict(store, {"owner": "k8s", "cluster": "k8s", "kind": "App",
                              "namespace": "iso", "name": "shop"}, live_peers=set(),
                      app_label="opencontrail.org/name") == (HAND_OVER, "appnet/iso/shop")

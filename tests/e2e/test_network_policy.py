"""NetworkPolicy end to end: Kubernetes objects in the emulator -> ckm -> Contrail emulator ->
`ckm reach` verdicts, kept current as pods, labels, namespaces and policies change."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ckm.cli import app
from contrail.ensure import annotations_of
from tests.e2e.conftest import wait_for
from tests.e2e.test_translation import pod_body, running_ip

pytestmark = pytest.mark.integration


def reach(system, src, dst, port=80, protocol="tcp"):
    result = CliRunner().invoke(app, ["reach", src, dst, "--port", str(port), "--protocol",
                                      protocol, "--json"],
                                env={"CKM_CONTRAIL_URLS": system.stack.contrail_url})
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)["allowed"]


def converges(system, src, dst, allowed, port=80, what=""):
    """The verdict becomes `allowed` once ckm has caught up (and stays so when idle)."""
    wait_for(lambda: reach(system, src, dst, port) is allowed, timeout=30,
             what=what or f"{src} -> {dst}:{port} {'allowed' if allowed else 'denied'}")
    system.stack.wait_idle()
    assert reach(system, src, dst, port) is allowed


def policy(name, spec):
    return {"metadata": {"name": name}, "spec": spec}


@pytest.fixture
def cluster(system):
    core = system.core
    core.create_namespace({"metadata": {"name": "np"}})
    core.create_namespace({"metadata": {"name": "other"}})
    http = [{"name": "http", "containerPort": 8080}]
    for ns, name, labels in (("np", "a", {"app": "db"}), ("np", "b", {"app": "db"}),
                             ("np", "c", {"role": "frontend"}), ("np", "d", {}),
                             ("other", "e", {})):
        core.create_namespaced_pod(ns, pod_body(name, labels, http))
    for ns, name in (("np", "a"), ("np", "b"), ("np", "c"), ("np", "d"), ("other", "e")):
        wait_for(lambda n=name, s=ns: running_ip(system, s, n), what=f"{ns}/{name} Running")
    system.stack.wait_idle()
    return system


def test_selectors_ports_and_changes_are_followed(cluster):
    system, net, core = cluster, cluster.net, cluster.core
    assert reach(system, "np/c", "np/a")                       # no policy: default allow
    net.create_namespaced_network_policy("np", policy("db-from-frontend", {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
                     "ports": [{"port": 80}, {"port": "http"}]}]}))
    converges(system, "np/d", "np/a", False, what="unlabelled pod denied")
    assert reach(system, "np/c", "np/a", 80)
    assert reach(system, "np/c", "np/a", 8080)                 # named port "http" -> 8080
    assert not reach(system, "np/c", "np/a", 81)
    assert not reach(system, "other/e", "np/a")                # podSelector: own namespace
    assert reach(system, "np/a", "np/d")                       # d is not selected
    # relabel a pod: it joins the peer group, no rule changes
    core.patch_namespaced_pod("d", "np", {"metadata": {"labels": {"role": "frontend"}}})
    converges(system, "np/d", "np/a", True, what="relabelled pod allowed")
    # a namespaceSelector peer follows namespace labels
    net.create_namespaced_network_policy("np", policy("db-from-team-x", {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}}]}]}))
    system.stack.wait_idle()
    assert not reach(system, "other/e", "np/a")
    core.patch_namespace("other", {"metadata": {"labels": {"team": "x"}}})
    converges(system, "other/e", "np/a", True, what="namespace relabelled")
    # deleting the policies restores default allow
    net.delete_namespaced_network_policy("db-from-frontend", "np")
    net.delete_namespaced_network_policy("db-from-team-x", "np")
    converges(system, "np/b", "np/a", True, what="policies deleted")
    system.stack.wait_idle()
    groups = [g["fq_name"][-1] for g in system.contrail.list("security-group")]
    assert not [g for g in groups if "-np-" in g or "-peer-" in g]  # nothing left behind


def test_egress_deny_and_ip_block_except(cluster):
    system, net = cluster, cluster.net
    address_of_d = running_ip(system, "np", "d")
    net.create_namespaced_network_policy("np", policy("a-egress", {
        "podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.32.0.0/12",
                                        "except": [f"{address_of_d}/32"]}}]}]}))
    converges(system, "np/a", "np/d", False, what="egress to the excepted address denied")
    assert reach(system, "np/a", "np/c")                       # inside the block
    assert reach(system, "np/d", "np/a")                       # ingress not isolated
    net.create_namespaced_network_policy("np", policy("b-no-egress", {
        "podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Egress"],
        "egress": []}))
    system.stack.wait_idle()
    assert reach(system, "np/a", "np/c")                       # policies add up


def test_bad_policy_fails_alone(cluster):
    system, net = cluster, cluster.net
    net.create_namespaced_network_policy("np", policy("broken", {
        "podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]}))
    net.create_namespaced_network_policy("np", policy("fine", {
        "podSelector": {"matchLabels": {"app": "db"}}, "ingress": []}))
    converges(system, "np/c", "np/a", False, what="the good policy applied")
    failure = wait_for(lambda: system.stack.context.failures.get("policy/np/broken"))
    assert failure.permanent and "ipBlock" in failure.error
    events = wait_for(lambda: [e for e in system.core.list_namespaced_event("np").items
                               if e.involved_object.name == "broken"], what="an Event")
    assert "10.0.0.0/33" in events[0].message or "ipBlock" in events[0].message
    assert reach(system, "np/a", "np/c")                       # c not selected by 'fine'


def test_reach_matrix(cluster):
    result = CliRunner().invoke(app, ["reach", "--matrix", "np", "--port", "80", "--json"],
                                env={"CKM_CONTRAIL_URLS": cluster.stack.contrail_url})
    cells = json.loads(result.output)
    assert len(cells) == 12 and all(cells.values())


def peer_groups(system):
    return [g for g in system.contrail.list("security-group", fields=["annotations"])
            if "-peer-" in g["fq_name"][-1]]


def test_policies_with_the_same_peer_share_one_group(cluster):
    system, net = cluster, cluster.net
    frontend = {"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}
    net.create_namespaced_network_policy("np", policy("db-from-frontend", {
        "podSelector": {"matchLabels": {"app": "db"}}, "ingress": [frontend]}))
    net.create_namespaced_network_policy("np", policy("d-from-frontend", {
        "podSelector": {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"},
                                             {"key": "role", "operator": "DoesNotExist"}]},
        "ingress": [frontend]}))
    converges(system, "np/a", "np/d", False, what="d isolated")
    assert reach(system, "np/c", "np/d") and reach(system, "np/c", "np/a")
    shared = peer_groups(system)
    assert len(shared) == 1
    assert annotations_of(shared[0])["selector"] == "pods[role In frontend]ns[-]"
    # one of the two policies goes: the group stays for the other one
    net.delete_namespaced_network_policy("d-from-frontend", "np")
    converges(system, "np/a", "np/d", True, what="d open again")
    assert [g["uuid"] for g in peer_groups(system)] == [shared[0]["uuid"]]
    assert reach(system, "np/c", "np/a") and not reach(system, "np/d", "np/a")
    # the last one goes: so does the group, once no port carries it
    net.delete_namespaced_network_policy("db-from-frontend", "np")
    converges(system, "np/d", "np/a", True, what="a open again")
    wait_for(lambda: not peer_groups(system), what="the shared group removed")
    system.stack.wait_idle()
    assert system.stack.context.failures.all() == []


def test_a_malformed_update_keeps_the_last_good_version_in_force(cluster):
    system, net = cluster, cluster.net
    net.create_namespaced_network_policy("np", policy("guard", {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}]}))
    converges(system, "np/d", "np/a", False, what="guard applied")
    # a bad edit is a failed sync and changes nothing: a stays isolated
    net.patch_namespaced_network_policy("guard", "np", {"spec": {"ingress": [
        {"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]}})
    failure = wait_for(lambda: system.stack.context.failures.get("policy/np/guard"))
    assert failure.permanent and "ipBlock" in failure.error
    system.stack.wait_idle()
    assert not reach(system, "np/d", "np/a") and reach(system, "np/c", "np/a")
    # the fix selects and admits other pods: a, which only the last good version touched,
    # opens up
    net.patch_namespaced_network_policy("guard", "np", {"spec": {
        "podSelector": {"matchLabels": {"app": None, "role": "frontend"}},  # a merge patch
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "admin"}}}]}]}})
    converges(system, "np/d", "np/a", True, what="a no longer selected")
    assert not reach(system, "np/d", "np/c") and not reach(system, "np/a", "np/c")
    assert system.stack.context.failures.get("policy/np/guard") is None
    # deleted while malformed: the ports that followed the last good version are freed
    net.patch_namespaced_network_policy("guard", "np", {"spec": {"ingress": [
        {"ports": [{"port": "Not_A_Name"}]}]}})
    wait_for(lambda: system.stack.context.failures.get("policy/np/guard"), what="bad again")
    net.delete_namespaced_network_policy("guard", "np")
    converges(system, "np/d", "np/c", True, what="c open after the delete")
    wait_for(lambda: not [g for g in system.contrail.list("security-group")
                          if "-np-" in g["fq_name"][-1] or "-peer-" in g["fq_name"][-1]],
             what="the policy's groups and peer groups removed")

"""NetworkPolicy: the compiler's parsing and, as a property, its verdicts.

The property test builds random small clusters and policies, compiles them to security groups
and port group sets exactly as ckm writes them to Contrail, evaluates reachability on those
objects with the contract's rules (`tasks.reach`), and compares every verdict with an
independent, plain reading of the NetworkPolicy spec written here.
"""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from config.settings import Settings
from contrail.ensure import as_annotations
from tasks.outcomes import BadInput
from tasks.policy import (
    groups,
    parse_policy,
    peer_numbers,
    pod_groups,
    refs_of,
    shared_peers,
)
from tasks.reach import Snapshot, evaluate
from tasks.security import allow_all_egress, allow_all_ingress
from tasks.selectors import parse

SETTINGS = Settings()


# --- parsing --------------------------------------------------------------------------------
def test_selectors_support_every_operator_anded_with_match_labels():
    selector = parse({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "env", "operator": "NotIn", "values": ["prod"]},
        {"key": "team", "operator": "Exists"},
        {"key": "legacy", "operator": "DoesNotExist"}]}, "s")
    assert selector.matches({"app": "web", "tier": "b", "team": "x"})
    assert selector.matches({"app": "web", "tier": "a", "team": "x", "env": "dev"})
    assert not selector.matches({"app": "web", "tier": "c", "team": "x"})
    assert not selector.matches({"app": "web", "tier": "a", "team": "x", "env": "prod"})
    assert not selector.matches({"app": "web", "tier": "a"})
    assert not selector.matches({"app": "web", "tier": "a", "team": "x", "legacy": "1"})
    assert not selector.matches({"app": "db", "tier": "a", "team": "x"})
    assert parse({}, "s").matches({"anything": "x"})


def test_policy_types_default_like_the_api_server():
    ingress_only = parse_policy("ns", "p", {"spec": {"podSelector": {}}})
    assert ingress_only.ingress == () and ingress_only.egress is None
    both = parse_policy("ns", "p", {"spec": {"podSelector": {}, "egress": [{}]}})
    assert both.ingress == () and both.egress is not None


def test_ip_block_except_is_a_cidr_set_difference():
    policy = parse_policy("ns", "p", {"spec": {"podSelector": {}, "ingress": [{"from": [
        {"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.0.0.0/26", "10.0.0.128/25"]}}]}]}})
    assert policy.ingress[0].peers[0].cidrs == ("10.0.0.64/26",)


@pytest.mark.parametrize(("spec", "message"), [
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]}, "ipBlock"),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.1.0.0/16"]}}]}]},
     "not inside"),
    ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]}},
     "unknown operator 'Near'"),
    ({"ingress": [{"ports": [{"port": "Not_A_Name"}]}]}, "not a valid IANA service name"),
    ({"ingress": [{"ports": [{"port": 80, "protocol": "ICMP"}]}]}, "protocol 'ICMP'"),
    ({"egress": [{"ports": [{"port": 80, "endPort": 70}]}]}, "out of range"),
])
def test_bad_input_names_the_field(spec, message):
    with pytest.raises(BadInput, match=message):
        parse_policy("ns", "p", {"spec": {"podSelector": {}, **spec}})


def test_policies_naming_the_same_peer_share_its_group():
    def allow_from(ns, name, peer):
        return parse_policy(ns, name, {"uid": name, "spec": {
            "podSelector": {}, "ingress": [{"from": [peer]}]}})
    team = {"namespaceSelector": {"matchLabels": {"team": "x"}}}
    web = {"podSelector": {"matchLabels": {"app": "web"}}}
    policies = [allow_from("a", "p1", team), allow_from("b", "p2", team),
                allow_from("a", "p3", web), allow_from("a", "p4", web),
                allow_from("b", "p5", web)]
    shared = {key: group.uuid for p in policies for key, group in shared_peers(SETTINGS, p)}
    # one cluster-wide group for the namespaceSelector, one per namespace for the podSelector
    assert len(shared) == 3 and len(set(shared.values())) == 3
    assert sum(key.count("/") == 1 for key in shared) == 1
    chosen = pod_groups(SETTINGS, "a", {"labels": {"app": "web"}}, {"team": "x"}, policies)
    owners = [owner or "" for _, owner in chosen]
    assert sorted(o for o in owners if o.startswith("peer/")) == sorted(
        k for k in shared if not k.startswith("peer/b/"))  # the team group and a's web group
    assert len([o for o in owners if o.startswith("policy/")]) == 3  # p1, p3, p4 select it


# --- the property ---------------------------------------------------------------------------
LABELS = st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["a", "b"]),
                         max_size=2)
SELECTOR = st.one_of(
    st.just({}),
    st.builds(lambda labels: {"matchLabels": labels}, LABELS),
    st.builds(lambda key, op, values: {"matchExpressions": [
        {"key": key, "operator": op, **({"values": values} if op in ("In", "NotIn") else {})}]},
        st.sampled_from(["app", "tier"]), st.sampled_from(["In", "NotIn", "Exists",
                                                           "DoesNotExist"]),
        st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2, unique=True)))
IP_BLOCK = st.sampled_from([
    {"cidr": "10.0.0.0/24"}, {"cidr": "10.0.0.0/24", "except": ["10.0.0.0/30"]},
    {"cidr": "10.0.0.4/30"}, {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/29"]}])
PEER = st.one_of(
    st.builds(lambda s: {"podSelector": s}, SELECTOR),
    st.builds(lambda s: {"namespaceSelector": s}, SELECTOR),
    st.builds(lambda p, n: {"podSelector": p, "namespaceSelector": n}, SELECTOR, SELECTOR),
    st.builds(lambda b: {"ipBlock": b}, IP_BLOCK))
PORT = st.one_of(
    st.builds(lambda n: {"port": n}, st.sampled_from([80, 8080])),
    st.just({"port": "http"}),                      # 80 on some pods, 8080 on others
    st.just({"port": "dns", "protocol": "UDP"}),
    st.just({"port": "dns"}),                       # TCP: no pod declares dns/TCP
    st.just({"port": "http", "protocol": "UDP"}),   # no pod declares http/UDP
    st.just({"port": "nowhere"}),                   # a name no pod declares
    st.just({"port": 80, "endPort": 8080}),
    st.just({"protocol": "UDP", "port": 80}),
    st.just({"protocol": "UDP"}))
# peers: absent (`None`), empty (`[]`, also everyone) or one or two; ports: absent or empty
# (every port) or one or two
RULE = st.builds(lambda peers, ports: {**({"peers": peers} if peers is not None else {}),
                                       **({"ports": ports} if ports is not None else {})},
                 st.one_of(st.none(), st.just([]), st.lists(PEER, min_size=1, max_size=2)),
                 st.one_of(st.none(), st.lists(PORT, max_size=2)))


def _policy_spec(selector, types, ingress, egress):
    spec = {"podSelector": selector, "policyTypes": types}
    if ingress is not None:
        spec["ingress"] = [{("from" if k == "peers" else k): v for k, v in r.items()}
                           for r in ingress]
    if egress is not None:
        spec["egress"] = [{("to" if k == "peers" else k): v for k, v in r.items()}
                          for r in egress]
    return spec


POLICY = st.builds(_policy_spec, SELECTOR,
                   st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]),
                   st.one_of(st.none(), st.lists(RULE, max_size=2)),
                   st.one_of(st.none(), st.lists(RULE, max_size=2)))
CLUSTER = st.fixed_dictionaries({
    "namespaces": st.fixed_dictionaries({"n1": LABELS, "n2": LABELS}),
    # (namespace, labels, number of the port named http/TCP or None, declares dns/UDP 53)
    "pods": st.lists(st.tuples(st.sampled_from(["n1", "n2"]), LABELS,
                               st.sampled_from([None, 80, 8080]), st.booleans()),
                     min_size=2, max_size=4),
    "policies": st.lists(st.tuples(st.sampled_from(["n1", "n2"]), POLICY), max_size=3),
})


# An independent, plain reading of the NetworkPolicy spec ------------------------------------
def sel(selector, labels):
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        has, value = e["key"] in labels, labels.get(e["key"])
        ok = {"In": has and value in e.get("values", []),
              "NotIn": not has or value not in e.get("values", []),
              "Exists": has, "DoesNotExist": not has}[e["operator"]]
        if not ok:
            return False
    return True


def in_block(ip, block):
    address = ipaddress.ip_address(ip)
    return address in ipaddress.ip_network(block["cidr"]) and not any(
        address in ipaddress.ip_network(x) for x in block.get("except", []))


def peer_ok(peer, policy_ns, other, cluster):
    if "ipBlock" in peer:
        return in_block(other["ip"], peer["ipBlock"])
    ns_ok = (sel(peer["namespaceSelector"], cluster["namespaces"][other["ns"]])
             if "namespaceSelector" in peer else other["ns"] == policy_ns)
    return ns_ok and sel(peer.get("podSelector", {}), other["labels"])


def port_ok(ports, port, protocol, dest, name_unresolvable):
    if not ports:
        return True
    for p in ports:
        if (p.get("protocol") or "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        if isinstance(p["port"], str):
            # a named port resolves against the destination pod: the selected pod for
            # ingress (whatever the peer); for egress to an ipBlock there is no pod to ask
            declared = {(c["name"], c["protocol"]): c["port"] for c in dest["containers"]}
            if not name_unresolvable and declared.get((p["port"], protocol)) == port:
                return True
        elif p["port"] <= port <= p.get("endPort", p["port"]):
            return True
    return False


def direction_ok(pod, other, port, protocol, cluster, key, rules_key, dest):
    relevant = [(ns, spec) for ns, spec in cluster["policies"]
                if key in spec["policyTypes"] and ns == pod["ns"]
                and sel(spec["podSelector"], pod["labels"])]
    if not relevant:
        return True
    for ns, spec in relevant:
        for rule in spec.get(rules_key) or []:
            peers = rule.get("from" if rules_key == "ingress" else "to")
            if not peers:
                if port_ok(rule.get("ports"), port, protocol, dest, False):
                    return True
                continue
            for peer in peers:
                if peer_ok(peer, ns, other, cluster) and port_ok(
                        rule.get("ports"), port, protocol, dest,
                        "ipBlock" in peer and rules_key == "egress"):
                    return True
    return False


def expected(src, dst, port, protocol, cluster):
    return (direction_ok(src, dst, port, protocol, cluster, "Egress", "egress", dst)
            and direction_ok(dst, src, port, protocol, cluster, "Ingress", "ingress", dst))


# From the compiler's objects to a Contrail snapshot ------------------------------------------
def snapshot_of(cluster) -> tuple[Snapshot, list[dict]]:
    pods, vn = [], "vn-cluster"
    for i, (ns, labels, http, dns) in enumerate(cluster["pods"]):
        containers = ([{"name": "http", "port": http, "protocol": "TCP"}] if http else []) + (
            [{"name": "dns", "port": 53, "protocol": "UDP"}] if dns else [])
        pods.append({"ns": ns, "name": f"p{i}", "labels": labels, "containers": containers,
                     "ip": f"10.0.0.{i + 2}", "uid": f"uid-{i}", "ports": containers})
    policies = [parse_policy(ns, f"np{i}", {"uid": f"np-{i}", "spec": spec})
                for i, (ns, spec) in enumerate(cluster["policies"])]
    candidates = [(p["ns"], p, cluster["namespaces"][p["ns"]]) for p in pods]
    objects = {"security-group": [], "virtual-machine-interface": [], "instance-ip": []}
    sgs = [allow_all_ingress(SETTINGS), allow_all_egress(SETTINGS)]
    for policy in policies:
        selected = [p for p in pods if policy.selects(p["ns"], p["labels"])]
        sgs += groups(SETTINGS, policy, selected, peer_numbers(policy, candidates))
        sgs += [group for _, group in shared_peers(SETTINGS, policy)]
    for group in sgs:
        objects["security-group"].append({"uuid": group.uuid, "fq_name": list(group.fq_name),
                                          "annotations": as_annotations(group.annotations),
                                          **group.props})
    for p in pods:
        refs = refs_of(pod_groups(SETTINGS, p["ns"], p, cluster["namespaces"][p["ns"]],
                                  policies))
        objects["virtual-machine-interface"].append({
            "uuid": f"vmi-{p['name']}", "virtual_network_refs": [{"uuid": vn}],
            "security_group_refs": [{"uuid": r.uuid, "to": list(r.to)} for r in refs]})
        objects["instance-ip"].append({
            "uuid": f"iip-{p['name']}", "instance_ip_address": p["ip"],
            "virtual_network_refs": [{"uuid": vn}],
            "virtual_machine_interface_refs": [{"uuid": f"vmi-{p['name']}"}]})
    return Snapshot(objects), pods


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CLUSTER)
# ingress from an ipBlock on a named port: the name resolves on the selected pod (allowed)
@example({"namespaces": {"n1": {}, "n2": {}},
          "pods": [("n1", {}, None, False), ("n1", {}, 80, False)],
          "policies": [("n1", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [
              {"from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"port": "http"}]}]})]})
# issue 12: egress to a named port with no `to` reaches the pods declaring it everywhere
@example({"namespaces": {"n1": {}, "n2": {}},
          "pods": [("n1", {}, None, False), ("n2", {}, 80, False), ("n1", {}, 8080, True)],
          "policies": [("n1", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
              {"ports": [{"port": "http"}]}]})]})
def test_contrail_verdicts_equal_the_networkpolicy_spec(cluster):
    snap, pods = snapshot_of(cluster)
    for src in pods:
        for dst in pods:
            if src is dst:
                continue
            for port, protocol in ((80, "TCP"), (8080, "TCP"), (443, "TCP"), (80, "UDP"),
                                   (53, "UDP"), (53, "TCP")):
                verdict = evaluate(snap, f"vmi-{src['name']}", dst["ip"], port,
                                   protocol.lower(), cluster_network="vn-cluster")
                assert verdict.allowed == expected(src, dst, port, protocol, cluster), (
                    src["name"], dst["name"], port, protocol, verdict)


# --- explanations and rule identity -----------------------------------------------------------
ISSUE_12 = {"namespaces": {"n1": {}, "n2": {"team": "a"}},
            "pods": [("n1", {"app": "a"}, None, False), ("n2", {}, 80, False),
                     ("n1", {}, 8080, True)],
            "policies": [("n1", {"podSelector": {"matchLabels": {"app": "a"}},
                                 "policyTypes": ["Egress"],
                                 "egress": [{"ports": [{"port": "http"}]}]})]}


def test_reach_says_which_policy_rule_and_port_resolution_allowed_it():
    snap, pods = snapshot_of(ISSUE_12)
    verdict = evaluate(snap, "vmi-p0", pods[1]["ip"], 80, "tcp", cluster_network="vn-cluster")
    assert verdict.allowed
    assert ("NetworkPolicy n1/np0 egress[0] to all pods of every namespace, ports[0] tcp/80 "
            "(port name 'http' on the destination pods that declare it as 80)") in verdict.egress
    assert "not isolated for ingress" in verdict.ingress
    # same name, another number on another pod: its own rule
    other = evaluate(snap, "vmi-p0", pods[2]["ip"], 8080, "tcp", cluster_network="vn-cluster")
    assert other.allowed and "as 8080" in other.egress


def test_reach_says_what_isolates_and_which_rules_came_close():
    snap, pods = snapshot_of(ISSUE_12)
    verdict = evaluate(snap, "vmi-p0", pods[2]["ip"], 80, "tcp", cluster_network="vn-cluster")
    assert not verdict.allowed
    text = "\n".join(verdict.reasons)
    assert "no egress rule of the source allows it" in text
    assert "isolated for egress by NetworkPolicy n1/np0" in text
    assert "the peer matches, tcp/80 does not" in text and "as 8080" in text
    udp = evaluate(snap, "vmi-p0", pods[2]["ip"], 53, "udp", cluster_network="vn-cluster")
    assert not udp.allowed  # dns is declared, but the rule names http


def test_identical_rules_are_one_rule_explained_by_each_source():
    """Contrail refuses twin rules (409): a numeric port and a name resolving to it, or two
    rules naming the same peer, make one rule."""
    policy = parse_policy("n1", "np", {"uid": "u", "spec": {"podSelector": {}, "ingress": [
        {"from": [{"podSelector": {}}], "ports": [{"port": 80}, {"port": "http"}]},
        {"from": [{"podSelector": {}}], "ports": [{"port": 80}]}]}})
    pod = {"labels": {}, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    (group,) = groups(SETTINGS, policy, [pod], {})
    rules = group.props["security_group_entries"]["policy_rule"]
    assert len(rules) == 1 and rules[0]["rule_uuid"]
    (why,) = [text for text, uuids in json.loads(group.annotations["rules"]).items()
              if rules[0]["rule_uuid"] in uuids]
    assert "ingress[0]" in why and "ingress[1]" in why and "port name 'http'" in why
    again = groups(SETTINGS, policy, [pod], {})[0]
    assert again.props == group.props  # the same uuids each time: no rewrite


@pytest.mark.parametrize(("port", "message"), [
    ({"port": "http", "endPort": 90}, "endPort needs a numeric port"),
    ({"endPort": 90}, "endPort needs a port"),
])
def test_end_port_needs_a_numeric_port_like_the_api_server_says(port, message):
    with pytest.raises(BadInput, match=message):
        parse_policy("ns", "p", {"spec": {"podSelector": {}, "egress": [{"ports": [port]}]}})


def test_a_policy_not_selecting_the_pod_is_not_blamed_for_isolating_it():
    """Found by review: the per-number egress groups (membership, on the destination pods)
    were read as isolating them."""
    cluster = {"namespaces": {"n1": {}, "n2": {}},
               "pods": [("n1", {"app": "a"}, None, False), ("n2", {}, 80, False)],
               "policies": [("n1", {"podSelector": {"matchLabels": {"app": "a"}},
                                    "policyTypes": ["Egress"],
                                    "egress": [{"ports": [{"port": "http"}]}]}),
                            ("n2", {"podSelector": {}, "policyTypes": ["Ingress"]})]}
    snap, pods = snapshot_of(cluster)
    verdict = evaluate(snap, "vmi-p0", pods[1]["ip"], 80, "tcp", cluster_network="vn-cluster")
    assert not verdict.allowed
    assert "  isolated for ingress by NetworkPolicy n2/np1" in verdict.reasons

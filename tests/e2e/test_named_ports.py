"""Named ports in NetworkPolicy, every peer shape, end to end (issue 12): Kubernetes objects in
the emulator -> watcher -> workers -> Contrail emulator, judged by `ckm reach` on the live
Contrail state, including what it says about why.

A name resolves on the pod that receives: for egress on each destination pod (so a rule with
no `to` reaches the pods declaring the name in every namespace), for ingress on the selected
pod. An address (ipBlock) has no ports to ask, so an egress rule naming a port allows nothing
towards an ipBlock; a name that no pod declares (with that protocol) allows nothing.
"""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from ckm.cli import app
from tests.e2e.conftest import wait_for
from tests.e2e.test_translation import running_ip

pytestmark = pytest.mark.integration


def serve(number, protocol="TCP"):
    return [{"name": "serve", "containerPort": number, "protocol": protocol}]


def make_pods(system, pods):
    core = system.core
    for ns in sorted({ns for ns, *_ in pods}):
        labels = {"team": "a"} if ns == "dst-a" else {}
        core.create_namespace({"metadata": {"name": ns, "labels": labels}})
    for ns, name, labels, ports in pods:
        core.create_namespaced_pod(ns, {
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox", "ports": ports}]}})
    for ns, name, *_ in pods:
        wait_for(lambda n=name, s=ns: running_ip(system, s, n), what=f"{ns}/{name} Running")


def reach(system, src, dst, port, protocol="tcp") -> dict:
    result = CliRunner().invoke(app, ["reach", src, dst, "--port", str(port), "--protocol",
                                      protocol, "--json"],
                                env={"CKM_CONTRAIL_URLS": system.stack.contrail_url})
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


def judge(system, expectations, timeout=45.0) -> dict:
    """Wait until ckm is idle and every (src, dst, port, protocol) -> allowed holds; returns
    the verdicts, for the explanations."""
    deadline = time.monotonic() + timeout
    while True:
        system.stack.wait_idle()
        verdicts = {case: reach(system, *case) for case in expectations}
        wrong = {case: v for case, v in verdicts.items()
                 if v["allowed"] is not expectations[case]}
        if not wrong:
            return verdicts
        if time.monotonic() > deadline:
            raise AssertionError("\n".join(
                f"{src} -> {dst} {proto}/{port}: expected "
                f"{'allowed' if expectations[(src, dst, port, proto)] else 'denied'}, got "
                f"{json.dumps(v)}" for (src, dst, port, proto), v in wrong.items()))
        time.sleep(0.3)


def policy(system, ns, name, spec):
    system.net.create_namespaced_network_policy(ns, {"metadata": {"name": name},
                                                     "spec": spec})


DESTINATIONS = [
    ("src", "local", {"role": "web"}, serve(80)),          # the policies' own namespace
    ("dst-a", "web80", {"role": "web"}, serve(80)),        # team=a
    ("dst-a", "udp80", {"role": "udp"}, serve(80, "UDP")),  # the name, with UDP
    ("dst-b", "web8080", {"role": "web"}, serve(8080)),     # the name, another number
    ("dst-b", "plain", {"role": "web"}, []),               # no name at all
]

# shape -> egress rules of a policy selecting the source pod `src/<shape>`
EGRESS = {
    "no-to": [{"ports": [{"port": "serve"}]}],
    "empty-to": [{"to": [], "ports": [{"port": "serve"}]}],
    "pods": [{"to": [{"podSelector": {"matchLabels": {"role": "web"}}}],
              "ports": [{"port": "serve"}]}],
    "namespaces": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
                    "ports": [{"port": "serve"}]}],
    "both": [{"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "web"}}}],
              "ports": [{"port": "serve"}]}],
    "ipblock": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": "serve"}]}],
    "ipblock-except": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                        "ports": [{"port": "serve"}]}],
    "two-peers": [{"to": [{"podSelector": {"matchLabels": {"role": "web"}}},
                          {"namespaceSelector": {"matchLabels": {"team": "a"}}}],
                   "ports": [{"port": "serve"}]}],
    "two-rules": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
                   "ports": [{"port": "serve"}]},
                  {"ports": [{"port": 8080}]}],
    "nowhere": [{"ports": [{"port": "nowhere"}]}],
    "udp": [{"ports": [{"port": "serve", "protocol": "UDP"}]}],
}

# (shape, destination, port, protocol) that are allowed; every other combination of the
# checked ones below is denied
ALLOWED = {
    *((s, d, p, "tcp") for s in ("no-to", "empty-to")
      for d, p in (("src/local", 80), ("dst-a/web80", 80), ("dst-b/web8080", 8080))),
    ("pods", "src/local", 80, "tcp"),
    ("namespaces", "dst-a/web80", 80, "tcp"),
    *(("both", d, p, "tcp") for d, p in (("src/local", 80), ("dst-a/web80", 80),
                                         ("dst-b/web8080", 8080))),
    ("two-peers", "src/local", 80, "tcp"), ("two-peers", "dst-a/web80", 80, "tcp"),
    ("two-rules", "dst-a/web80", 80, "tcp"), ("two-rules", "dst-b/web8080", 8080, "tcp"),
    ("two-rules", "dst-b/plain", 8080, "tcp"), ("two-rules", "dst-a/web80", 8080, "tcp"),
    ("udp", "dst-a/udp80", 80, "udp"),
}
CHECKED = [("src/local", 80, "tcp"), ("dst-a/web80", 80, "tcp"), ("dst-a/web80", 8080, "tcp"),
           ("dst-a/udp80", 80, "udp"), ("dst-a/udp80", 80, "tcp"),
           ("dst-b/web8080", 8080, "tcp"), ("dst-b/web8080", 80, "tcp"),
           ("dst-b/plain", 80, "tcp"), ("dst-b/plain", 8080, "tcp")]


def test_named_egress_ports_for_every_peer_shape(system):
    sources = [("src", shape, {"shape": shape}, []) for shape in EGRESS]
    make_pods(system, DESTINATIONS + sources)
    for shape, rules in EGRESS.items():
        policy(system, "src", shape, {"podSelector": {"matchLabels": {"shape": shape}},
                                      "policyTypes": ["Egress"], "egress": rules})
    expectations = {(f"src/{shape}", dst, port, proto): (shape, dst, port, proto) in ALLOWED
                    for shape in EGRESS for dst, port, proto in CHECKED}
    verdicts = judge(system, expectations)
    assert system.stack.context.failures.all() == []
    # the explanations: which policy, which rule, how the name resolved
    allowed = verdicts[("src/no-to", "dst-b/web8080", 8080, "tcp")]
    assert ("NetworkPolicy src/no-to egress[0] to all pods of every namespace, ports[0] "
            "tcp/8080 (port name 'serve' on the destination pods that declare it as 8080)"
            ) in allowed["egress"]
    two = verdicts[("src/two-rules", "dst-b/plain", 8080, "tcp")]["egress"]
    assert "NetworkPolicy src/two-rules egress[1] to everyone, ports[0] tcp/8080" in two
    denied = "\n".join(verdicts[("src/namespaces", "dst-b/web8080", 8080, "tcp")]["reasons"])
    assert "isolated for egress by NetworkPolicy src/namespaces" in denied
    assert "tcp/8080 matches, the peer does not" not in denied  # no rule for 8080 at all
    near = "\n".join(verdicts[("src/no-to", "dst-b/web8080", 80, "tcp")]["reasons"])
    assert "the peer matches, tcp/80 does not" in near and "as 8080" in near
    for shape in ("ipblock", "nowhere"):
        why = "\n".join(verdicts[(f"src/{shape}", "dst-a/web80", 80, "tcp")]["reasons"])
        assert f"NetworkPolicy src/{shape} egress[0]" in why and "no rule" in why, why


# shape -> (labels and ports of the pods it selects, ingress rules)
INGRESS = {
    "no-from": [{"ports": [{"port": "serve"}]}],
    "pods": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
              "ports": [{"port": "serve"}]}],
    "namespaces": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
                    "ports": [{"port": "serve"}]}],
    "both": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}},
                        "podSelector": {"matchLabels": {"role": "client"}}}],
              "ports": [{"port": "serve"}]}],
    "ipblock": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": "serve"}]}],
    "two-rules": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                   "ports": [{"port": "serve"}]},
                  {"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
                   "ports": [{"port": 9000}]}],
    "nowhere": [{"ports": [{"port": "nowhere"}]}],
    "udp": [{"ports": [{"port": "serve", "protocol": "UDP"}]}],
}


def test_named_ingress_ports_resolve_on_each_selected_pod(system):
    # two selected pods per shape, resolving `serve` to 80 and 8080
    targets = [("ing", f"{shape}-{n}", {"shape": shape}, serve(n))
               for shape in [*INGRESS, "ipblock-except"] for n in (80, 8080)]
    clients = [("ing", "client", {"role": "client"}, []),
               ("dst-a", "client", {"role": "client"}, []), ("dst-a", "other", {}, []),
               ("dst-b", "client", {"role": "client"}, [])]
    make_pods(system, targets + clients)
    for shape, rules in INGRESS.items():
        policy(system, "ing", shape, {"podSelector": {"matchLabels": {"shape": shape}},
                                      "ingress": rules})
    # the ipBlock shape with an except: every client but dst-b/client
    except_ip = running_ip(system, "dst-b", "client")
    policy(system, "ing", "ipblock-except", {
        "podSelector": {"matchLabels": {"shape": "ipblock-except"}},
        "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [f"{except_ip}/32"]}}],
                     "ports": [{"port": "serve"}]}]})
    allowed_from = {
        "no-from": {"ing/client", "dst-a/client", "dst-a/other", "dst-b/client"},
        "pods": {"ing/client"},
        "namespaces": {"dst-a/client", "dst-a/other"},
        "both": {"dst-a/client"},
        "ipblock": {"ing/client", "dst-a/client", "dst-a/other", "dst-b/client"},
        "ipblock-except": {"ing/client", "dst-a/client", "dst-a/other"},
        "two-rules": {"ing/client"},
        "nowhere": set(),
        "udp": set(),
    }
    expectations = {}
    for shape, sources in allowed_from.items():
        for n in (80, 8080):
            for src in ("ing/client", "dst-a/client", "dst-a/other", "dst-b/client"):
                target = f"ing/{shape}-{n}"
                expectations[(src, target, n, "tcp")] = src in sources  # its own number
                expectations[(src, target, 80 if n == 8080 else 8080, "tcp")] = False
    expectations[("dst-a/other", "ing/two-rules-80", 9000, "tcp")] = True  # the numeric rule
    verdicts = judge(system, expectations)
    assert system.stack.context.failures.all() == []
    rule = verdicts[("ing/client", "ing/no-from-8080", 8080, "tcp")]["ingress"]
    assert ("NetworkPolicy ing/no-from ingress[0] from everyone, ports[0] tcp/8080 "
            "(port name 'serve' on this pod)") in rule
    why = "\n".join(verdicts[("dst-b/client", "ing/both-80", 80, "tcp")]["reasons"])
    assert "no ingress rule of the target allows it" in why
    assert "isolated for ingress by NetworkPolicy ing/both" in why
    assert "tcp/80 matches, the peer does not" in why


def test_named_ports_follow_pods_and_namespaces_made_later(system):
    make_pods(system, [("src", "client", {}, []), ("dst-a", "web80", {}, serve(80))])
    policy(system, "src", "out", {"podSelector": {}, "policyTypes": ["Egress"],
                                  "egress": [{"ports": [{"port": "serve"}]}]})
    judge(system, {("src/client", "dst-a/web80", 80, "tcp"): True})
    # a namespace made after the policy, with a pod resolving the name to a new number
    make_pods(system, [("late", "web9090", {}, serve(9090))])
    judge(system, {("src/client", "late/web9090", 9090, "tcp"): True,
                   ("src/client", "late/web9090", 80, "tcp"): False,
                   ("src/client", "dst-a/web80", 80, "tcp"): True})
    # the last pod resolving to 9090 goes: so does the rule for 9090, and its group
    system.core.delete_namespaced_pod("web9090", "late")

    def variants():
        return [g["fq_name"][-1] for g in system.contrail.list("security-group")
                if g["fq_name"][-1].startswith("k8s-np-out-peer-")]
    wait_for(lambda: len(variants()) == 1, what="the 9090 variant removed")
    system.stack.wait_idle()
    group = system.contrail.list("security-group", detail=True,
                                 filters={"display_name": "k8s-np-out"})
    ports = [r["dst_ports"][0]["start_port"]
             for r in group[0]["security_group_entries"]["policy_rule"]]
    assert ports == [80]
    assert system.stack.context.failures.all() == []


def test_end_port_next_to_a_named_port_is_refused_and_changes_nothing(system):
    make_pods(system, [("src", "client", {"app": "c"}, []), ("dst-a", "web80", {}, serve(80))])
    policy(system, "src", "ranged", {
        "podSelector": {"matchLabels": {"app": "c"}}, "policyTypes": ["Egress"],
        "egress": [{"ports": [{"port": "serve", "endPort": 90}]}]})
    failure = wait_for(lambda: system.stack.context.failures.get("policy/src/ranged"),
                       what="a failed sync")
    assert failure.permanent and "endPort needs a numeric port" in failure.error
    # not applied: the client is not isolated
    judge(system, {("src/client", "dst-a/web80", 80, "tcp"): True,
                   ("src/client", "dst-a/web80", 81, "tcp"): True})

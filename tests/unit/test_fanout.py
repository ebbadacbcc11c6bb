"""The watcher's fan-out, as a property: after any one change, every port whose security
groups change and every policy whose groups change has its key enqueued.

The expected sets come from computing every pod's groups and every policy's groups from
scratch, before and after the change, with the compiler (tasks.policy); the fan-out
(tasks.fanout) only sees the change and the store as it was. A key it misses is a port that
keeps stale groups until the next full resync (issue 12: a named egress port with no `to`
reached only the policy's own namespace).
"""

from __future__ import annotations

import contextlib
import copy
import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from config.settings import Settings
from tasks.fanout import affected_keys
from tasks.indexes import index_names
from tasks.outcomes import BadInput
from tasks.policy import groups, parse_policy, peer_numbers, pod_groups

SETTINGS = Settings()
PLAIN = {"labels": {}, "annotations": {}}
NAMESPACES = ("n1", "n2", "n3")
LABELS = st.dictionaries(st.sampled_from(["app", "team"]), st.sampled_from(["a", "b"]),
                         max_size=2)
SELECTOR = st.one_of(st.just({}), st.builds(lambda labels: {"matchLabels": labels}, LABELS))
PEER = st.one_of(
    st.builds(lambda s: {"podSelector": s}, SELECTOR),
    st.builds(lambda s: {"namespaceSelector": s}, SELECTOR),
    st.builds(lambda p, n: {"podSelector": p, "namespaceSelector": n}, SELECTOR, SELECTOR),
    st.just({"ipBlock": {"cidr": "10.0.0.0/24"}}))
PORT = st.sampled_from([{"port": 80}, {"port": "http"}, {"port": "dns", "protocol": "UDP"},
                        {"port": "http", "protocol": "UDP"}])
RULE = st.builds(lambda peers, ports: {**({"peers": peers} if peers is not None else {}),
                                       **({"ports": ports} if ports else {})},
                 st.one_of(st.none(), st.just([]), st.lists(PEER, min_size=1, max_size=2)),
                 st.lists(PORT, max_size=2))


def _spec(selector, ingress, egress):
    spec = {"podSelector": selector, "policyTypes": ["Ingress", "Egress"]}
    spec["ingress"] = [{("from" if k == "peers" else k): v for k, v in r.items()}
                       for r in ingress]
    spec["egress"] = [{("to" if k == "peers" else k): v for k, v in r.items()} for r in egress]
    return spec


POLICY = st.builds(_spec, SELECTOR, st.lists(RULE, max_size=2), st.lists(RULE, max_size=2))
NAMED = st.lists(st.sampled_from([("http", "TCP", 80), ("http", "TCP", 8080),
                                  ("dns", "UDP", 53)]), max_size=2,
                 unique_by=lambda p: p[0])
POD = st.fixed_dictionaries({"labels": LABELS, "node": st.sampled_from(["", "node-1"]),
                             "named": NAMED})
STATE = st.fixed_dictionaries({
    "namespaces": st.dictionaries(st.sampled_from(NAMESPACES), st.fixed_dictionaries(
        {"labels": LABELS, "annotations": st.just({})}), min_size=1),
    "pods": st.dictionaries(st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(
        ["p1", "p2", "p3"])), POD, max_size=5),
    "policies": st.dictionaries(st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(
        ["np1", "np2"])), POLICY, max_size=2),
})
CHANGE = st.one_of(
    st.tuples(st.just("Pod"), st.sampled_from(NAMESPACES), st.sampled_from(["p1", "p2", "p4"]),
              st.one_of(st.none(), POD)),
    st.tuples(st.just("Namespace"), st.just(""), st.sampled_from(NAMESPACES),
              st.one_of(st.none(), st.fixed_dictionaries(
                  {"labels": LABELS, "annotations": st.sampled_from(
                      [{}, {"opencontrail.org/isolation": "true"}])}))),
    st.tuples(st.just("NetworkPolicy"), st.sampled_from(NAMESPACES),
              st.sampled_from(["np1", "np3"]), st.one_of(st.none(), POLICY)))


def pod_projection(name: str, pod: dict) -> dict:
    return {"uid": f"uid-{name}", "labels": pod["labels"], "node": pod["node"],
            "host_network": False, "finished": False, "annotations": {},
            "ports": [{"name": n, "protocol": p, "port": number}
                      for n, p, number in pod["named"]]}


class Store:
    """The fan-out's view of the desired-state store (tasks.fanout.Lookup)."""

    def __init__(self, state):
        self.objects = {
            "Namespace": {("", n): {"uid": n, **namespace}
                          for n, namespace in state["namespaces"].items()},
            "Pod": {(ns, name): pod_projection(name, pod)
                    for (ns, name), pod in state["pods"].items()},
            "NetworkPolicy": {(ns, name): {"uid": f"{ns}-{name}", "spec": spec}
                              for (ns, name), spec in state["policies"].items()}}

    def items(self, kind):
        for (ns, name), projection in sorted(self.objects.get(kind, {}).items()):
            yield ns, name, projection

    def get(self, kind, namespace, name):
        return self.objects.get(kind, {}).get((namespace, name))

    def versions(self, kind, index):
        return [(ns, name, json.dumps(p, sort_keys=True))
                for ns, name, p in self.indexed(kind, index)]

    def indexed(self, kind, index):
        return [(ns, name, p) for ns, name, p in self.items(kind)
                if index in index_names(kind, p)]

    def in_namespace(self, kind, namespace):
        return [(name, p) for (ns, name), p in sorted(self.objects.get(kind, {}).items())
                if ns == namespace]


def desired(store: Store) -> dict[str, object]:
    """Key -> what it makes: each scheduled pod's group set, each valid policy's groups."""
    ns_labels = {n: p["labels"] for _, n, p in store.items("Namespace")}
    policies = []
    for ns, name, projection in store.items("NetworkPolicy"):
        with contextlib.suppress(BadInput):
            policies.append(parse_policy(ns, name, projection))
    pods = [(ns, name, p) for ns, name, p in store.items("Pod") if p["node"]]
    candidates = [(ns, p, ns_labels.get(ns, {})) for ns, _, p in pods]
    out: dict[str, object] = {}
    for ns, name, p in pods:
        out[f"sgs/{ns}/{name}"] = sorted(
            g.uuid for g, _ in pod_groups(SETTINGS, ns, p, ns_labels.get(ns, {}), policies))
    for policy in policies:
        selected = [p for ns, _, p in pods if policy.selects(ns, p["labels"])]
        out[f"policy/{policy.namespace}/{policy.name}"] = sorted(
            (g.uuid, repr(g.props)) for g in groups(
                SETTINGS, policy, selected, peer_numbers(policy, candidates)))
    return out


def apply_change(state, change):
    kind, ns, name, value = change
    after = copy.deepcopy(state)
    table = {"Pod": "pods", "Namespace": "namespaces", "NetworkPolicy": "policies"}[kind]
    where = name if kind == "Namespace" else (ns, name)
    if value is None:
        after[table].pop(where, None)
    else:
        after[table][where] = value
    return after


def projection_of(store: Store, kind, ns, name):
    return store.objects[kind].get((ns, name))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STATE, CHANGE)
# issue 12: a named egress port with no `to`; a pod of another namespace declares it
@example({"namespaces": {"n1": PLAIN, "n2": PLAIN}, "pods": {
    ("n2", "p1"): {"labels": {}, "node": "node-1", "named": [("http", "TCP", 80)]}},
    "policies": {}},
    ("NetworkPolicy", "n1", "np1", _spec({}, [], [{"ports": [{"port": "http"}]}])))
# a pod created later declares the name: the policy needs a group variant for its number
@example({"namespaces": {"n1": PLAIN, "n2": PLAIN}, "pods": {}, "policies": {
    ("n1", "np1"): _spec({}, [], [{"ports": [{"port": "http"}]}])}},
    ("Pod", "n2", "p1", {"labels": {}, "node": "node-1", "named": [("http", "TCP", 8080)]}))
# a namespace relabelled into a namespaceSelector peer of a named egress port
@example({"namespaces": {"n1": PLAIN, "n2": PLAIN}, "pods": {
    ("n2", "p1"): {"labels": {}, "node": "node-1", "named": [("dns", "UDP", 53)]}},
    "policies": {("n1", "np1"): _spec({}, [], [{
        "peers": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
        "ports": [{"port": "dns", "protocol": "UDP"}]}])}},
    ("Namespace", "", "n2", {"labels": {"team": "a"}, "annotations": {}}))
# ... and with an annotation changed at the same time (found by review)
@example({"namespaces": {"n1": PLAIN, "n2": PLAIN}, "pods": {
    ("n2", "p1"): {"labels": {}, "node": "node-1", "named": [("dns", "UDP", 53)]}},
    "policies": {("n1", "np1"): _spec({}, [], [{
        "peers": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
        "ports": [{"port": "dns", "protocol": "UDP"}]}])}},
    ("Namespace", "", "n2", {"labels": {"team": "a"},
                             "annotations": {"opencontrail.org/isolation": "true"}}))
def test_every_key_whose_groups_change_is_enqueued(state, change):
    kind, ns, name, _ = change
    # A pod's namespace exists before it (the API server refuses a pod in a namespace that
    # does not exist); the order the watcher sees them in has its own test below.
    homes = {pod_ns for pod_ns, _ in state["pods"]} | ({ns} if kind == "Pod" else set())
    state = {**state, "namespaces": {
        **{n: {"labels": {}, "annotations": {}} for n in homes}, **state["namespaces"]}}
    before, after = Store(state), Store(apply_change(state, change))
    old, new = (projection_of(s, kind, ns, name) for s in (before, after))
    if old == new:
        return
    keys = set(affected_keys(kind, ns, name, old, new, before))
    then, now = desired(before), desired(after)
    missed = []
    for key in sorted(set(then) | set(now)):
        if then.get(key) == now.get(key):
            continue
        if key.startswith("sgs/"):
            # a pod's own change reaches its port through its port key (which enqueues the
            # groups key when the port is new)
            port = "port/" + key[len("sgs/"):]
            if key not in keys and port not in keys:
                missed.append(key)
        elif key not in keys and key in now:  # a deleted policy's groups go with its key
            missed.append(key)
    assert not missed, (missed, sorted(keys))


def test_pods_seen_before_their_namespace_get_their_groups_when_it_arrives():
    """The watcher lists kinds in parallel, so pods can be stored before their Namespace: a
    policy change then does not reach them (the fan-out reads the namespaces a policy can
    select from the stored ones), and the Namespace's arrival does."""
    state = {"namespaces": {"n1": PLAIN}, "pods": {
        ("n2", "p1"): {"labels": {}, "node": "node-1", "named": [("http", "TCP", 80)]}},
        "policies": {("n1", "np1"): _spec({}, [], [{"ports": [{"port": "http"}]}])}}
    store = Store(state)
    keys = affected_keys("Namespace", "", "n2", None, {"uid": "n2", **PLAIN}, store)
    assert "sgs/n2/p1" in keys

"""`ckm bench mixed`'s workload is the one the issue describes, and its relabels move pods
between policies (else the churn phase would time runs that change nothing)."""

from __future__ import annotations

from collections import Counter

from ckm import bench_workload as wl
from ckm.bench_bound import _levels
from tasks.policy import parse_policy
from tasks.selectors import parse


def test_scale_one_is_the_issues_workload():
    w = wl.Workload.scaled(1.0)
    assert (w.pods, w.services, w.policies) == (10_000, 2_000, 1_000)
    services = wl.services(w)
    assert sum(len(s["spec"]["ports"]) == 2 for _, s in services) == 1_000  # half with 2
    isolated = [n for n in wl.namespaces() if (n["metadata"].get("annotations") or {}).get(
        wl.ISOLATION) == "true"]
    assert len(wl.namespaces()) == 20 and len(isolated) == 4
    app_namespaces = {ns for ns, p in wl.pods(w) if wl.APP_LABEL in p["metadata"]["labels"]}
    assert len(app_namespaces) == 2


def test_every_service_has_five_backends_in_its_namespace():
    w = wl.Workload.scaled(0.1)
    pods = wl.pods(w)
    backends: Counter = Counter()
    for namespace, service in wl.services(w):
        selector = parse({"matchLabels": service["spec"]["selector"]}, "selector")
        backends[service["metadata"]["name"]] = sum(
            ns == namespace and selector.matches(p["metadata"]["labels"]) for ns, p in pods)
    assert set(backends.values()) == {5}
    assert w.members == sum(5 * len(s["spec"]["ports"]) for _, s in wl.services(w))


def test_policies_select_pods_and_a_relabel_changes_which():
    w = wl.Workload.scaled(1.0)
    policies = [parse_policy(ns, p["metadata"]["name"], p) for ns, p in wl.policies(w)]
    pods = wl.pods(w)

    def selecting(ns: str, labels: dict) -> set[str]:
        return {p.name for p in policies if p.selects(ns, labels)}

    assert all(any(p.selects(ns, pod["metadata"]["labels"]) for ns, pod in pods[:200])
               for p in policies[:20])
    for i in range(0, w.pods, 97):
        ns, pod = pods[i]
        labels = pod["metadata"]["labels"]
        moved = {**labels, "app": wl.relabelled_app(w, i)}
        assert selecting(ns, labels) and selecting(ns, moved)
        assert selecting(ns, labels) != selecting(ns, moved)


def test_the_api_bound_creates_parents_and_ref_targets_first_and_defers_a_cycle():
    project = ("project", ("d", "p"))
    ipam = ("network-ipam", ("d", "p", "ipam"))
    network = ("virtual-network", ("d", "p", "vn"))
    missing = {
        project: {"parent_type": "domain", "network_ipam_refs": [{"to": list(ipam[1])}]},
        ipam: {"parent_type": "project"},
        network: {"parent_type": "project", "network_ipam_refs": [{"to": list(ipam[1])}]},
    }
    levels, deferred = _levels(missing)
    order = {entry: n for n, level in enumerate(levels) for entry in level}
    assert order[project] < order[ipam] < order[network]
    assert deferred == {(project, ipam)}  # the project's ref is set once the IPAM exists

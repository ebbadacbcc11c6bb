"""The mixed workload every scenario applies, in three phases, with the official client.

Phase 1: namespaces (one isolated) and the first pods. Phase 2: the other pods, two services
with selectors, an ingress and two NetworkPolicies (a default-deny of ingress, an allow from
a podSelector). Phase 3: churn: pods deleted, one re-created under the same name, pods
relabelled (service and policy membership, never their network), new pods. The final state
is the same whatever happened in between, so a faulted run compares with a clean one.

`POISON` objects (R9) are each wrong in a way ckm must report as a failed sync with a
Kubernetes Event, without disturbing anything else.
"""

from __future__ import annotations

import kubernetes.client
from kubernetes.client.exceptions import ApiException

APP = "opencontrail.org/name"
ISOLATED = {"opencontrail.kubernetes.isolated": "true"}
NAMESPACES = {"alpha": None, "beta": None, "iso": ISOLATED}
WEB_PORTS = [{"name": "http", "containerPort": 8080}]
DB_PORTS = [{"name": "pg", "containerPort": 5432}]


def _pod(name: str, labels: dict, ports=None) -> dict:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": ports or []}]}}


# (namespace, name) -> (labels, container ports)
PHASE1_PODS = {
    **{("alpha", f"web-{i}"): ({"app": "web"}, WEB_PORTS) for i in range(4)},
    **{("alpha", f"fe-{i}"): ({APP: "frontend", "app": "fe"}, WEB_PORTS) for i in range(2)},
    **{("beta", f"db-{i}"): ({"role": "db"}, DB_PORTS) for i in range(3)},
    **{("iso", f"iso-{i}"): ({"app": "iso"}, []) for i in range(3)},
}
PHASE2_PODS = {
    **{("alpha", f"web-{i}"): ({"app": "web"}, WEB_PORTS) for i in range(4, 7)},
    **{("beta", f"client-{i}"): ({"role": "client"}, []) for i in range(4)},
    **{("beta", f"other-{i}"): ({"role": "other"}, []) for i in range(2)},
    ("default", "tool-0"): ({}, []), ("default", "tool-1"): ({}, []),
    ("iso", "iso-app-0"): ({APP: "secret"}, []),
}
PHASE3_DELETE = [("alpha", "web-0"), ("beta", "db-2"), ("beta", "other-1"), ("iso", "iso-2")]
PHASE3_RECREATE = [("alpha", "web-0")]  # deleted and made again under the same name
PHASE3_RELABEL = {("alpha", "web-1"): {"app": "web-canary"},  # leaves the service
                  ("beta", "client-0"): {"role": "other"},  # leaves the policy's peers
                  ("beta", "other-0"): {"role": "client"}}  # joins them
PHASE3_PODS = {("alpha", "web-7"): ({"app": "web"}, WEB_PORTS),
               ("beta", "db-3"): ({"role": "db"}, DB_PORTS),
               ("default", "tool-2"): ({}, [])}

SERVICES = {
    ("alpha", "web"): {"selector": {"app": "web"},
                       "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    ("beta", "db"): {"selector": {"role": "db"},
                     "ports": [{"name": "pg", "port": 5432, "targetPort": 5432}]},
}
INGRESSES = {("alpha", "web"): {"defaultBackend": {
    "service": {"name": "web", "port": {"number": 80}}}}}
POLICIES = {
    ("beta", "default-deny"): {"podSelector": {}, "policyTypes": ["Ingress"]},
    ("beta", "db-from-client"): {
        "podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                     "ports": [{"protocol": "TCP", "port": 5432}]}]},
}

# R9: (Kubernetes kind, namespace, name) -> the key that must fail
POISON_KEYS = {
    ("Pod", "alpha", "slash-app"): "port/alpha/slash-app",
    ("Pod", "alpha", "long-app"): "port/alpha/long-app",
    ("Namespace", "", "badns"): "namespace/badns",
    ("NetworkPolicy", "beta", "bad-except"): "policy/beta/bad-except",
    ("Ingress", "alpha", "to-nowhere"): "ingress/alpha/to-nowhere",
}


class Workload:
    def __init__(self, api: kubernetes.client.ApiClient):
        self.core = kubernetes.client.CoreV1Api(api)
        self.net = kubernetes.client.NetworkingV1Api(api)

    def _pods(self, pods: dict) -> None:
        for (ns, name), (labels, ports) in pods.items():
            self.core.create_namespaced_pod(ns, _pod(name, labels, ports))

    def phase1(self) -> None:
        for name, notes in NAMESPACES.items():
            self.core.create_namespace({"metadata": {"name": name, "annotations": notes}})
        self._pods(PHASE1_PODS)

    def phase2(self) -> None:
        self._pods(PHASE2_PODS)
        for (ns, name), spec in SERVICES.items():
            self.core.create_namespaced_service(ns, {"metadata": {"name": name}, "spec": spec})
        for (ns, name), spec in INGRESSES.items():
            self.net.create_namespaced_ingress(ns, {"metadata": {"name": name}, "spec": spec})
        for (ns, name), spec in POLICIES.items():
            self.net.create_namespaced_network_policy(ns, {"metadata": {"name": name},
                                                           "spec": spec})

    def phase3(self) -> None:
        for ns, name in PHASE3_DELETE:
            self.core.delete_namespaced_pod(name, ns)
        every = {**PHASE1_PODS, **PHASE2_PODS}
        for ns, name in PHASE3_RECREATE:
            labels, ports = every[(ns, name)]
            self.core.create_namespaced_pod(ns, _pod(name, labels, ports))
        for (ns, name), labels in PHASE3_RELABEL.items():
            self.core.patch_namespaced_pod(name, ns, {"metadata": {"labels": labels}})
        self._pods(PHASE3_PODS)

    def run(self) -> None:
        self.phase1()
        self.phase2()
        self.phase3()

    def poison(self) -> None:
        """Objects ckm must refuse, each for its own reason (R9)."""
        self.core.create_namespaced_pod("alpha", _pod("slash-app", {APP: "a/b"}))
        self.core.create_namespaced_pod("alpha", _pod("long-app", {APP: "x" * 63}))
        self.core.create_namespace({"metadata": {"name": "badns", "annotations": {
            "opencontrail.kubernetes.isolated": "maybe"}}})
        self.net.create_namespaced_network_policy("beta", {
            "metadata": {"name": "bad-except"}, "spec": {
                "podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16",
                                                   "except": ["192.168.0.0/24"]}}]}]}})
        self.net.create_namespaced_ingress("alpha", {
            "metadata": {"name": "to-nowhere"}, "spec": {"defaultBackend": {
                "service": {"name": "missing", "port": {"number": 80}}}}})

    def events_for(self, kind: str, namespace: str, name: str) -> list:
        where = namespace or "default"
        try:
            events = self.core.list_namespaced_event(where).items
        except ApiException:
            return []
        return [e for e in events if e.involved_object.kind == kind
                and e.involved_object.name == name]


def live_pods_after_workload() -> set[tuple[str, str]]:
    pods = set(PHASE1_PODS) | set(PHASE2_PODS) | set(PHASE3_PODS)
    return (pods - set(PHASE3_DELETE)) | set(PHASE3_RECREATE)

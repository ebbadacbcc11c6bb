"""The mixed workload of `ckm bench mixed`, as Kubernetes manifests (pure).

At scale 1: 10,000 pods in groups of five, 2,000 Services (one per group: its five pods are the
backends; every other one has a second port), 1,000 NetworkPolicies, 20 namespaces (the last 4
isolated, the first 2 with app-labelled pods). Pods carry `app: a<k>` labels that the policies
select and peer, `svc: s<g>` labels their service selects, and two named container ports.
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACES, ISOLATED, APP_LABELLED, APPS, GROUP = 20, 4, 2, 50, 5
ISOLATION = "opencontrail.org/isolation"
APP_LABEL = "opencontrail.org/name"


@dataclass(frozen=True)
class Workload:
    pods: int
    services: int
    policies: int

    @classmethod
    def scaled(cls, scale: float) -> Workload:
        pods = max(GROUP, round(10_000 * scale))
        return cls(pods=pods, services=min(pods // GROUP, max(1, round(2_000 * scale))),
                   policies=max(1, round(1_000 * scale)))

    @property
    def objects(self) -> int:
        return NAMESPACES + self.pods + self.services + self.policies

    def namespace_of_group(self, group: int) -> str:
        return f"ns{group % NAMESPACES:02d}"

    def pod_name(self, i: int) -> tuple[str, str]:
        return self.namespace_of_group(i // GROUP), f"p{i:05d}"

    def service_name(self, group: int) -> tuple[str, str]:
        return self.namespace_of_group(group), f"s{group:04d}"

    def ports_of_service(self, group: int) -> int:
        return 2 if group % 2 else 1

    @property
    def members(self) -> int:
        """Pool members when converged: one per backend and service port."""
        return sum(GROUP * self.ports_of_service(g) for g in range(self.services))


def namespaces() -> list[dict]:
    out = []
    for n in range(NAMESPACES):
        meta: dict = {"name": f"ns{n:02d}", "labels": {"team": f"t{n % 5}"}}
        if n >= NAMESPACES - ISOLATED:
            meta["annotations"] = {ISOLATION: "true"}
        out.append({"metadata": meta})
    return out


def pod(name: str, labels: dict[str, str]) -> dict:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "registry.local/app:1", "ports": [
                {"name": "http", "containerPort": 80},
                {"name": "admin", "containerPort": 8080}]}]}}


def pods(w: Workload) -> list[tuple[str, dict]]:
    out = []
    for i in range(w.pods):
        group = i // GROUP
        namespace, name = w.pod_name(i)
        labels = {"app": f"a{group % APPS}"}
        if group < w.services:
            labels["svc"] = f"s{group:04d}"
        if group % NAMESPACES < APP_LABELLED:
            labels[APP_LABEL] = f"app{group % 3}"
        out.append((namespace, pod(name, labels)))
    return out


def services(w: Workload) -> list[tuple[str, dict]]:
    out = []
    for group in range(w.services):
        namespace, name = w.service_name(group)
        ports = [{"name": "http", "port": 80, "targetPort": "http"}]
        if w.ports_of_service(group) == 2:
            ports.append({"name": "admin", "port": 8080, "targetPort": "admin"})
        out.append((namespace, {"metadata": {"name": name},
                                "spec": {"selector": {"svc": name}, "ports": ports}}))
    return out


def policies(w: Workload) -> list[tuple[str, dict]]:
    """Each selects one app of its namespace and admits another app and a team's namespaces."""
    out = []
    for j in range(w.policies):
        namespace = f"ns{j % NAMESPACES:02d}"
        out.append((namespace, {"metadata": {"name": f"np{j:04d}"}, "spec": {
            "podSelector": {"matchLabels": {"app": f"a{j % APPS}"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {
                "app": f"a{(j + 10) % APPS}"}}},
                {"namespaceSelector": {"matchLabels": {"team": f"t{j % 5}"}}}],
                "ports": [{"port": 80}, {"port": "admin"}]}]}}))
    return out


def relabelled_app(w: Workload, i: int) -> str:
    """Another app of the pod's namespace: other policies select it, so its groups change."""
    return f"a{(i // GROUP + 20) % APPS}"

"""The resource types the emulator serves: one `ResourceType` row per kind.

Everything that depends on the kind (URLs, discovery, errors' "pods" vs
"networkpolicies.networking.k8s.io", which fields live under the status subresource)
reads this table, so adding a kind is one row here plus, optionally, defaulting in
`admission.py` and columns in `tables.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str               # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status: bool = False      # has a status subresource
    categories: tuple[str, ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How error messages name the resource: `pods`, `ingresses.networking.k8s.io`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self) -> str:
        return self.qualified


CORE, DISCOVERY = "", "discovery.k8s.io"
NETWORKING, COORDINATION = "networking.k8s.io", "coordination.k8s.io"

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(CORE, "v1", "namespaces", "Namespace", False, ("ns",), status=True),
    ResourceType(CORE, "v1", "nodes", "Node", False, ("no",), status=True),
    ResourceType(CORE, "v1", "pods", "Pod", True, ("po",), status=True, categories=("all",)),
    ResourceType(CORE, "v1", "services", "Service", True, ("svc",), status=True,
                 categories=("all",)),
    ResourceType(CORE, "v1", "endpoints", "Endpoints", True, ("ep",)),
    ResourceType(CORE, "v1", "events", "Event", True, ("ev",)),
    ResourceType(DISCOVERY, "v1", "endpointslices", "EndpointSlice", True),
    ResourceType(NETWORKING, "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    ResourceType(NETWORKING, "v1", "ingresses", "Ingress", True, ("ing",), status=True),
    ResourceType(NETWORKING, "v1", "ingressclasses", "IngressClass", False),
    ResourceType(COORDINATION, "v1", "leases", "Lease", True),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {r.kind: r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_PATH.get((group, version, plural))


def groups() -> dict[str, list[str]]:
    """Named API groups (not the core group) → their versions, in table order."""
    found: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and r.version not in found.setdefault(r.group, []):
            found[r.group].append(r.version)
    return found


def in_group_version(group: str, version: str) -> list[ResourceType]:
    return [r for r in RESOURCES if r.group == group and r.version == version]

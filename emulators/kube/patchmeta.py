"""Strategic-merge-patch metadata: which lists merge, and by which key, for the kinds we serve.

The real server reads `patchStrategy` / `patchMergeKey` struct tags of the Go types. This is
the subset of those tags reachable from our kinds. A list field not named here is atomic:
a patch replaces it whole (NetworkPolicy rules, Ingress rules, EndpointSlice endpoints, ...).

`SCHEMA[type][field]` is either a type name (a nested struct or map) or a `ListMeta`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ListMeta:
    merge_key: str | None  # None: a list of primitives merged as a set
    item_type: str | None = None


SCHEMA: dict[str, dict[str, str | ListMeta]] = {
    "ObjectMeta": {
        "finalizers": ListMeta(None),
        "ownerReferences": ListMeta("uid"),
    },
    "Pod": {"metadata": "ObjectMeta", "spec": "PodSpec", "status": "PodStatus"},
    "PodSpec": {
        "containers": ListMeta("name", "Container"),
        "initContainers": ListMeta("name", "Container"),
        "ephemeralContainers": ListMeta("name", "Container"),
        "volumes": ListMeta("name"),
        "imagePullSecrets": ListMeta("name"),
        "hostAliases": ListMeta("ip"),
        "topologySpreadConstraints": ListMeta("topologyKey"),
        "schedulingGates": ListMeta("name"),
        "resourceClaims": ListMeta("name"),
    },
    "Container": {
        "ports": ListMeta("containerPort"),
        "env": ListMeta("name"),
        "volumeMounts": ListMeta("mountPath"),
        "volumeDevices": ListMeta("devicePath"),
        "resizePolicy": ListMeta("resourceName"),
    },
    "PodStatus": {
        "conditions": ListMeta("type"),
        "podIPs": ListMeta("ip"),
        "hostIPs": ListMeta("ip"),
    },
    "Service": {"metadata": "ObjectMeta", "spec": "ServiceSpec", "status": "ServiceStatus"},
    "ServiceSpec": {"ports": ListMeta("port")},
    "ServiceStatus": {"conditions": ListMeta("type")},
    "Namespace": {"metadata": "ObjectMeta", "status": "NamespaceStatus"},
    "NamespaceStatus": {"conditions": ListMeta("type")},
    "Node": {"metadata": "ObjectMeta", "spec": "NodeSpec", "status": "NodeStatus"},
    "NodeSpec": {"podCIDRs": ListMeta(None)},
    "NodeStatus": {"conditions": ListMeta("type"), "addresses": ListMeta("type")},
}


def child_type(type_name: str | None, field: str) -> str | ListMeta | None:
    """The type of `field` inside `type_name`; kinds without a schema still get ObjectMeta."""
    if type_name is None:
        return None
    fields = SCHEMA.get(type_name)
    if fields is None:
        return "ObjectMeta" if field == "metadata" and type_name[:1].isupper() else None
    return fields.get(field)

"""Which keys a Kubernetes change affects (pure; the watcher and resync both use it).

`own_keys` are the keys an object has by itself (a namespace -> `namespace/<name>`).
`affected_keys` adds the keys of *other* objects whose desired state reads this one, from
the old and the new projection, so a change that moves an object between groups
reaches both the group it left and the one it joined.
"""

from __future__ import annotations

from collections.abc import Callable

CLUSTER_SCOPED = frozenset({"Namespace", "Node"})

# kind -> (namespace, name, projection) -> keys
_OWN: dict[str, Callable[[str, str, dict | None], list[str]]] = {
    "Namespace": lambda ns, name, p: [f"namespace/{name}"],
}


def own_keys(kind: str, namespace: str, name: str, projection: dict | None) -> list[str]:
    rule = _OWN.get(kind)
    return rule(namespace, name, projection) if rule else []


def affected_keys(kind: str, namespace: str, name: str, old: dict | None,
                  new: dict | None) -> list[str]:
    keys = own_keys(kind, namespace, name, new if new is not None else old)
    return list(dict.fromkeys(keys))


def store_coordinates(kind: str, namespace: str, name: str) -> tuple[str, str, str]:
    """(kind, namespace, name) as the store files it: cluster-scoped kinds have no namespace."""
    return kind, "" if kind in CLUSTER_SCOPED else namespace, name

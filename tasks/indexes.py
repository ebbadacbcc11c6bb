"""Secondary indexes of the desired-state store (pure): the sets an object belongs to, so a
change finds the objects it affects without reading every object of a kind.

  Pod            node:<node>    the pods scheduled on a node (a Node added links their ports)
  NetworkPolicy  named-ports    the policies with a named port (a pod change re-resolves them)

The store keeps each set in the same Lua step that writes the object, so the sets and the
objects agree in every snapshot Redis ever holds.
"""

from __future__ import annotations

# Bump when `index_names` changes: the watcher rebuilds the sets of a store built by another
# version before it writes (watcher.store.DesiredStore.ensure_indexes).
VERSION = "1"
INDEXED_KINDS = ("Pod", "NetworkPolicy")
NAMED_PORTS = "named-ports"


def index_names(kind: str, projection: dict | None) -> list[str]:
    if projection is None:
        return []
    if kind == "Pod" and projection.get("node"):
        return [f"node:{projection['node']}"]
    if kind == "NetworkPolicy" and named_ports(projection):
        return [NAMED_PORTS]
    return []


def named_ports(projection: dict) -> bool:
    """Whether a policy's rules name a port (resolved per pod, so pod changes re-resolve it)."""
    spec = projection.get("spec") or {}
    return any(isinstance(port.get("port"), str) and not str(port["port"]).isdigit()
               for direction in ("ingress", "egress") for r in spec.get(direction) or []
               for port in r.get("ports") or [])


def index_key(kind: str, name: str) -> str:
    return f"ckm:by:{kind}:{name}"

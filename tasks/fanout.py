"""Which keys a Kubernetes change affects (pure; the watcher and resync both use it).

`own_keys` are the keys an object has by itself (a pod -> its port, its egress FIP, its app
network). `affected_keys` adds the keys of *other* objects whose desired state reads this one,
from both the old and the new projection, so a change that moves an object between groups
reaches the group it left and the one it joined:
  Namespace isolation changed -> every pod's port and FIP, every ingress of the namespace
  Service changed             -> its members, and the ingresses that route to it
  EndpointSlice changed       -> the members of its service (old and new)
  Node added                  -> the ports of the pods on it (their vrouter link)
  Namespace labels changed    -> the security groups of its pods (namespaceSelector peers),
                                 and policies whose named egress ports it now resolves or not
  NetworkPolicy changed       -> the groups of every pod it selects or peers (a named egress
                                 port peers the pods declaring it), old and new, and the
                                 shared peer groups it names or named
  Pod added/deleted, or its labels/ports changed
                              -> its groups; policies with named ports re-resolve
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Protocol

from tasks.indexes import NAMED_PORTS, named_ports
from tasks.ingress import backend_services
from tasks.outcomes import BadInput
from tasks.pod import APP_NAME
from tasks.policy import egress_named, parse_policy, peer_key, pod_ports

CLUSTER_SCOPED = frozenset({"Namespace", "Node"})
APP_LABEL = "opencontrail.org/name"


class Lookup(Protocol):
    """Read access to the desired-state store (see watcher.store.DesiredStore)."""

    def get(self, kind: str, namespace: str, name: str) -> dict | None: ...

    def in_namespace(self, kind: str, namespace: str) -> list[tuple[str, dict]]: ...

    def items(self, kind: str) -> Iterator[tuple[str, str, dict]]: ...

    def indexed(self, kind: str, index: str) -> list[tuple[str, str, dict]]: ...

    def versions(self, kind: str, index: str) -> list[tuple[str, str, str]]: ...


def _pod_keys(namespace: str, name: str, pod: dict | None, app_label: str) -> list[str]:
    keys = [f"port/{namespace}/{name}", f"fip/{namespace}/{name}", f"sgs/{namespace}/{name}"]
    app = ((pod or {}).get("labels") or {}).get(app_label)
    if app and APP_NAME.match(app):  # an unusable name is the port key's bad input
        keys.append(f"appnet/{namespace}/{app}")
    return keys


def own_keys(kind: str, namespace: str, name: str, projection: dict | None, *,
             app_label: str = APP_LABEL) -> list[str]:
    if kind == "Namespace":
        return [f"namespace/{name}"]
    if kind == "Pod":
        return _pod_keys(namespace, name, projection, app_label)
    if kind == "Service":
        return [f"service/{namespace}/{name}", f"members/{namespace}/{name}"]
    if kind == "EndpointSlice":
        service = (projection or {}).get("service")
        return [f"members/{namespace}/{service}"] if service else []
    if kind == "Ingress":
        return [f"ingress/{namespace}/{name}"]
    if kind == "NetworkPolicy":
        return [f"policy/{namespace}/{name}", *peer_keys(namespace, name, projection)]
    return []


def affected_keys(kind: str, namespace: str, name: str, old: dict | None, new: dict | None,
                  lookup: Lookup | None = None, *, app_label: str = APP_LABEL) -> list[str]:
    keys = own_keys(kind, namespace, name, new if new is not None else old,
                    app_label=app_label)
    if kind == "Pod" and new is not None:
        if old is not None:
            keys += _pod_keys(namespace, name, old, app_label)  # the app network it left
        if not (old or {}).get("node"):
            # not on a node until now, so it has no port: its port key makes the port with
            # the groups that exist, then enqueues its FIP and groups keys if they have work
            # (rather than runs that would only wait for the port)
            keys = [k for k in keys if not k.startswith(("fip/", "sgs/"))]
    elif kind in ("EndpointSlice", "NetworkPolicy") and old is not None:
        keys += own_keys(kind, namespace, name, old, app_label=app_label)
    if lookup is not None:
        keys += _dependents(kind, namespace, name, old, new, lookup, app_label)
    return list(dict.fromkeys(keys))


def _dependents(kind, namespace, name, old, new, lookup: Lookup, app_label) -> list[str]:
    keys: list[str] = []
    # annotations and labels can change together (and both do on create and delete)
    if kind == "Namespace" and (old or {}).get("annotations") != (new or {}).get("annotations"):
        for pod, projection in lookup.in_namespace("Pod", name):
            keys += _pod_keys(name, pod, projection, app_label)
        keys += [f"ingress/{name}/{i}" for i, _ in lookup.in_namespace("Ingress", name)]
    if kind == "Namespace" and (old or {}).get("labels") != (new or {}).get("labels"):
        keys += [f"sgs/{name}/{pod}" for pod, _ in lookup.in_namespace("Pod", name)]
        keys += _named_port_namespace(name, old, new, lookup)
    if kind == "NetworkPolicy":
        keys += policy_pods(namespace, name, old, new, lookup)
    elif kind == "Pod" and _policy_view(old) != _policy_view(new):
        keys += _named_port_policies(namespace, old, new, lookup)
    elif kind == "Service":
        keys += [f"ingress/{namespace}/{i}" for i, ingress in lookup.in_namespace(
            "Ingress", namespace) if name in backend_services(ingress)]
    elif kind == "Node" and old is None:
        keys += [f"port/{ns}/{pod}" for ns, pod, _ in lookup.indexed("Pod", f"node:{name}")]
    return keys


def peer_keys(namespace: str, name: str, projection: dict | None) -> list[str]:
    """The shared peer groups a policy names (a malformed version names none)."""
    if projection is None:
        return []
    try:
        parsed = parse_policy(namespace, name, projection)
    except BadInput:
        return []
    return [peer_key(namespace, peer) for peer in parsed.pod_peers()]


def _counts(pod: dict | None) -> bool:
    """Whether a pod has a port, so its named ports resolve (tasks.pod.managed, less the
    unmanaged namespaces, which have no policies' pods either way)."""
    return bool(pod) and bool(pod.get("node")) and not pod.get("host_network") and not \
        pod.get("finished")


def _policy_view(pod: dict | None) -> tuple | None:
    """What of a pod the policies' groups read."""
    if not _counts(pod):
        return None
    return pod.get("labels") or {}, pod.get("ports") or []


def _egress_resolves(policy_ns: str, peer, spec, pod_ns: str, pod: dict,
                     ns_labels: dict) -> bool:
    """The pod is a destination of a named egress port: the peer matches it and it declares
    the name (with the rule's protocol)."""
    return bool(pod_ports(pod).get((spec.port, spec.protocol))) and peer.matches(
        policy_ns, pod_ns, pod.get("labels") or {}, ns_labels)


def _named_port_policies(namespace: str, old: dict | None, new: dict | None,
                         lookup: Lookup) -> list[str]:
    """Policies with named ports that select the pod or resolve a name on it (before or
    after): their group variants follow how the pods they touch resolve those names."""
    pods = [p for p in (old, new) if _counts(p)]
    if not pods:
        return []
    ns_labels = (lookup.get("Namespace", "", namespace) or {}).get("labels") or {}
    keys = []
    for ns, name, parsed in _named_port_parsed(lookup):
        ingress_named = any(isinstance(spec.port, str) for r in parsed.ingress or ()
                            for spec in r.ports)
        egress = egress_named(parsed)
        if any((ingress_named and parsed.selects(namespace, pod.get("labels") or {})) or any(
                _egress_resolves(ns, peer, spec, namespace, pod, ns_labels)
                for peer, spec in egress) for pod in pods):
            keys.append(f"policy/{ns}/{name}")
    return keys


def _named_port_namespace(namespace: str, old: dict | None, new: dict | None,
                          lookup: Lookup) -> list[str]:
    """Policies whose named egress ports the namespace's pods start or stop resolving as its
    labels change (a namespaceSelector peer)."""
    before, after = ((p or {}).get("labels") or {} for p in (old, new))
    pods = [p for _, p in lookup.in_namespace("Pod", namespace) if _counts(p)]
    keys = []
    for ns, name, parsed in _named_port_parsed(lookup):
        if any(_egress_resolves(ns, peer, spec, namespace, pod, before) !=
               _egress_resolves(ns, peer, spec, namespace, pod, after)
               for peer, spec in egress_named(parsed) for pod in pods):
            keys.append(f"policy/{ns}/{name}")
    return keys


def _named_port_parsed(lookup: Lookup):
    """(namespace, name, parsed) of the stored policies with named ports that compile. Each
    version is read and parsed once: every pod event of the watcher asks again, and reads
    only the versions' fingerprints."""
    for ns, name, version in lookup.versions("NetworkPolicy", NAMED_PORTS):
        parsed = _PARSED.get((ns, name, version), _MISSING)
        if parsed is _MISSING:
            projection = lookup.get("NetworkPolicy", ns, name)
            parsed = None
            if projection is not None and named_ports(projection):
                with contextlib.suppress(BadInput):
                    parsed = parse_policy(ns, name, projection)
            _PARSED.put((ns, name, version), parsed)
        if parsed is not None:
            yield ns, name, parsed


class _Cache:
    """A bounded, thread-safe map (the watcher's reflectors share it)."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, {}, threading.Lock()

    def get(self, key, default=None):
        with self.lock:
            return self.items.get(key, default)

    def put(self, key, value) -> None:
        with self.lock:
            if len(self.items) >= self.size:
                self.items.clear()  # versions of the past: the live ones come back at once
            self.items[key] = value


_MISSING = object()
_PARSED = _Cache(4096)


def policy_pods(namespace: str, name: str, old: dict | None, new: dict | None,
                 lookup: Lookup) -> list[str]:
    """Pods whose groups a policy change can alter: selected or peered, before or after."""
    versions = []
    for projection in (old, new):
        if projection is not None:
            with contextlib.suppress(BadInput):  # a malformed version selects nothing
                versions.append(parse_policy(namespace, name, projection))
    if not versions:
        return []
    ns_labels = {n: (p.get("labels") or {}) for _, n, p in lookup.items("Namespace")}
    named = [(v, egress_named(v)) for v in versions]
    keys = []
    for pod_ns in _reachable_namespaces(named, ns_labels):
        its_ns = ns_labels.get(pod_ns, {})
        for pod, projection in lookup.in_namespace("Pod", pod_ns):
            labels = projection.get("labels") or {}
            if any(v.selects(pod_ns, labels) or any(
                    peer.matches(v.namespace, pod_ns, labels, its_ns)
                    for peer in v.pod_peers()) or any(
                    _egress_resolves(v.namespace, peer, spec, pod_ns, projection, its_ns)
                    for peer, spec in egress) for v, egress in named):
                keys.append(f"sgs/{pod_ns}/{pod}")
    return keys


def _reachable_namespaces(named, ns_labels: dict[str, dict]) -> list[str]:
    """The namespaces whose pods a policy can select or peer (named egress ports included):
    its own, and those a namespaceSelector of a peer matches (a pod of a namespace not stored
    yet is reached when its Namespace arrives: its labels change from none)."""
    found = set()
    for v, egress in named:
        found.add(v.namespace)
        for peer in [*v.pod_peers(), *(peer for peer, _ in egress)]:
            if peer.namespaces is not None:
                found.update(n for n, labels in ns_labels.items()
                             if peer.namespaces.matches(labels))
    return sorted(found)


def store_coordinates(kind: str, namespace: str, name: str) -> tuple[str, str, str]:
    """(kind, namespace, name) as the store files it: cluster-scoped kinds have no namespace."""
    return kind, "" if kind in CLUSTER_SCOPED else namespace, name

"""NetworkPolicy -> security groups, with the exact Kubernetes semantics (contrail-model.md).

Each policy owns:
- its *policy group* (`<cluster>-np-<policy>`), attached to the pods it selects, holding its
  ingress rules (peer = source) and egress rules (peer = destination); when ingress ports are
  named, one variant per way the selected pods resolve those names;
- per pod peer (`podSelector` / `namespaceSelector`), a rule-less *peer group* attached to the
  pods that peer matches, so rules name peers by group and pod or label churn changes only
  VMI -> group refs, never rules. Peer groups are shared: every policy naming the same peer
  selectors names the same group (scoped to the policy's namespace for a podSelector alone, to
  the cluster with a namespaceSelector), owned by its own `peer/...` key, so a port carries
  one group per distinct peer it matches, not one per policy. Egress to a named port splits
  a peer group by the number the peer pods resolve it to (those variants stay per policy).
A pod's group set is the union of the groups of the policies selecting it and the peer groups
matching it, plus the allow-all group of each direction no policy isolates it in.
`ipBlock.except` becomes a CIDR set difference: no deny rule is ever emitted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass, field

from config.settings import Settings
from tasks import naming
from tasks.model import Obj, Ref
from tasks.namespace import project
from tasks.outcomes import BadInput
from tasks.security import ANYWHERE, allow_all_egress, allow_all_ingress, entries, rule
from tasks.selectors import Selector, parse

KIND = "NetworkPolicy"
PEER_KIND = "NetworkPolicyPeer"  # owner kind of the shared peer groups
PROTOCOLS = ("TCP", "UDP", "SCTP")
IANA_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


@dataclass(frozen=True)
class Peer:
    pods: Selector | None
    namespaces: Selector | None
    cidrs: tuple[str, ...] = ()
    block: str = field(default="", compare=False)  # the ipBlock as written, for explanations

    @property
    def is_pods(self) -> bool:
        return not self.cidrs

    def key(self) -> str:
        return (f"pods[{self.pods.key() if self.pods else '-'}]"
                f"ns[{self.namespaces.key() if self.namespaces else '-'}]")

    def matches(self, policy_ns: str, pod_ns: str, pod_labels: dict, ns_labels: dict) -> bool:
        if not self.is_pods:
            return False
        if self.namespaces is None:
            return pod_ns == policy_ns and (self.pods is None or self.pods.matches(pod_labels))
        return self.namespaces.matches(ns_labels) and (
            self.pods is None or self.pods.matches(pod_labels))


@dataclass(frozen=True)
class PortSpec:
    protocol: str
    port: int | str | None   # None: every port of the protocol
    end_port: int | None = None

    def resolve(self, ports: dict[tuple[str, str], int]) -> tuple[int, int] | None:
        """(start, end) for one pod; a named port the pod lacks resolves to None."""
        if self.port is None:
            return 0, 65535
        if isinstance(self.port, str):
            number = ports.get((self.port, self.protocol))
            return (number, number) if number else None
        return self.port, self.end_port or self.port


@dataclass(frozen=True)
class Rule:
    peers: tuple[Peer, ...] | None  # None: every source/destination
    ports: tuple[PortSpec, ...]     # empty: every port and protocol


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    uid: str
    selector: Selector
    ingress: tuple[Rule, ...] | None  # None: not of type Ingress
    egress: tuple[Rule, ...] | None

    def selects(self, pod_ns: str, labels: dict) -> bool:
        return pod_ns == self.namespace and self.selector.matches(labels)

    def pod_peers(self) -> list[Peer]:
        seen: dict[str, Peer] = {}
        for rules in (self.ingress or (), self.egress or ()):
            for r in rules:
                for peer in r.peers or ():
                    if peer.is_pods:
                        seen.setdefault(peer.key(), peer)
        return list(seen.values())


# --- parsing ----------------------------------------------------------------------------------
def _cidrs(block: dict, where: str) -> tuple[str, ...]:
    try:
        base = ipaddress.ip_network(block.get("cidr", ""), strict=False)
        if base.version != 4:
            raise ValueError("only IPv4 is supported")
        nets = [base]
        for i, text in enumerate(block.get("except") or []):
            cut = ipaddress.ip_network(text, strict=False)
            if not cut.subnet_of(base):
                raise ValueError(f"except[{i}] {text} is not inside {base}")
            nets = [part for net in nets for part in (
                net.address_exclude(cut) if cut.subnet_of(net) else
                ([] if net.subnet_of(cut) else [net]))]
    except ValueError as exc:
        raise BadInput(f"{where}.ipBlock: {exc}") from None
    return tuple(str(n) for n in ipaddress.collapse_addresses(nets))


def _peer(entry: dict, where: str) -> Peer:
    if entry.get("ipBlock") is not None:
        block = entry["ipBlock"]
        cuts = [str(c) for c in block.get("except") or []]
        # short: each CIDR the except leaves is a rule, explained with this text
        written = str(block.get("cidr", "")) + (
            f" except {', '.join(cuts[:3])}" + (f" and {len(cuts) - 3} more" if len(cuts) > 3
                                                 else "") if cuts else "")
        return Peer(None, None, _cidrs(block, where), written)
    pods = parse(entry["podSelector"], f"{where}.podSelector") if "podSelector" in entry \
        else None
    namespaces = (parse(entry["namespaceSelector"], f"{where}.namespaceSelector")
                  if "namespaceSelector" in entry else None)
    if pods is None and namespaces is None:
        raise BadInput(f"{where}: a peer needs podSelector, namespaceSelector or ipBlock")
    return Peer(pods, namespaces)


def _port(entry: dict, where: str) -> PortSpec:
    protocol = entry.get("protocol") or "TCP"
    if protocol not in PROTOCOLS:
        raise BadInput(f"{where}: protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    port, end = entry.get("port"), entry.get("endPort")
    if port is None and end is not None:  # the API server refuses it too
        raise BadInput(f"{where}: endPort needs a port")
    if isinstance(port, str) and not port.isdigit():
        if not IANA_NAME.match(port) or "--" in port:
            raise BadInput(f"{where}: port name {port!r} is not a valid IANA service name")
        if end is not None:
            raise BadInput(f"{where}: endPort needs a numeric port")
        return PortSpec(protocol, port)
    if port is not None:
        port = int(port)
        if not 1 <= port <= 65535 or (end is not None and not port <= int(end) <= 65535):
            raise BadInput(f"{where}: port {port}..{end} is out of range")
    return PortSpec(protocol, port, int(end) if end is not None else None)


def _rules(entries: list | None, peer_key: str, where: str) -> tuple[Rule, ...]:
    out = []
    for i, entry in enumerate(entries or []):
        here = f"{where}[{i}]"
        peers = entry.get(peer_key)
        out.append(Rule(
            tuple(_peer(p, f"{here}.{peer_key}[{j}]") for j, p in enumerate(peers))
            if peers else None,
            tuple(_port(p, f"{here}.ports[{j}]") for j, p in enumerate(entry.get("ports") or []))))
    return tuple(out)


def parse_policy(namespace: str, name: str, projection: dict) -> Policy:
    spec = projection.get("spec") or {}
    types = spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress")
                                        else ["Ingress"])
    unknown = set(types) - {"Ingress", "Egress"}
    if unknown:
        raise BadInput(f"spec.policyTypes: unknown {sorted(unknown)}")
    return Policy(
        namespace, name, projection.get("uid", ""),
        parse(spec.get("podSelector") or {}, "spec.podSelector"),
        _rules(spec.get("ingress"), "from", "spec.ingress") if "Ingress" in types else None,
        _rules(spec.get("egress"), "to", "spec.egress") if "Egress" in types else None)


# --- named ports ------------------------------------------------------------------------------
def pod_ports(pod: dict) -> dict[tuple[str, str], int]:
    return {(p["name"], p.get("protocol") or "TCP"): p["port"]
            for p in pod.get("ports") or [] if p.get("name")}


def ingress_resolution(policy: Policy, pod: dict) -> tuple:
    """How this pod resolves the named ports of the policy's ingress rules."""
    ports = pod_ports(pod)
    names = sorted({(s.port, s.protocol) for r in policy.ingress or () for s in r.ports
                    if isinstance(s.port, str)})
    return tuple((n, p, ports.get((n, p))) for n, p in names)


# "to: everyone" with a named port can only mean pods (a name resolves on a pod).
ALL_PODS = Peer(Selector(), Selector())


def egress_named(policy: Policy) -> list[tuple[Peer, PortSpec]]:
    """(pod peer, named port spec) of the egress rules: named ports resolve per destination
    pod, so each becomes peer-group variants by number."""
    return [(peer, spec) for _, _, peer, spec in _egress_named_where(policy)]


# --- Contrail objects -------------------------------------------------------------------------
def _group(settings: Settings, policy: Policy, suffix: str,
           explained: list[tuple[dict, str]], notes: dict[str, str] | None = None) -> Obj:
    proj = project(settings, policy.namespace)
    name = f"{settings.cluster_name}-np-{policy.name}{suffix}"
    group_uuid = naming.object_uuid(settings.cluster_name, KIND, policy.uid, f"group{suffix}")
    props, why = entries(group_uuid, explained)
    return Obj("security-group", group_uuid, (*proj.fq_name, name), "project", props=props,
               annotations={**naming.owner(settings.cluster_name, KIND, policy.namespace,
                                           policy.name, policy.uid), **why, **(notes or {})})


def _notes(policy: Policy, resolution: tuple, numbers: dict) -> dict[str, str]:
    """What `ckm reach` needs to explain a denial by a policy group: the directions it
    isolates, and the named ports of its rules that resolve nowhere (so make no rule)."""
    named = {(n, p): num for n, p, num in resolution}
    unresolved: dict[str, list[str]] = {"ingress": [], "egress": []}
    for i, r in enumerate(policy.ingress or ()):
        for j, spec in enumerate(r.ports):
            if isinstance(spec.port, str) and not named.get((spec.port, spec.protocol)):
                unresolved["ingress"].append(
                    f"{_where(policy, 'ingress', i)} ports[{j}] {spec.port!r}/{spec.protocol}: "
                    "this pod declares no such port, so no rule")
    for i, r in enumerate(policy.egress or ()):
        for j, spec in enumerate(r.ports):
            if not isinstance(spec.port, str):
                continue
            for peer in (r.peers if r.peers is not None else (ALL_PODS,)):
                text = (f"{_where(policy, 'egress', i)} to {describe_peer(policy.namespace, peer)}"
                        f", ports[{j}] {spec.port!r}/{spec.protocol}")
                if not peer.is_pods:
                    unresolved["egress"].append(
                        f"{text}: a port name resolves on pods, not on addresses, so no rule")
                elif not numbers.get((peer.key(), spec.port, spec.protocol)):
                    unresolved["egress"].append(
                        f"{text}: no pod it names declares that port, so no rule")
    isolates = [d for d, rules in (("ingress", policy.ingress), ("egress", policy.egress))
                if rules is not None]
    return {"isolates": ",".join(isolates),
            "unresolved": json.dumps({d: t for d, t in unresolved.items() if t},
                                     sort_keys=True)}


def peer_group(settings: Settings, policy: Policy, peer: Peer, variant: str) -> Obj:
    """A named-port variant of a peer group (owned by the policy)."""
    suffix = f"-peer-{naming.short_hash(peer.key() + variant)}"
    return _group(settings, policy, suffix, [], {"isolates": ""})  # membership, not isolation


def _peer_scope(policy_namespace: str, peer: Peer) -> str:
    """A podSelector alone means pods of the policy's namespace; a namespaceSelector does not
    depend on where the policy lives, so its group is the cluster's."""
    return policy_namespace if peer.namespaces is None else ""


def _peer_hash(peer: Peer) -> str:
    # 64 bits: two peers of one scope sharing a hash would share a key and a group name
    return hashlib.sha1(peer.key().encode()).hexdigest()[:16]


def peer_key(policy_namespace: str, peer: Peer) -> str:
    """The work key owning the shared group of this peer: `peer/ns/hash` or `peer/hash`."""
    scope = _peer_scope(policy_namespace, peer)
    return "/".join(p for p in ("peer", scope, _peer_hash(peer)) if p)


def shared_peer_group(settings: Settings, policy_namespace: str, peer: Peer) -> Obj:
    """The rule-less group standing for the pods one peer matches, shared by every policy
    naming the same selectors; its `selector` annotation says which."""
    scope = _peer_scope(policy_namespace, peer)
    short = _peer_hash(peer)
    proj = project(settings, scope or "default")
    return Obj("security-group",
               naming.object_uuid(settings.cluster_name, PEER_KIND, scope, peer.key()),
               (*proj.fq_name, f"{settings.cluster_name}-peer-{short}"), "project",
               props={"security_group_entries": {"policy_rule": []}},
               annotations={**naming.owner(settings.cluster_name, PEER_KIND, scope, short),
                            "selector": peer.key()})


def shared_peers(settings: Settings, policy: Policy) -> list[tuple[str, Obj]]:
    """(owning key, group) of every shared peer group the policy's rules name."""
    return [(peer_key(policy.namespace, peer),
             shared_peer_group(settings, policy.namespace, peer)) for peer in policy.pod_peers()]


def _fq(obj: Obj) -> str:
    return ":".join(obj.fq_name)


def describe_peer(policy_namespace: str, peer: Peer) -> str:
    if not peer.is_pods:
        return f"ipBlock {peer.block or ', '.join(peer.cidrs)}"
    pods = f"pods [{peer.pods.key()}]" if peer.pods and not peer.pods.everything \
        else "all pods"
    if peer.namespaces is None:
        return f"{pods} of namespace {policy_namespace}"
    if peer.namespaces.everything:
        return f"{pods} of every namespace"
    return f"{pods} of namespaces [{peer.namespaces.key()}]"


def _addresses(settings: Settings, policy: Policy, r: Rule) -> list[tuple[dict, str]]:
    """(rule peer, its description) of one rule's peers."""
    if r.peers is None:
        return [(ANYWHERE, "everyone")]
    out = []
    for peer in r.peers:
        text = describe_peer(policy.namespace, peer)
        if peer.is_pods:
            out.append(({"security_group": _fq(
                shared_peer_group(settings, policy.namespace, peer))}, text))
        else:
            for cidr in peer.cidrs:
                net = ipaddress.IPv4Network(cidr)
                out.append(({"subnet": {"ip_prefix": str(net.network_address),
                                        "ip_prefix_len": net.prefixlen}}, text))
    return out


def _span_text(spec: PortSpec, span: tuple[int, int]) -> str:
    protocol = spec.protocol.lower()
    if spec.port is None:
        return f"every {protocol} port"
    numbers = str(span[0]) if span[0] == span[1] else f"{span[0]}-{span[1]}"
    return f"{protocol}/{numbers}"


def _port_rules(ingress: bool, where: str, peers: list[tuple[dict, str]],
                specs: list[tuple[int, PortSpec]], resolve) -> list[tuple[dict, str]]:
    side = "from" if ingress else "to"
    if not specs:
        return [(rule(ingress=ingress, peer=p), f"{where} {side} {text}, every port")
                for p, text in peers]
    out = []
    for j, spec in specs:
        span = resolve(spec)
        if span is None:
            continue
        port = _span_text(spec, span)
        if isinstance(spec.port, str):
            port += f" (port name {spec.port!r} on this pod)"
        for p, text in peers:
            out.append((rule(ingress=ingress, peer=p, protocol=spec.protocol.lower(),
                             ports={"start_port": span[0], "end_port": span[1]}),
                        f"{where} {side} {text}, ports[{j}] {port}"))
    return out


def _where(policy: Policy, direction: str, i: int) -> str:
    return f"NetworkPolicy {policy.namespace}/{policy.name} {direction}[{i}]"


def policy_rules(settings: Settings, policy: Policy, resolution: tuple
                 ) -> list[tuple[dict, str]]:
    """(rule, why) pairs of the policy group for pods resolving its ingress names so."""
    named = {(n, p): num for n, p, num in resolution}
    rules: list[tuple[dict, str]] = []
    for i, r in enumerate(policy.ingress or ()):
        rules += _port_rules(True, _where(policy, "ingress", i), _addresses(settings, policy, r),
                             list(enumerate(r.ports)),
                             lambda s: s.resolve(named) if isinstance(s.port, str)
                             else s.resolve({}))
    for i, r in enumerate(policy.egress or ()):
        if r.ports and all(isinstance(spec.port, str) for spec in r.ports):
            continue  # only named ports: they resolve per destination (see peer variants)
        numeric = [(j, spec) for j, spec in enumerate(r.ports)
                   if not isinstance(spec.port, str)]
        rules += _port_rules(False, _where(policy, "egress", i),
                             _addresses(settings, policy, r), numeric, lambda s: s.resolve({}))
    return rules


def _egress_named_where(policy: Policy):
    """(where, port index, peer, spec) of each named egress port and each pod peer it
    applies to."""
    for i, r in enumerate(policy.egress or ()):
        for j, spec in enumerate(r.ports):
            if isinstance(spec.port, str):
                for peer in (r.peers if r.peers is not None else (ALL_PODS,)):
                    if peer.is_pods:
                        yield _where(policy, "egress", i), j, peer, spec


def egress_named_rules(settings: Settings, policy: Policy, numbers: dict
                       ) -> list[tuple[dict, str]]:
    """Rules for egress to named ports: `numbers` maps (peer key, name, protocol) to the set of
    numbers the matching peer pods resolve it to."""
    rules = []
    for where, j, peer, spec in _egress_named_where(policy):
        for number in sorted(numbers.get((peer.key(), spec.port, spec.protocol), ())):
            group = peer_group(settings, policy, peer, f":{spec.port}/{spec.protocol}={number}")
            rules.append((rule(ingress=False, peer={"security_group": _fq(group)},
                               protocol=spec.protocol.lower(),
                               ports={"start_port": number, "end_port": number}),
                          f"{where} to {describe_peer(policy.namespace, peer)}, ports[{j}] "
                          f"{spec.protocol.lower()}/{number} (port name {spec.port!r} on the "
                          f"destination pods that declare it as {number})"))
    return rules


def _resolution_suffix(resolution: tuple) -> str:
    return f"-{naming.short_hash(repr(resolution))}" if resolution else ""


def groups(settings: Settings, policy: Policy, selected: list[dict],
           peer_numbers: dict) -> list[Obj]:
    """Every group the policy owns: named-port peer variants first (rules name them), then the
    policy group variants for the resolutions its selected pods need. The shared peer groups
    its rules name are their `peer/...` keys' (see `shared_peers`)."""
    objs = []
    for peer, spec in egress_named(policy):
        for number in sorted(peer_numbers.get((peer.key(), spec.port, spec.protocol), ())):
            objs.append(peer_group(settings, policy, peer,
                                   f":{spec.port}/{spec.protocol}={number}"))
    resolutions = {ingress_resolution(policy, pod) for pod in selected} or {
        ingress_resolution(policy, {})}
    extra = egress_named_rules(settings, policy, peer_numbers)
    for resolution in sorted(resolutions, key=repr):
        objs.append(_group(settings, policy, _resolution_suffix(resolution),
                           policy_rules(settings, policy, resolution) + extra,
                           _notes(policy, resolution, peer_numbers)))
    return list({o.uuid: o for o in objs}.values())


def peer_numbers(policy: Policy, pods: list[tuple[str, dict, dict]]) -> dict:
    """(peer key, port name, protocol) -> numbers that matching pods resolve the name to.
    `pods` is (namespace, pod projection, namespace labels) of every candidate pod."""
    out: dict = {}
    for peer, spec in egress_named(policy):
        for pod_ns, pod, ns_labels in pods:
            if peer.matches(policy.namespace, pod_ns, pod.get("labels") or {}, ns_labels):
                number = pod_ports(pod).get((spec.port, spec.protocol))
                if number:
                    out.setdefault((peer.key(), spec.port, spec.protocol), set()).add(number)
    return out


class PolicyIndex:
    """Policies arranged so that a pod only looks at the ones that could concern it: those of
    its namespace (selection, and peers scoped to it) and the namespaceSelector peers whose
    selector matches its namespace (worked out once per set of namespace labels). Group
    objects are built once."""

    def __init__(self, settings: Settings, policies: list[Policy]):
        self.settings = settings
        self.by_namespace: dict[str, list[Policy]] = {}
        self.peers: dict[str, tuple[Peer, Obj]] = {}  # peer key -> shared group
        self.local: dict[str, list[tuple[Peer, Obj, str]]] = {}
        self.cluster_wide: list[tuple[Peer, Obj, str]] = []
        self.named: list[tuple[Policy, Peer, PortSpec, str]] = []
        self._groups: dict[tuple[str, str], Obj] = {}
        self._by_labels: dict[tuple, list[tuple[Peer, Obj, str]]] = {}
        for policy in policies:
            owner = f"policy/{policy.namespace}/{policy.name}"
            self.by_namespace.setdefault(policy.namespace, []).append(policy)
            for peer in policy.pod_peers():  # each distinct peer once, whoever names it
                key = peer_key(policy.namespace, peer)
                if key in self.peers:
                    continue
                group = shared_peer_group(settings, policy.namespace, peer)
                self.peers[key] = (peer, group)
                entry = (peer, group, key)
                if peer.namespaces is None:
                    self.local.setdefault(policy.namespace, []).append(entry)
                else:
                    self.cluster_wide.append(entry)
            self.named += [(policy, peer, spec, owner) for peer, spec in egress_named(policy)]

    def _selection_group(self, policy: Policy, suffix: str) -> Obj:
        key = (policy.uid or policy.name, suffix)
        if key not in self._groups:
            self._groups[key] = _group(self.settings, policy, suffix, [])
        return self._groups[key]

    def _peers_of_namespace(self, ns_labels: dict) -> list[tuple[Peer, Obj, str]]:
        key = tuple(sorted(ns_labels.items()))
        if key not in self._by_labels:
            self._by_labels[key] = [e for e in self.cluster_wide
                                    if e[0].namespaces.matches(ns_labels)]
        return self._by_labels[key]

    def pod_groups(self, pod_ns: str, pod: dict, ns_labels: dict
                   ) -> list[tuple[Obj, str | None]]:
        labels = pod.get("labels") or {}
        chosen: list[tuple[Obj, str | None]] = []
        ingress_isolated = egress_isolated = False
        for policy in self.by_namespace.get(pod_ns, ()):
            if policy.selector.matches(labels):
                ingress_isolated |= policy.ingress is not None
                egress_isolated |= policy.egress is not None
                suffix = _resolution_suffix(ingress_resolution(policy, pod))
                chosen.append((self._selection_group(policy, suffix),
                               f"policy/{policy.namespace}/{policy.name}"))
        for peer, group, owner in [*self.local.get(pod_ns, ()),
                                   *self._peers_of_namespace(ns_labels)]:
            if peer.pods is None or peer.pods.matches(labels):
                chosen.append((group, owner))
        ports = pod_ports(pod) if self.named else {}
        for policy, peer, spec, owner in self.named:
            number = ports.get((spec.port, spec.protocol))
            if number and peer.matches(policy.namespace, pod_ns, labels, ns_labels):
                chosen.append((peer_group(self.settings, policy, peer,
                                          f":{spec.port}/{spec.protocol}={number}"), owner))
        if not ingress_isolated:
            chosen.append((allow_all_ingress(self.settings), None))
        if not egress_isolated:
            chosen.append((allow_all_egress(self.settings), None))
        unique = {o.uuid: (o, owner) for o, owner in chosen}
        return [unique[u] for u in sorted(unique)]


def pod_groups(settings: Settings, pod_ns: str, pod: dict, ns_labels: dict,
               policies: list[Policy]) -> list[tuple[Obj, str | None]]:
    """The groups one pod's port carries (the "recompute SGs" result), each with the key of
    the policy that owns it (None for the cluster's allow-all groups)."""
    return PolicyIndex(settings, policies).pod_groups(pod_ns, pod, ns_labels)


def refs_of(chosen: list[tuple[Obj, str | None]]) -> tuple[Ref, ...]:
    return tuple(Ref(o.fq_name, o.uuid) for o, _ in chosen)

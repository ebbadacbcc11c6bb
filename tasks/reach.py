"""Reachability from the live Contrail configuration (contrail-model.md, "Reachability").

A new connection from pod A (its port) to address X on port/protocol is allowed iff:
1. X resolves to a target: a pod instance-ip (target = that port, same port number) or a
   service VIP floating-ip with a port mapping for the port (targets = the backend ports it
   refs, translated port);
2. the network lets A reach it: same virtual network; or X is on cluster-network and A is on
   it or has an egress floating-ip on it (a pod on an isolated/app network is reachable by its
   own address only from its own network);
3. the security groups allow it: A's egress rules and the target's ingress rules (a peer is
   matched by address or by group membership; a source with an egress FIP keeps its groups).
Pure: it reads a `Snapshot` of Contrail objects and never talks to anything.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from dataclasses import dataclass, field

PROTOCOL_NUMBERS = {"tcp": "6", "udp": "17", "sctp": "132", "icmp": "1"}


@dataclass
class Snapshot:
    """Contrail objects by type, each a list of full objects (list with detail=True)."""

    objects: dict[str, list[dict]]

    def __post_init__(self):
        self.by_uuid = {o["uuid"]: o for objs in self.objects.values() for o in objs}

    def of(self, type_: str) -> list[dict]:
        return self.objects.get(type_, [])

    def get(self, uuid: str) -> dict | None:
        return self.by_uuid.get(uuid)


@dataclass
class Verdict:
    allowed: bool
    path: str = ""
    reasons: list[str] = field(default_factory=list)
    rule: str = ""     # both below, in one line
    egress: str = ""   # the source's rule that lets it out, and where ckm says it comes from
    ingress: str = ""  # the target's rule that lets it in


def _refs(obj: dict | None, field_name: str) -> list[str]:
    return [r["uuid"] for r in (obj or {}).get(field_name) or []]


def _network_of_port(snap: Snapshot, vmi: str) -> str | None:
    refs = _refs(snap.get(vmi), "virtual_network_refs")
    return refs[0] if refs else None


def _addresses_of_port(snap: Snapshot, vmi: str) -> list[str]:
    return [i["instance_ip_address"] for i in snap.of("instance-ip")
            if vmi in _refs(i, "virtual_machine_interface_refs") and i.get("instance_ip_address")]


def _egress_fips(snap: Snapshot, vmi: str) -> list[dict]:
    return [f for f in snap.of("floating-ip")
            if vmi in _refs(f, "virtual_machine_interface_refs")
            and f.get("floating_ip_traffic_direction") == "egress"]


def _fip_network(snap: Snapshot, fip: dict) -> str | None:
    """A floating IP lives on its pool's network, or (an ECMP VIP) on its instance-ip's."""
    parent = snap.get(fip.get("parent_uuid", ""))
    if parent is None:
        return None
    if parent.get("parent_type") == "virtual-network" or fip.get("parent_type") == (
            "floating-ip-pool"):
        return parent.get("parent_uuid")
    return (_refs(parent, "virtual_network_refs") or [None])[0]


@dataclass(frozen=True)
class Target:
    vmi: str
    port: int
    network: str | None  # the network X lives on
    via: str


def resolve(snap: Snapshot, address: str, port: int, protocol: str) -> list[Target]:
    out = []
    for iip in snap.of("instance-ip"):
        if iip.get("instance_ip_address") != address:
            continue
        network = (_refs(iip, "virtual_network_refs") or [None])[0]
        for vmi in _refs(iip, "virtual_machine_interface_refs"):
            port_obj = snap.get(vmi) or {}
            if port_obj.get("virtual_machine_interface_device_owner") == "K8S:LOADBALANCER":
                continue  # a VIP port: services are reached through their ECMP floating IP
            out.append(Target(vmi, port, network, f"instance-ip {address}"))
    for fip in snap.of("floating-ip"):
        if fip.get("floating_ip_address") != address or fip.get(
                "floating_ip_traffic_direction") == "egress":
            continue
        mapped = _map_port(fip, port, protocol)
        if mapped is None:
            continue
        for vmi in _refs(fip, "virtual_machine_interface_refs"):
            out.append(Target(vmi, mapped, _fip_network(snap, fip),
                              f"service VIP {address}:{port} -> {mapped}"))
    return out


def _map_port(fip: dict, port: int, protocol: str) -> int | None:
    if not fip.get("floating_ip_port_mappings_enable"):
        return port
    for mapping in (fip.get("floating_ip_port_mappings") or {}).get("port_mappings") or []:
        if mapping.get("src_port") == port and str(mapping.get("protocol", "")).lower() in (
                protocol, PROTOCOL_NUMBERS.get(protocol)):
            return mapping.get("dst_port")
    return None


def _network_path(snap: Snapshot, src: str, target: Target, cluster_net: str) -> str | None:
    mine = _network_of_port(snap, src)
    if target.network is not None and mine == target.network:
        return "same virtual network"
    if target.network == cluster_net:
        if mine == cluster_net:
            return "both on cluster-network"
        if any(_fip_network(snap, f) == cluster_net for f in _egress_fips(snap, src)):
            return "egress floating IP on cluster-network"
    return None


def _groups(snap: Snapshot, vmi: str) -> list[dict]:
    return [g for g in (snap.get(u) for u in _refs(snap.get(vmi), "security_group_refs")) if g]


def _fq(obj: dict) -> str:
    return ":".join(obj["fq_name"])


def _peer_matches(peer: dict, addresses: list[str], groups: set[str], own_group: str) -> bool:
    if peer.get("security_group"):
        name = own_group if peer["security_group"] == "local" else peer["security_group"]
        return name in groups
    subnet = peer.get("subnet")
    if subnet:
        net = ipaddress.IPv4Network(f"{subnet['ip_prefix']}/{subnet['ip_prefix_len']}")
        return any(ipaddress.IPv4Address(a) in net for a in addresses)
    for item in (peer.get("subnet_list") or []):
        net = ipaddress.IPv4Network(f"{item['ip_prefix']}/{item['ip_prefix_len']}")
        if any(ipaddress.IPv4Address(a) in net for a in addresses):
            return True
    return False


def _notes(obj: dict) -> dict[str, str]:
    return {p["key"]: p["value"]
            for p in (obj.get("annotations") or {}).get("key_value_pair") or []}


def _why(group: dict, rule: dict) -> str:
    """Where ckm says the rule comes from (its group's `rules` annotation: explanation ->
    rule uuids), if it says."""
    try:
        whys = json.loads(_notes(group).get("rules") or "{}")
    except ValueError:
        return ""
    wanted = rule.get("rule_uuid")
    return next((text for text, uuids in whys.items() if wanted in uuids), "") if (
        wanted and isinstance(whys, dict)) else ""


def _text(group: dict, rule: dict, ingress: bool) -> str:
    return (f"{group['fq_name'][-1]}: "
            f"{_why(group, rule) or ('an ingress rule' if ingress else 'an egress rule')}")


def _rules(snap: Snapshot, vmi: str, ingress: bool):
    """(group, rule, remote peers) of the port's rules for one direction."""
    for group in _groups(snap, vmi):
        for rule in (group.get("security_group_entries") or {}).get("policy_rule") or []:
            local = rule.get("dst_addresses" if ingress else "src_addresses") or []
            if any(a.get("security_group") == "local" for a in local):
                yield group, rule, rule.get("src_addresses" if ingress else "dst_addresses") or []


def _port_ok(rule: dict, port: int, protocol: str) -> bool:
    return rule.get("protocol") in ("any", protocol, PROTOCOL_NUMBERS.get(protocol)) and any(
        p.get("start_port", 0) <= port <= p.get("end_port", 65535)
        for p in rule.get("dst_ports") or [{}])


def _allows(snap: Snapshot, vmi: str, *, ingress: bool, peer_addresses: list[str],
            peer_groups: set[str], port: int, protocol: str) -> str | None:
    """The first rule (as text: its group and where it comes from) of the port's groups that
    allows this flow, or None."""
    for group, rule, remote in _rules(snap, vmi, ingress):
        if _port_ok(rule, port, protocol) and any(
                _peer_matches(p, peer_addresses, peer_groups, _fq(group)) for p in remote):
            return _text(group, rule, ingress)
    return None


def _why_not(snap: Snapshot, vmi: str, *, ingress: bool, peer_addresses: list[str],
             peer_groups: set[str], port: int, protocol: str) -> list[str]:
    """What isolates the port in this direction, and its rules that come closest."""
    direction = "ingress" if ingress else "egress"
    owners, unresolved, near = [], [], []
    for group in _groups(snap, vmi):
        notes = _notes(group)
        if notes.get("kind") == "NetworkPolicy" and direction in notes.get(
                "isolates", "ingress,egress").split(","):
            owner = f"{notes.get('namespace')}/{notes.get('name')}"
            if owner not in owners:
                owners.append(owner)
            with contextlib.suppress(ValueError, AttributeError):  # not ckm's: no notes
                unresolved += json.loads(notes.get("unresolved") or "{}").get(direction, [])
    for group, rule, remote in _rules(snap, vmi, ingress):
        peer = any(_peer_matches(p, peer_addresses, peer_groups, _fq(group)) for p in remote)
        ports = _port_ok(rule, port, protocol)
        if peer and not ports:
            near.append(f"the peer matches, {protocol}/{port} does not: "
                        f"{_text(group, rule, ingress)}")
        elif ports and not peer:
            near.append(f"{protocol}/{port} matches, the peer does not: "
                        f"{_text(group, rule, ingress)}")
    out = [f"isolated for {direction} by NetworkPolicy {', '.join(owners)}" if owners else
           f"isolated for {direction}: no {direction} rule at all"]
    return (out + list(dict.fromkeys(unresolved)) + near[:4]
            + ([f"... {len(near) - 4} more rules"] if len(near) > 4 else []))


def evaluate(snap: Snapshot, src_vmi: str, address: str, port: int, protocol: str = "tcp",
             *, cluster_network: str) -> Verdict:
    targets = resolve(snap, address, port, protocol)
    if not targets:
        return Verdict(False, reasons=[f"{address}:{port}/{protocol} is no pod address and no "
                                       "service port"])
    reasons = []
    src_groups = {_fq(g) for g in _groups(snap, src_vmi)}
    src_addresses = _addresses_of_port(snap, src_vmi) + [
        f.get("floating_ip_address") for f in _egress_fips(snap, src_vmi)
        if f.get("floating_ip_address")]
    for target in targets:
        path = _network_path(snap, src_vmi, target, cluster_network)
        if path is None:
            reasons.append(f"{target.via}: no network path (the target's network is "
                           "reachable only from itself)")
            continue
        target_addresses = [*_addresses_of_port(snap, target.vmi), address]
        egress = {"ingress": False, "peer_addresses": target_addresses, "peer_groups": {
            _fq(g) for g in _groups(snap, target.vmi)}, "port": port, "protocol": protocol}
        out = _allows(snap, src_vmi, **egress)
        if out is None:
            reasons.append(f"{target.via}: no egress rule of the source allows it")
            reasons += [f"  {r}" for r in _why_not(snap, src_vmi, **egress)]
            continue
        ingress = {"ingress": True, "peer_addresses": src_addresses, "peer_groups": src_groups,
                   "port": target.port, "protocol": protocol}
        into = _allows(snap, target.vmi, **ingress)
        if into is None:
            reasons.append(f"{target.via}: no ingress rule of the target allows it")
            reasons += [f"  {r}" for r in _why_not(snap, target.vmi, **ingress)]
            continue
        return Verdict(True, f"{target.via}; {path}", reasons,
                       f"egress: {out}; ingress: {into}", out, into)
    return Verdict(False, reasons=reasons)


REACH_TYPES = ("virtual-network", "virtual-machine-interface", "instance-ip", "floating-ip",
               "floating-ip-pool", "security-group")

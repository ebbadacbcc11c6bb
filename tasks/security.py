"""Security-group building blocks: rules in the wire shape, and the cluster's allow-all groups.

Contrail groups are allow-lists; a VMI's effective rules are the union of its groups. A pod
not isolated (by NetworkPolicy) in a direction carries the allow-all group of that direction.
"""

from __future__ import annotations

from config.settings import Settings
from tasks import naming
from tasks.model import Obj, Ref
from tasks.namespace import project

ALL_PORTS = {"start_port": 0, "end_port": 65535}
LOCAL = {"security_group": "local"}
ANYWHERE = {"subnet": {"ip_prefix": "0.0.0.0", "ip_prefix_len": 0}}


def rule(*, ingress: bool, peer: dict, protocol: str = "any",
         ports: dict | None = None) -> dict:
    """One PolicyRuleType: ingress rules match the peer as source, egress as destination."""
    src, dst = (peer, LOCAL) if ingress else (LOCAL, peer)
    return {"direction": ">", "ethertype": "IPv4", "protocol": protocol,
            "src_addresses": [src], "dst_addresses": [dst],
            "src_ports": [ALL_PORTS], "dst_ports": [ports or ALL_PORTS]}


def _group(settings: Settings, role: str, rules: list[dict]) -> Obj:
    parent = project(settings, "default")
    return Obj("security-group", naming.cluster_uuid(settings.cluster_name, role),
               (*parent.fq_name, f"{settings.cluster_name}-{role}"), "project",
               props={"security_group_entries": {"policy_rule": rules}},
               annotations=naming.owner(settings.cluster_name, "Cluster", "", role))


def allow_all_ingress(settings: Settings) -> Obj:
    return _group(settings, "allow-all-ingress", [rule(ingress=True, peer=ANYWHERE)])


def allow_all_egress(settings: Settings) -> Obj:
    return _group(settings, "allow-all-egress", [rule(ingress=False, peer=ANYWHERE)])


def refs(*groups: Obj) -> tuple[Ref, ...]:
    return tuple(Ref(g.fq_name, g.uuid) for g in groups)


def default_groups(settings: Settings) -> tuple[Ref, ...]:
    """The groups of a pod that no NetworkPolicy selects."""
    return refs(allow_all_ingress(settings), allow_all_egress(settings))

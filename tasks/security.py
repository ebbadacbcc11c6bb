"""Security-group building blocks: rules in the wire shape, and the cluster's allow-all groups.

Contrail groups are allow-lists; a VMI's effective rules are the union of its groups. A pod
not isolated (by NetworkPolicy) in a direction carries the allow-all group of that direction.
"""

from __future__ import annotations

import json
import uuid

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


WHY = "rules"  # group annotation: JSON of where rules come from -> their rule_uuids


def entries(group_uuid: str, explained: list[tuple[dict, str]]) -> tuple[dict, dict]:
    """(props, annotations) of a group holding these (rule, why) pairs. Identical rules are
    one rule (Contrail refuses twins with 409), explained by each of its sources; each gets a
    rule_uuid derived from its content, so `ckm reach` can say where it comes from."""
    merged: dict[str, tuple[dict, list[str]]] = {}
    for entry, why in explained:
        text = json.dumps(entry, sort_keys=True)
        reasons = merged.setdefault(text, (entry, []))[1]
        if why not in reasons:
            reasons.append(why)
    rules, whys = [], {}
    for text, (entry, reasons) in merged.items():
        rule_uuid = str(uuid.uuid5(uuid.UUID(group_uuid), text))
        rules.append({**entry, "rule_uuid": rule_uuid})
        # by explanation: an ipBlock's except makes many rules with one source
        whys.setdefault(" | ".join(reasons), []).append(rule_uuid)
    props = {"security_group_entries": {"policy_rule": rules}}
    return props, {WHY: json.dumps(whys, sort_keys=True)}  # always: ensure never drops a key


def _group(settings: Settings, role: str, explained: list[tuple[dict, str]]) -> Obj:
    parent = project(settings, "default")
    group_uuid = naming.cluster_uuid(settings.cluster_name, role)
    props, why = entries(group_uuid, explained)
    return Obj("security-group", group_uuid,
               (*parent.fq_name, f"{settings.cluster_name}-{role}"), "project", props=props,
               annotations={**naming.owner(settings.cluster_name, "Cluster", "", role), **why})


def allow_all_ingress(settings: Settings) -> Obj:
    return _group(settings, "allow-all-ingress", [(
        rule(ingress=True, peer=ANYWHERE),
        "not isolated for ingress: no NetworkPolicy of type Ingress selects this pod")])


def allow_all_egress(settings: Settings) -> Obj:
    return _group(settings, "allow-all-egress", [(
        rule(ingress=False, peer=ANYWHERE),
        "not isolated for egress: no NetworkPolicy of type Egress selects this pod")])


def refs(*groups: Obj) -> tuple[Ref, ...]:
    return tuple(Ref(g.fq_name, g.uuid) for g in groups)


def default_groups(settings: Settings) -> tuple[Ref, ...]:
    """The groups of a pod that no NetworkPolicy selects."""
    return refs(allow_all_ingress(settings), allow_all_egress(settings))

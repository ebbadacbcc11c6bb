"""security-group and network-policy: ids and rule checks (vnc-rest.md 5.3).

Security groups get `security_group_id` = 8000000 + lowest free index (the startup
`__no_rule__` group takes 8000001; 403 if a client sets it; a positive
`configured_security_group_id` is used verbatim). Every rule gets a `rule_uuid`; identical
rules are refused (409); protocols must be known names or 0-255; SG rules need a `local`
end; network-policy rules need an action list and no security-group addresses.
"""

from __future__ import annotations

import json
import uuid as uuidlib

from emulators.contrail import errors
from emulators.contrail.hooks.base import TypeHooks

SG_ID_BASE = 8000000
PROTOCOL_NAMES = {"any", "icmp", "icmp6", "tcp", "udp", "sctp", "igmp", "gre", "esp", "ah",
                  "ipv6-icmp", "vrrp", "pim", "ospf"}
VOLATILE = ("rule_uuid", "rule_sequence", "created", "last_modified")


def check_rules(entries: dict | None, *, policy: bool) -> None:
    seen: dict[str, str] = {}
    for rule in (entries or {}).get("policy_rule") or []:
        rule["rule_uuid"] = rule.get("rule_uuid") or str(uuidlib.uuid4())
        protocol = str(rule.get("protocol") or "any").lower()
        if protocol not in PROTOCOL_NAMES and not (protocol.isdigit() and int(protocol) <= 255):
            raise errors.bad_request(f"Rule with invalid protocol : {rule.get('protocol')}")
        addresses = (rule.get("src_addresses") or []) + (rule.get("dst_addresses") or [])
        if policy:
            if not rule.get("action_list"):
                raise errors.bad_request("Check Policy Rules: action_list is required")
            if any(a.get("security_group") for a in addresses):
                raise errors.bad_request("Config Error: Policy Rule refering to Security Group")
        elif not any(a.get("security_group") == "local" for a in addresses):
            raise errors.bad_request(
                "At least one of source or destination addresses must be 'local'")
        key = json.dumps({k: v for k, v in rule.items() if k not in VOLATILE}, sort_keys=True)
        if key in seen:
            raise errors.rule_exists(seen[key])
        seen[key] = rule["rule_uuid"]


def sg_pre_create(b, obj, body) -> None:
    if body.get("security_group_id") is not None:
        raise errors.cannot_set("security group ID")
    check_rules(obj.props.get("security_group_entries"), policy=False)
    configured = obj.props.get("configured_security_group_id") or 0
    if configured > 0:
        obj.props["security_group_id"] = configured
    else:
        obj.props["security_group_id"] = SG_ID_BASE + b.ids["sg"].allocate()


def sg_pre_update(b, obj, props, refs) -> None:
    requested = props.pop("security_group_id", None)
    if requested is not None and requested != obj.props.get("security_group_id"):
        raise errors.cannot_set("security group ID")
    if "security_group_entries" in props:
        check_rules(props["security_group_entries"], policy=False)


def sg_post_delete(b, obj) -> None:
    b.ids["sg"].free(obj.props.get("security_group_id", 0) - SG_ID_BASE)


def sg_restore(b, obj) -> None:
    b.ids["sg"].reserve(obj.props.get("security_group_id", 0) - SG_ID_BASE)


def np_pre_create(b, obj, body) -> None:
    check_rules(obj.props.get("network_policy_entries"), policy=True)


def np_pre_update(b, obj, props, refs) -> None:
    if "network_policy_entries" in props:
        check_rules(props["network_policy_entries"], policy=True)


HOOKS = {
    "security-group": TypeHooks(pre_create=sg_pre_create, pre_update=sg_pre_update,
                                post_delete=sg_post_delete, restore=sg_restore),
    "network-policy": TypeHooks(pre_create=np_pre_create, pre_update=np_pre_update),
}

"""network-ipam, virtual-network and routing-instance behaviour (vnc-rest.md 5.3).

IPAMs: `ipam_subnets` only with flat-subnet, method immutable, gateway/DNS filled in.
VNs: network id (403 if the client sets it), `is_shared` <-> perms2, network_ipam_refs
processing (flat IPAM -> `[{"subnet_uuid": ...}]` and l3 only; user-defined subnets get
`subnet_uuid`, gateway and DNS), a default routing-instance child, allocator registration.
"""

from __future__ import annotations

import ipaddress
import uuid as uuidlib
from typing import Any

from emulators.contrail import errors
from emulators.contrail.addressing import (
    FLAT,
    ipam_subnet_list,
    is_flat,
    subnet_from,
    subnet_uuids,
)
from emulators.contrail.hooks.base import TypeHooks

PROTECTED_VNS = {
    ("default-domain", "default-project", "ip-fabric"),
    ("default-domain", "default-project", "__link_local__"),
}


# network-ipam --------------------------------------------------------------------------------
def _check_ipam(props: dict[str, Any]) -> None:
    entries = ipam_subnet_list(props)
    if entries and props.get("ipam_subnet_method") != FLAT:
        raise errors.bad_request("ipam_subnets are allowed only with flat-subnet")
    for entry in entries:
        subnet = subnet_from(entry)
        if subnet is not None:
            entry["default_gateway"] = entry.get("default_gateway") or subnet.gateway
            entry["dns_server_address"] = entry.get("dns_server_address") or subnet.dns


def ipam_pre_create(b, obj, body) -> None:
    _check_ipam(obj.props)


def ipam_pre_update(b, obj, props, refs) -> None:
    for key in ("ipam_subnet_method", "ipam_subnetting"):
        if key in props and props[key] != obj.props.get(key):
            raise errors.bad_request(f"{key} can not be changed")
    _check_ipam({**obj.props, **props})


def ipam_post_update(b, obj) -> None:
    current = {(obj.uuid, s.cidr) for s in map(subnet_from, ipam_subnet_list(obj.props)) if s}
    b.addressing.drop([k for k in b.addressing.flat.get(obj.uuid, ()) if k not in current])
    b.addressing.register_ipam(obj)


def ipam_post_delete(b, obj) -> None:
    b.addressing.drop(list(b.addressing.flat.get(obj.uuid, ())))


# virtual-network -----------------------------------------------------------------------------
def _process_ipam_refs(b, vn_props: dict, targets: dict[str, Any], old: dict[str, Any]) -> None:
    cidrs: list[ipaddress._BaseNetwork] = []
    for ipam_uuid, attr in targets.items():
        attr = dict(attr or {"ipam_subnets": [], "host_routes": None})
        entries = attr.get("ipam_subnets") or []
        if is_flat(b.store.get(ipam_uuid)):
            if any((e.get("subnet") or {}).get("ip_prefix") for e in entries):
                raise errors.flat_subnet_with_cidr()
            mode = (vn_props.get("virtual_network_properties") or {}).get("forwarding_mode")
            if mode != "l3":
                raise errors.flat_subnet_needs_l3()
            previous = ((old.get(ipam_uuid) or {}).get("ipam_subnets") or [{}])[0]
            attr["ipam_subnets"] = [{"subnet_uuid": previous.get("subnet_uuid")
                                     or str(uuidlib.uuid4())}]
        else:
            known = {_prefix(e): e.get("subnet_uuid") for e in
                     (old.get(ipam_uuid) or {}).get("ipam_subnets") or []}
            for entry in entries:
                cidrs += _fill_user_subnet(entry, known)
        targets[ipam_uuid] = attr
    _check_overlap(cidrs)


def _prefix(entry: dict) -> str | None:
    subnet = entry.get("subnet") or {}
    return f"{subnet.get('ip_prefix')}/{subnet.get('ip_prefix_len')}" if subnet else None


def _fill_user_subnet(entry: dict, known: dict) -> list:
    try:
        subnet = subnet_from(entry)
    except ValueError as exc:
        raise errors.ApiError(409, f"Invalid subnet {_prefix(entry)}: {exc}") from None
    if subnet is None:
        return []
    entry["subnet_uuid"] = entry.get("subnet_uuid") or known.get(_prefix(entry)) or str(
        uuidlib.uuid4())
    entry["default_gateway"] = entry.get("default_gateway") or subnet.gateway
    entry["dns_server_address"] = entry.get("dns_server_address") or subnet.dns
    return [ipaddress.ip_network(subnet.cidr)]


def _check_overlap(cidrs: list) -> None:
    for i, a in enumerate(cidrs):
        for other in cidrs[i + 1:]:
            if a.version == other.version and a.overlaps(other):
                raise errors.bad_request(f"Overlapping addresses: {[str(a), str(other)]}")


def _share(props: dict, perms2: dict) -> None:
    if "is_shared" in props:
        perms2["global_access"] = 7 if props["is_shared"] else 0


def vn_pre_create(b, obj, body) -> None:
    if body.get("virtual_network_network_id") is not None:
        raise errors.cannot_set("virtual network ID")
    _process_ipam_refs(b, obj.props, obj.refs.get("network_ipam_refs", {}), {})
    obj.props.setdefault("is_shared", False)
    _share(obj.props, obj.props["perms2"])
    obj.props["virtual_network_network_id"] = b.ids["vn"].allocate()


def vn_post_create(b, obj) -> None:
    b.addressing.register_vn(obj)
    b.create("routing-instance", {
        "fq_name": [*obj.fq_name, obj.name], "parent_type": "virtual-network",
        "routing_instance_is_default": True,
        "routing_instance_fabric_snat": bool(obj.props.get("fabric_snat", False)),
    })


def vn_pre_update(b, obj, props, refs) -> None:
    requested_id = props.pop("virtual_network_network_id", None)
    if requested_id is not None and requested_id != obj.props.get("virtual_network_network_id"):
        raise errors.cannot_set("virtual network ID")
    if "network_ipam_refs" in refs:
        merged = {**obj.props, **props}
        _process_ipam_refs(b, merged, refs["network_ipam_refs"],
                           obj.refs.get("network_ipam_refs", {}))
        removed = set(b.addressing.vn_keys(obj)) - set(subnet_uuids(refs["network_ipam_refs"]))
        busy = b.addressing.in_use(removed)
        if busy:
            raise errors.ApiError(409, f"Cannot delete IP block {busy[0]}: addresses in use")
        b.addressing.drop(removed)
    if "is_shared" in props:
        props["perms2"] = {**obj.props["perms2"], **props.get("perms2", {})}
        _share(props, props["perms2"])


def vn_post_update(b, obj) -> None:
    b.addressing.register_vn(obj)


def vn_pre_delete(b, obj) -> None:
    if obj.fq_name in PROTECTED_VNS:
        raise errors.protected_delete(obj.fq_name)


def vn_post_delete(b, obj) -> None:
    b.ids["vn"].free(obj.props.get("virtual_network_network_id"))
    b.addressing.drop(b.addressing.vn_keys(obj))


def vn_restore(b, obj) -> None:
    b.ids["vn"].reserve(obj.props.get("virtual_network_network_id"))
    b.addressing.register_vn(obj)


# routing-instance ----------------------------------------------------------------------------
def ri_pre_delete(b, obj) -> None:
    # The VN's own RI goes with the VN (force delete skips this hook); nobody else may drop it.
    if obj.props.get("routing_instance_is_default"):
        raise errors.ApiError(409, "Cannot delete default routing instance")


HOOKS = {
    "network-ipam": TypeHooks(
        pre_create=ipam_pre_create, post_create=ipam_post_update, pre_update=ipam_pre_update,
        post_update=ipam_post_update, post_delete=ipam_post_delete, restore=ipam_post_update),
    "virtual-network": TypeHooks(
        pre_create=vn_pre_create, post_create=vn_post_create, pre_update=vn_pre_update,
        post_update=vn_post_update, pre_delete=vn_pre_delete, post_delete=vn_post_delete,
        restore=vn_restore),
    "routing-instance": TypeHooks(pre_delete=ri_pre_delete),
}

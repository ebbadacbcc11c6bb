"""virtual-machine-interface: VN ref required, MAC allocation, routing-instance ref (5.3).

The MAC is `02:` plus the first five bytes of the uuid (`addr_mgmt.py:mac_alloc`), a client MAC
is kept with dashes turned into colons; after create the VMI refers to its VN's default
routing-instance with the PolicyBasedForwardingRuleType attr the real server writes.
"""

from __future__ import annotations

from emulators.contrail import errors
from emulators.contrail.hooks.base import TypeHooks, first

RI_ATTR = {"direction": "both", "vlan_tag": None, "src_mac": None, "dst_mac": None,
           "mpls_label": None, "service_chain_address": None,
           "ipv6_service_chain_address": None, "protocol": None}
MACS = "virtual_machine_interface_mac_addresses"


def mac_for(uuid: str) -> str:
    return "02:" + ":".join((uuid[0:2], uuid[2:4], uuid[4:6], uuid[6:8], uuid[9:11]))


def default_ri(b, vn_uuid: str | None):
    kids = b.store.children_of(vn_uuid, "routing-instance") if vn_uuid else []
    return next((ri for ri in kids if ri.props.get("routing_instance_is_default")), None)


def vmi_pre_create(b, obj, body) -> None:
    if not obj.refs.get("virtual_network_refs"):
        raise errors.vmi_needs_vn()
    macs = (obj.props.get(MACS) or {}).get("mac_address") or []
    macs = [m.replace("-", ":").lower() for m in macs if m] or [mac_for(obj.uuid)]
    obj.props[MACS] = {"mac_address": macs}


def vmi_post_create(b, obj) -> None:
    ri = default_ri(b, first(obj.refs.get("virtual_network_refs")))
    if ri is not None and not obj.refs.get("routing_instance_refs"):
        b.store.add_ref(obj, "routing_instance_refs", ri.uuid, dict(RI_ATTR))


def vmi_post_update(b, obj) -> None:
    # Moving a port to another VN moves its routing-instance ref along (kept server-side).
    ri = default_ri(b, first(obj.refs.get("virtual_network_refs")))
    current = obj.refs.get("routing_instance_refs", {})
    if ri is not None and ri.uuid not in current:
        stale = {u: a for u, a in current.items() if b.store.get(u) is not None
                 and not b.store.get(u).props.get("routing_instance_is_default")}
        b.store.set_refs(obj, "routing_instance_refs", {**stale, ri.uuid: dict(RI_ATTR)})


HOOKS = {
    "virtual-machine-interface": TypeHooks(
        pre_create=vmi_pre_create, post_create=vmi_post_create, post_update=vmi_post_update),
}

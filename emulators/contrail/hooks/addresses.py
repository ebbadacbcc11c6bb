"""instance-ip, floating-ip and floating-ip-pool: address allocation hooks (vnc-rest.md 5.3-5.4).

An instance-ip takes an address from its VN (requested address honoured, 409 if taken, none
for ip-fabric / __link_local__); a floating-ip from its pool's VN, restricted to the pool's
subnets, unless its parent is an instance-ip (then it carries the address it was given).
Deletes free the address; an instance-ip's address is immutable.
"""

from __future__ import annotations

from emulators.contrail import errors
from emulators.contrail.addressing import subnet_uuids
from emulators.contrail.hooks.base import TypeHooks, first
from emulators.contrail.hooks.network import PROTECTED_VNS


# instance-ip ---------------------------------------------------------------------------------
def iip_pre_create(b, obj, body) -> None:
    refs = obj.refs
    requested = obj.props.get("instance_ip_address")
    if refs.get("virtual_router_refs") and (refs.get("virtual_network_refs")
                                             or refs.get("network_ipam_refs")):
        raise errors.bad_request(
            "virtual_router_refs can not be used with virtual_network_refs or network_ipam_refs")
    if requested and refs.get("network_ipam_refs"):
        raise errors.bad_request("instance_ip_address can not be used with network_ipam_refs")
    vn = b.store.get(first(refs.get("virtual_network_refs")) or "")
    if vn is None:
        if requested:
            return  # e.g. a vrouter-specific address: stored as given
        raise errors.bad_request("instance-ip needs virtual_network_refs")
    if vn.fq_name in PROTECTED_VNS:
        return  # the real server allocates nothing on ip-fabric / link-local
    vmis = [b.store.get(u) for u in refs.get("virtual_machine_interface_refs", {})]
    vm_port = any(v is not None and v.refs.get("virtual_machine_refs") for v in vmis)
    address, subnet_uuid = b.addressing.allocate(
        obj.uuid, vn, requested=requested, subnet_uuid=obj.props.get("subnet_uuid"),
        gateway_ok=True, vm_port=vm_port)
    obj.props["instance_ip_address"] = address
    if subnet_uuid:
        obj.props["subnet_uuid"] = subnet_uuid


def iip_pre_update(b, obj, props, refs) -> None:
    if "instance_ip_address" in props and props["instance_ip_address"] != obj.props.get(
            "instance_ip_address"):
        raise errors.iip_address_immutable()


def release(b, obj) -> None:
    b.addressing.release(obj.uuid)


def iip_restore(b, obj) -> None:
    vn = b.store.get(first(obj.refs.get("virtual_network_refs")) or "")
    if vn is not None and obj.props.get("instance_ip_address"):
        b.addressing.restore(obj.uuid, vn, obj.props["instance_ip_address"])


# floating-ip ---------------------------------------------------------------------------------
def _pool_vn(b, obj):
    """The VN a floating-ip allocates from, or None when its parent is an instance-ip."""
    if obj.parent_type != "floating-ip-pool":
        return None, None
    pool = b.store.get(obj.parent_uuid)
    return pool, b.store.get(pool.parent_uuid)


def fip_pre_create(b, obj, body) -> None:
    pool, vn = _pool_vn(b, obj)
    if vn is None:
        return
    if not obj.refs.get("project_refs"):
        project = b.store.uuid_of("project", obj.fq_name[:2])
        if project:
            obj.refs["project_refs"] = {project: None}
    only = (pool.props.get("floating_ip_pool_subnets") or {}).get("subnet_uuid") or None
    address, _subnet = b.addressing.allocate(
        obj.uuid, vn, requested=obj.props.get("floating_ip_address"), only=only, status=500)
    obj.props["floating_ip_address"] = address


def fip_restore(b, obj) -> None:
    _pool, vn = _pool_vn(b, obj)
    if vn is not None and obj.props.get("floating_ip_address"):
        b.addressing.restore(obj.uuid, vn, obj.props["floating_ip_address"])


# floating-ip-pool ----------------------------------------------------------------------------
def pool_pre_create(b, obj, body) -> None:
    wanted = (obj.props.get("floating_ip_pool_subnets") or {}).get("subnet_uuid") or []
    vn = b.store.get(obj.parent_uuid)
    known = set(subnet_uuids(vn.refs.get("network_ipam_refs", {})))
    for subnet_uuid in wanted:
        if subnet_uuid not in known:
            raise errors.bad_request(
                f"Subnet {subnet_uuid} was not found in virtual-network {list(vn.fq_name)}")


HOOKS = {
    "instance-ip": TypeHooks(pre_create=iip_pre_create, pre_update=iip_pre_update,
                             post_delete=release, restore=iip_restore),
    "floating-ip": TypeHooks(pre_create=fip_pre_create, post_delete=release, restore=fip_restore),
    "floating-ip-pool": TypeHooks(pre_create=pool_pre_create),
}

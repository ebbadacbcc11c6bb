"""The objects ckm builds (contrail-model.md) through the official client: flat-subnet pod
networks, floating-ip pools, service VIPs with an ECMP floating-ip child, load balancers, tags."""

from __future__ import annotations

import pytest
from vnc_api.exceptions import BadRequest, RefsExistError
from vnc_api.gen.resource_client import (
    FloatingIp,
    FloatingIpPool,
    InstanceIp,
    Loadbalancer,
    LoadbalancerListener,
    LoadbalancerMember,
    LoadbalancerPool,
    Tag,
    VirtualMachineInterface,
    VirtualNetwork,
)
from vnc_api.gen.resource_xsd import (
    LoadbalancerListenerType,
    LoadbalancerMemberType,
    LoadbalancerPoolType,
    LoadbalancerType,
    PortMap,
    PortMappings,
    VnSubnetsType,
)

from tests.emulators.contrail.conftest import flat_ipam, flat_vn


def iip_on(vnc, vn, name, **kwargs) -> str:
    iip = InstanceIp(name, **kwargs)
    iip.add_virtual_network(vn)
    vnc.instance_ip_create(iip)
    return vnc.instance_ip_read(id=iip.uuid).instance_ip_address


def test_flat_subnet_vns_share_one_allocator(vnc, project):
    ipam = flat_ipam(vnc, project)
    first = flat_vn(vnc, project, ipam, "cluster-network")
    second = flat_vn(vnc, project, ipam, "ns-vn")
    attr = vnc.virtual_network_read(id=first.uuid).get_network_ipam_refs()[0]["attr"]
    assert len(attr.ipam_subnets) == 1 and attr.ipam_subnets[0].subnet_uuid
    assert attr.ipam_subnets[0].subnet is None
    ipam_read = vnc.network_ipam_read(id=ipam.uuid)
    assert ipam_read.get_ipam_subnets().subnets[0].default_gateway == "10.47.255.254"
    assert iip_on(vnc, first, "a") == "10.47.255.252"
    assert iip_on(vnc, second, "b") == "10.47.255.251"
    subnet_uuid = attr.ipam_subnets[0].subnet_uuid
    assert iip_on(vnc, first, "c", subnet_uuid=subnet_uuid) == "10.47.255.250"
    assert iip_on(vnc, second, "vip", instance_ip_address="10.32.0.10") == "10.32.0.10"
    with pytest.raises(RefsExistError, match="IP address already in use"):
        iip_on(vnc, first, "dup", instance_ip_address="10.32.0.10")
    with pytest.raises(RefsExistError):
        iip_on(vnc, first, "dns", instance_ip_address="10.47.255.253")


def test_flat_subnet_needs_l3_and_no_cidrs(vnc, project):
    ipam = flat_ipam(vnc, project)
    vn = VirtualNetwork("no-l3", project)
    vn.add_network_ipam(ipam, VnSubnetsType([]))
    with pytest.raises(BadRequest, match="only with l3"):
        vnc.virtual_network_create(vn)


def test_floating_ip_from_pool_and_fip_child_of_instance_ip(vnc, project):
    ipam = flat_ipam(vnc, project, "svc-ipam", ("10.96.0.0", 12))
    net = flat_vn(vnc, project, ipam)
    pool = FloatingIpPool("cluster-network-fip-pool", net)
    vnc.floating_ip_pool_create(pool)
    fip = FloatingIp("egress", pool, floating_ip_traffic_direction="egress")
    vnc.floating_ip_create(fip)
    fip = vnc.floating_ip_read(id=fip.uuid)
    assert fip.floating_ip_address == "10.111.255.252"
    assert fip.get_project_refs()[0]["to"] == project.fq_name
    with pytest.raises(RefsExistError, match="IP address already in use"):
        vnc.floating_ip_create(FloatingIp("again", pool, floating_ip_address="10.111.255.252"))
    vnc.floating_ip_delete(id=fip.uuid)
    fip = FloatingIp("reuse", pool)
    vnc.floating_ip_create(fip)
    assert vnc.floating_ip_read(id=fip.uuid).floating_ip_address == "10.111.255.252"

    vip = InstanceIp("svc-vip", instance_ip_address="10.96.0.10")
    vip.add_virtual_network(net)
    vnc.instance_ip_create(vip)
    ecmp = FloatingIp("svc-ecmp", vip, floating_ip_address="10.96.0.10",
                      floating_ip_port_mappings_enable=True,
                      floating_ip_port_mappings=PortMappings([PortMap("TCP", 80, 8080)]))
    vnc.floating_ip_create(ecmp)
    ecmp = vnc.floating_ip_read(id=ecmp.uuid)
    assert ecmp.floating_ip_address == "10.96.0.10"
    assert ecmp.get_floating_ip_port_mappings().port_mappings[0].dst_port == 8080
    assert ecmp.parent_type == "instance-ip"


def test_loadbalancer_chain(vnc, project):
    ipam = flat_ipam(vnc, project, "svc-ipam", ("10.96.0.0", 12))
    net = flat_vn(vnc, project, ipam)
    vmi = VirtualMachineInterface("lb-vmi", project,
                                  virtual_machine_interface_device_owner="K8S:LOADBALANCER")
    vmi.add_virtual_network(net)
    vnc.virtual_machine_interface_create(vmi)
    lb = Loadbalancer("svc", project, loadbalancer_provider="native",
                      loadbalancer_properties=LoadbalancerType(vip_address="10.96.0.10"))
    lb.add_virtual_machine_interface(vmi)
    vnc.loadbalancer_create(lb)
    listener = LoadbalancerListener(
        "svc-80", project,
        loadbalancer_listener_properties=LoadbalancerListenerType(protocol="TCP",
                                                                  protocol_port=80))
    listener.add_loadbalancer(lb)
    vnc.loadbalancer_listener_create(listener)
    pool = LoadbalancerPool("svc-80-pool", project,
                            loadbalancer_pool_properties=LoadbalancerPoolType(protocol="TCP"))
    pool.add_loadbalancer_listener(listener)
    vnc.loadbalancer_pool_create(pool)
    member = LoadbalancerMember("m1", pool, loadbalancer_member_properties=LoadbalancerMemberType(
        address="10.47.255.252", protocol_port=8080))
    vnc.loadbalancer_member_create(member)

    read = vnc.loadbalancer_read(id=lb.uuid)
    assert read.get_loadbalancer_properties().vip_address == "10.96.0.10"
    assert read.get_virtual_machine_interface_refs()[0]["uuid"] == vmi.uuid
    assert vnc.loadbalancer_member_read(
        id=member.uuid).get_loadbalancer_member_properties().protocol_port == 8080
    pool_read = vnc.loadbalancer_pool_read(id=pool.uuid, exclude_children=False)
    assert [m["uuid"] for m in pool_read.get_loadbalancer_members()] == [member.uuid]
    with pytest.raises(RefsExistError):
        vnc.loadbalancer_delete(id=lb.uuid)
    for delete, uid in ((vnc.loadbalancer_member_delete, member.uuid),
                        (vnc.loadbalancer_pool_delete, pool.uuid),
                        (vnc.loadbalancer_listener_delete, listener.uuid),
                        (vnc.loadbalancer_delete, lb.uuid),
                        (vnc.virtual_machine_interface_delete, vmi.uuid)):
        delete(id=uid)


def test_tags_and_set_tag(vnc, project):
    tag = Tag(tag_type_name="application", tag_value="web", parent_obj=project)
    vnc.tag_create(tag)
    read = vnc.tag_read(id=tag.uuid)
    assert read.name == "application=web"
    assert read.tag_id == "0x00010001"
    assert read.get_tag_type_refs()[0]["to"] == ["application"]
    vn = VirtualNetwork("tagged", project)
    vnc.virtual_network_create(vn)
    vnc.set_tag(vn, "application", "web")
    refs = vnc.virtual_network_read(id=vn.uuid).get_tag_refs()
    assert [r["uuid"] for r in refs] == [tag.uuid]
    vnc.unset_tag(vn, "application")
    assert not vnc.virtual_network_read(id=vn.uuid).get_tag_refs()


def test_a_freed_pod_address_is_the_next_one_handed_out_on_any_network(vnc, project):
    """Highest free first, one pool per flat IPAM: the address a pod move frees for a moment
    is what the next allocation anywhere takes (why ckm moves under a lock, asking for it)."""
    ipam = flat_ipam(vnc, project)
    cluster = flat_vn(vnc, project, ipam, "cluster-network")
    isolated = flat_vn(vnc, project, ipam, "ns-vn")
    moving = iip_on(vnc, cluster, "moving")
    iip_on(vnc, cluster, "other")
    vnc.instance_ip_delete(fq_name=["moving"])
    assert iip_on(vnc, isolated, "newcomer") == moving
    vnc.instance_ip_delete(fq_name=["newcomer"])
    assert iip_on(vnc, isolated, "moved", instance_ip_address=moving) == moving

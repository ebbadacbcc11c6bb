"""The emulator judged by the official client (`vnc_api`, contrail-api-client 2005), over HTTP.

Follows the probe of vnc-rest.md section 9: project, IPAM, VN with a subnet, VM with a client
uuid, VMI with an annotation, instance-ip, security group, ref-update, PUT, lists, refused and
ordered deletes.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from vnc_api.exceptions import BadRequest, NoIdError, RefsExistError
from vnc_api.gen.resource_client import (
    InstanceIp,
    Project,
    SecurityGroup,
    VirtualMachine,
    VirtualMachineInterface,
    VirtualNetwork,
)
from vnc_api.gen.resource_xsd import (
    AddressType,
    KeyValuePair,
    PolicyEntriesType,
    PolicyRuleType,
    PortType,
    SubnetType,
)

from tests.emulators.contrail.conftest import user_vn, vnc_for


def egress_rule() -> PolicyRuleType:
    return PolicyRuleType(
        direction=">", protocol="any", ethertype="IPv4",
        src_addresses=[AddressType(security_group="local")],
        dst_addresses=[AddressType(subnet=SubnetType("0.0.0.0", 0))],
        src_ports=[PortType(0, 65535)], dst_ports=[PortType(0, 65535)])


@pytest.fixture
def world(vnc, project) -> SimpleNamespace:
    vn = user_vn(vnc, project)
    vm = VirtualMachine(f"vm-{uuid.uuid4().hex[:6]}", server_type="container")
    vm.uuid = str(uuid.uuid4())
    vnc.virtual_machine_create(vm)
    vmi = VirtualMachineInterface("vmi", project)
    vmi.add_virtual_machine(vm)
    vmi.add_virtual_network(vn)
    vmi.add_annotations(KeyValuePair("owner", "k8s"))
    vnc.virtual_machine_interface_create(vmi)
    iip = InstanceIp(f"iip-{uuid.uuid4().hex[:6]}")
    iip.add_virtual_network(vn)
    iip.add_virtual_machine_interface(vmi)
    vnc.instance_ip_create(iip)
    sg = SecurityGroup("sg", project, security_group_entries=PolicyEntriesType([egress_rule()]))
    vnc.security_group_create(sg)
    return SimpleNamespace(project=project, vn=vn, vm=vm, vmi=vmi, iip=iip, sg=sg)


def test_duplicate_project_is_refused(vnc, project):
    with pytest.raises(RefsExistError, match="already exists with uuid"):
        vnc.project_create(Project(project.name, vnc.domain_read(fq_name=["default-domain"])))


def test_vn_read_back_has_subnet_gateway_id_and_routing_instance(vnc, world):
    vn = vnc.virtual_network_read(id=world.vn.uuid, exclude_children=False)
    subnet = vn.get_network_ipam_refs()[0]["attr"].ipam_subnets[0]
    assert (subnet.default_gateway, subnet.dns_server_address) == ("10.47.255.254",
                                                                   "10.47.255.253")
    assert uuid.UUID(subnet.subnet_uuid)
    assert vn.virtual_network_network_id == 5  # 1-4 belong to the default VNs
    assert vn.get_routing_instances()[0]["to"] == [*vn.fq_name, vn.name]


def test_vm_keeps_client_uuid_and_vmi_gets_mac_ri_and_annotation(vnc, world):
    assert vnc.virtual_machine_read(id=world.vm.uuid).get_server_type() == "container"
    vmi = vnc.virtual_machine_interface_read(id=world.vmi.uuid)
    u = vmi.uuid
    expected = f"02:{u[0:2]}:{u[2:4]}:{u[4:6]}:{u[6:8]}:{u[9:11]}"
    assert vmi.get_virtual_machine_interface_mac_addresses().mac_address == [expected]
    assert [(kv.key, kv.value) for kv in vmi.get_annotations().key_value_pair] == [
        ("owner", "k8s")]
    assert vmi.get_routing_instance_refs()[0]["attr"].direction == "both"


def test_instance_ip_allocation_top_down_and_conflicts(vnc, world):
    assert vnc.instance_ip_read(id=world.iip.uuid).instance_ip_address == "10.47.255.252"
    taken = InstanceIp("iip-again", instance_ip_address="10.47.255.252")
    taken.add_virtual_network(world.vn)
    with pytest.raises(RefsExistError, match="IP address already in use"):
        vnc.instance_ip_create(taken)
    nxt = InstanceIp("iip-next")
    nxt.add_virtual_network(world.vn)
    vnc.instance_ip_create(nxt)
    assert vnc.instance_ip_read(id=nxt.uuid).instance_ip_address == "10.47.255.251"
    vnc.instance_ip_delete(id=nxt.uuid)
    again = InstanceIp("iip-reuse")
    again.add_virtual_network(world.vn)
    vnc.instance_ip_create(again)
    assert vnc.instance_ip_read(id=again.uuid).instance_ip_address == "10.47.255.251"
    iip = vnc.instance_ip_read(id=again.uuid)
    iip.set_instance_ip_address("10.47.0.9")
    with pytest.raises(BadRequest, match="can not be changed"):
        vnc.instance_ip_update(iip)


def test_security_group_id_and_rule_uuid(vnc, world):
    sg = vnc.security_group_read(id=world.sg.uuid)
    assert sg.security_group_id == 8000002  # __no_rule__ holds 8000001
    assert uuid.UUID(sg.get_security_group_entries().policy_rule[0].rule_uuid)
    twice = SecurityGroup("sg-dup", world.project,
                          security_group_entries=PolicyEntriesType([egress_rule()] * 2))
    with pytest.raises(RefsExistError, match="Rule already exists"):
        vnc.security_group_create(twice)
    no_local = egress_rule()
    no_local.src_addresses = [AddressType(subnet=SubnetType("10.0.0.0", 8))]
    with pytest.raises(BadRequest):
        vnc.security_group_create(SecurityGroup(
            "sg-bad", world.project, security_group_entries=PolicyEntriesType([no_local])))


def test_ref_update_add_delete_and_back_refs(vnc, world):
    for _ in range(2):  # ADD is idempotent
        vnc.ref_update("virtual-machine-interface", world.vmi.uuid, "security-group",
                       world.sg.uuid, None, "ADD")
    vmi = vnc.virtual_machine_interface_read(id=world.vmi.uuid, fields=["security_group_refs"])
    assert [r["uuid"] for r in vmi.get_security_group_refs()] == [world.sg.uuid]
    sg = vnc.security_group_read(id=world.sg.uuid)
    assert [r["uuid"] for r in sg.get_virtual_machine_interface_back_refs()] == [world.vmi.uuid]
    vmi = vnc.virtual_machine_interface_read(id=world.vmi.uuid)
    vmi.del_security_group(SecurityGroup("sg", world.project))
    vnc.virtual_machine_interface_update(vmi)
    vmi = vnc.virtual_machine_interface_read(id=world.vmi.uuid, fields=["security_group_refs"])
    assert not vmi.get_security_group_refs()


def test_put_update_changes_only_sent_fields(vnc, world):
    vmi = vnc.virtual_machine_interface_read(id=world.vmi.uuid)
    vmi.set_port_security_enabled(False)
    vmi.set_display_name("renamed")
    vnc.virtual_machine_interface_update(vmi)
    vmi = vnc.virtual_machine_interface_read(id=world.vmi.uuid)
    assert (vmi.get_port_security_enabled(), vmi.get_display_name()) == (False, "renamed")
    assert vmi.get_annotations().key_value_pair[0].key == "owner"


def test_lists(vnc, world):
    detail = vnc.virtual_machine_interfaces_list(parent_id=world.project.uuid, detail=True)
    assert [o.uuid for o in detail] == [world.vmi.uuid]
    assert detail[0].get_virtual_network_refs()[0]["uuid"] == world.vn.uuid
    by_ref = vnc.virtual_machine_interfaces_list(back_ref_id=world.vn.uuid)
    assert [o["uuid"] for o in by_ref["virtual-machine-interfaces"]] == [world.vmi.uuid]
    counted = vnc.virtual_machine_interfaces_list(parent_id=world.project.uuid, count=True)
    assert counted == {"virtual-machine-interfaces": {"count": 1}}
    filtered = vnc.virtual_networks_list(
        parent_fq_name=world.project.fq_name, fields=["network_ipam_refs"],
        filters={"display_name": "vn"})["virtual-networks"]
    assert [o["uuid"] for o in filtered] == [world.vn.uuid]
    assert filtered[0]["network_ipam_refs"]
    none = vnc.virtual_networks_list(parent_fq_name=world.project.fq_name,
                                     filters={"display_name": "nope"})
    assert none == {"virtual-networks": []}
    with_back = vnc.virtual_networks_list(
        obj_uuids=[world.vn.uuid], fields=["virtual_machine_interface_back_refs"], detail=True)
    assert with_back[0].get_virtual_machine_interface_back_refs()[0]["uuid"] == world.vmi.uuid


def test_long_uuid_lists_go_through_list_bulk(vnc, project):
    vns = []
    for i in range(27):
        vn = VirtualNetwork(f"bulk-{i}", project)
        vnc.virtual_network_create(vn)
        vns.append(vn.uuid)
    listed = vnc.virtual_networks_list(obj_uuids=vns)["virtual-networks"]
    assert sorted(o["uuid"] for o in listed) == sorted(vns)
    detailed = vnc.virtual_networks_list(obj_uuids=vns, detail=True)
    assert len(detailed) == 27


def test_refused_and_ordered_deletes(vnc, world):
    with pytest.raises(RefsExistError, match="Delete when resource still referred"):
        vnc.virtual_network_delete(id=world.vn.uuid)
    with pytest.raises(RefsExistError, match="Delete when children still present"):
        vnc.project_delete(id=world.project.uuid)
    ipam_uuid = world.vn.get_network_ipam_refs()[0]["uuid"]
    vnc.instance_ip_delete(id=world.iip.uuid)
    vnc.virtual_machine_interface_delete(id=world.vmi.uuid)
    vnc.virtual_machine_delete(id=world.vm.uuid)
    vnc.security_group_delete(id=world.sg.uuid)
    vnc.virtual_network_delete(id=world.vn.uuid)
    vnc.network_ipam_delete(id=ipam_uuid)
    vnc.project_delete(id=world.project.uuid)
    with pytest.raises(NoIdError):
        vnc.virtual_network_read(id=world.vn.uuid)
    with pytest.raises(NoIdError):
        vnc.fq_name_to_id("project", world.project.fq_name)
    with pytest.raises(NoIdError):
        vnc.virtual_network_delete(id=world.vn.uuid)


def test_fqname_and_id_lookups(vnc, world):
    assert vnc.fq_name_to_id("virtual-network", world.vn.fq_name) == world.vn.uuid
    assert vnc.id_to_fq_name_type(world.vn.uuid) == (world.vn.fq_name, "virtual-network")
    with pytest.raises(NoIdError):
        vnc.fq_name_to_id("virtual-network", ["default-domain", "nope", "nope"])


def test_annotations_map_and_kv_store(vnc, world):
    vn = world.vn.uuid
    vnc.prop_map_set_element(vn, "annotations", KeyValuePair("k2", "v2"))
    vnc.prop_map_set_element(vn, "annotations", KeyValuePair("k1", "v1"))
    assert vnc.prop_map_get(vn, "annotations") == [
        [{"key": "k1", "value": "v1"}, "k1"], [{"key": "k2", "value": "v2"}, "k2"]]
    assert vnc.prop_map_get(vn, "annotations", "k2") == [[{"key": "k2", "value": "v2"}, "k2"]]
    vnc.prop_map_delete_element(vn, "annotations", "k1")
    vnc.prop_map_delete_element(vn, "annotations", "k2")
    assert not vnc.virtual_network_read(id=world.vn.uuid).get_annotations()
    vnc.kv_store("mykey", "myval")
    assert vnc.kv_retrieve("mykey") == "myval"
    vnc.kv_delete("mykey")
    with pytest.raises(NoIdError):
        vnc.kv_retrieve("mykey")


def test_chown_chmod_and_exclude_hrefs(contrail_url, vnc, world):
    vnc.chown(world.vn.uuid, world.project.uuid)
    vnc.chmod(world.vn.uuid, global_access=5)
    perms2 = vnc.virtual_network_read(id=world.vn.uuid).get_perms2()
    assert perms2.owner == world.project.uuid and perms2.global_access == 5
    assert vnc.virtual_network_read(id=world.vn.uuid).get_is_shared() is True
    bare = vnc_for(contrail_url, exclude_hrefs=True)
    vn = bare.virtual_network_read(id=world.vn.uuid, exclude_children=False)
    assert "href" not in vn.get_routing_instances()[0]

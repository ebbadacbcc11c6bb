"""The Contrail client against the Contrail emulator over real HTTP: every operation and error."""

from __future__ import annotations

import uuid

import httpx
import pytest

from contrail.client import ContrailClient
from contrail.ensure import delete_if_exists, ensure, set_ref, unset_ref
from contrail.errors import AlreadyExists, BadRequest, NotFound, RefsExist
from contrail.transport import Transport

pytestmark = pytest.mark.integration


@pytest.fixture
def client(contrail_url):
    client = ContrailClient(Transport([contrail_url], retry_seconds=2))
    yield client
    client.close()


def counters(url: str) -> dict:
    return httpx.get(f"{url}/_emulator/counters").json()


def reset_counters(url: str) -> None:
    httpx.post(f"{url}/_emulator/counters/reset").raise_for_status()


def make_project(client, name="p1") -> str:
    return client.create("project", {"fq_name": ["default-domain", name],
                                     "parent_type": "domain"})["uuid"]


def make_vn(client, project: str = "p1") -> tuple[str, str]:
    ipam = client.create("network-ipam", {
        "fq_name": ["default-domain", project, "pod-ipam"], "parent_type": "project",
        "ipam_subnet_method": "flat-subnet",
        "ipam_subnets": {"subnets": [{"subnet": {"ip_prefix": "10.32.0.0",
                                                 "ip_prefix_len": 12}}]}})["uuid"]
    vn = client.create("virtual-network", {
        "fq_name": ["default-domain", project, "vn"], "parent_type": "project",
        "virtual_network_properties": {"forwarding_mode": "l3"},
        "address_allocation_mode": "flat-subnet-only",
        "network_ipam_refs": [{"to": ["default-domain", project, "pod-ipam"],
                               "attr": {"ipam_subnets": []}}]})["uuid"]
    return ipam, vn


def make_port(client, vn: str, name: str) -> tuple[str, str, str]:
    vm = str(uuid.uuid4())
    client.create("virtual-machine", {"uuid": vm, "fq_name": [f"vm-{name}"],
                                      "server_type": "container"})
    vmi = client.create("virtual-machine-interface", {
        "fq_name": ["default-domain", "p1", name], "parent_type": "project",
        "virtual_machine_refs": [{"to": [f"vm-{name}"], "uuid": vm}],
        "virtual_network_refs": [{"to": ["default-domain", "p1", "vn"], "uuid": vn}]})["uuid"]
    iip = client.create("instance-ip", {
        "fq_name": [f"iip-{name}"],
        "virtual_network_refs": [{"to": ["default-domain", "p1", "vn"]}],
        "virtual_machine_interface_refs": [{"to": ["default-domain", "p1", name]}]})["uuid"]
    return vm, vmi, iip


def test_crud_and_names(client):
    project = make_project(client)
    assert client.fq_name_to_id("project", ["default-domain", "p1"]) == project
    assert client.id_to_fq_name(project) == ("project", ["default-domain", "p1"])
    obj = client.read("project", project)
    assert obj["fq_name"] == ["default-domain", "p1"] and obj["uuid"] == project
    client.update("project", project, {"display_name": "renamed"})
    assert client.read("project", project, fields=["display_name"])["display_name"] == "renamed"
    client.delete("project", project)
    with pytest.raises(NotFound) as caught:
        client.read("project", project)
    assert caught.value.status == 404 and project in caught.value.url
    with pytest.raises(NotFound):
        client.fq_name_to_id("project", ["default-domain", "p1"])


def test_instance_ip_is_allocated_top_down_and_children_are_read(client):
    make_project(client)
    _, vn = make_vn(client)
    _, vmi, iip = make_port(client, vn, "a")
    assert client.read("instance-ip", iip)["instance_ip_address"] == "10.47.255.252"
    vn_obj = client.read("virtual-network", vn, children=True, back_refs=True)
    assert vn_obj["routing_instances"]
    assert {r["uuid"] for r in vn_obj["virtual_machine_interface_back_refs"]} == {vmi}


def test_errors_map_to_classes(client):
    project = make_project(client)
    with pytest.raises(AlreadyExists):
        make_project(client)
    _, vn = make_vn(client)
    make_port(client, vn, "a")
    with pytest.raises(RefsExist):
        client.delete("virtual-network", vn)
    with pytest.raises(RefsExist):
        client.delete("project", project)
    with pytest.raises(BadRequest):
        client.create("project", {"fq_name": ["default-domain", "x"], "parent_type": "banana"})
    with pytest.raises(AlreadyExists):
        client.create("instance-ip", {"fq_name": ["iip-dup"],
                                      "instance_ip_address": "10.47.255.252",
                                      "virtual_network_refs": [{"to": ["default-domain", "p1",
                                                                       "vn"]}]})


def test_lists(client):
    project = make_project(client)
    _, vn = make_vn(client)
    vmis = [make_port(client, vn, f"port{i}")[1] for i in range(30)]
    listed = client.list("virtual-machine-interface", parent_id=project)
    assert {item["uuid"] for item in listed} == set(vmis)
    detailed = client.list("virtual-machine-interface", back_ref_id=vn, detail=True)
    assert len(detailed) == 30 and all(d["virtual_network_refs"] for d in detailed)
    # more than 25 ids: the client switches to POST /list-bulk-collection
    reset_counters(client.transport.base_url)
    bulk = client.list("virtual-machine-interface", obj_uuids=vmis, detail=True)
    assert {item["uuid"] for item in bulk} == set(vmis)
    assert "list-bulk-collection" in str(counters(client.transport.base_url))
    assert client.count("virtual-machine-interface", parent_id=project) == 30
    assert client.list("virtual-machine-interface", obj_uuids=[]) == []
    named = client.list("virtual-machine-interface", parent_id=project,
                        filters={"display_name": "port7"})
    assert [item["uuid"] for item in named] == [vmis[7]]


def test_refs_and_annotations(client):
    make_project(client)
    _, vn = make_vn(client)
    _, vmi, _ = make_port(client, vn, "a")
    sg = client.create("security-group", {"fq_name": ["default-domain", "p1", "sg"],
                                          "parent_type": "project"})["uuid"]
    set_ref(client, "virtual-machine-interface", vmi, "security-group", sg)
    set_ref(client, "virtual-machine-interface", vmi, "security-group", sg)  # idempotent
    refs = client.read("virtual-machine-interface", vmi)["security_group_refs"]
    assert [r["uuid"] for r in refs] == [sg]
    unset_ref(client, "virtual-machine-interface", vmi, "security-group", sg)
    unset_ref(client, "virtual-machine-interface", vmi, "security-group", sg)  # idempotent
    assert "security_group_refs" not in client.read("virtual-machine-interface", vmi)
    client.set_annotations("virtual-machine-interface", vmi, {"owner": "k8s", "cluster": "c"})
    pairs = client.read("virtual-machine-interface", vmi)["annotations"]["key_value_pair"]
    assert {p["key"]: p["value"] for p in pairs} == {"owner": "k8s", "cluster": "c"}


def test_ensure_creates_once_then_updates_only_differences(client):
    url = client.transport.base_url
    make_project(client)
    sg_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, "sg"))
    desired = {"uuid": sg_uuid, "fq_name": ["default-domain", "p1", "sg"],
               "parent_type": "project",
               "security_group_entries": {"policy_rule": [{
                   "direction": ">", "protocol": "tcp", "ethertype": "IPv4",
                   "src_addresses": [{"security_group": "local"}],
                   "dst_addresses": [{"subnet": {"ip_prefix": "0.0.0.0", "ip_prefix_len": 0}}],
                   "src_ports": [{"start_port": 0, "end_port": 65535}],
                   "dst_ports": [{"start_port": 80, "end_port": 80}]}]}}
    owner = {"owner": "k8s", "cluster": "c"}
    assert ensure(client, "security-group", desired, annotations=owner).action == "created"
    reset_counters(url)
    again = ensure(client, "security-group", desired, annotations=owner)
    assert (again.uuid, again.action) == (sg_uuid, "unchanged")
    # the server assigned rule uuids and an id: not differences. POST (409) + GET only.
    assert counters(url)["total"] == 2
    changed = {**desired, "display_name": "web"}
    assert ensure(client, "security-group", changed, annotations=owner).action == "updated"
    assert client.read("security-group", sg_uuid)["display_name"] == "web"
    assert delete_if_exists(client, "security-group", sg_uuid) is True
    assert delete_if_exists(client, "security-group", sg_uuid) is False

"""Exact wire shapes over raw HTTP: home page, create/read/list bodies, error texts."""

from __future__ import annotations

import uuid

import pytest

DP = ["default-domain", "default-project"]


def create(http, type_, body):
    return http.post(f"/{type_}s", json={type_: body})


@pytest.fixture
def vn(http):
    reply = create(http, "virtual-network", {"fq_name": [*DP, "wire-vn"],
                                             "parent_type": "project"})
    assert reply.status_code == 200
    return reply.json()["virtual-network"]


def test_home_page_links(http, contrail_url):
    page = http.get("/").json()
    assert page["href"] == contrail_url
    links = {(link["link"]["rel"], link["link"]["name"]): link["link"] for link in page["links"]}
    assert links[("collection", "virtual-network")]["href"] == f"{contrail_url}/virtual-networks"
    assert links[("resource-base", "firewall-policy")]["href"] == f"{contrail_url}/firewall-policy"
    for name in ("name-to-id", "id-to-name", "ref-update", "ref-relax-for-delete",
                 "prop-collection-update", "prop-collection-get", "useragent-keyvalue",
                 "list-bulk-collection", "chown", "chmod", "set-tag"):
        assert links[("action", name)]["href"].startswith(contrail_url)
    assert links[("action", "name-to-id")]["href"] == f"{contrail_url}/fqname-to-id"
    assert len(page["links"]) == 2 + 2 * 121 + 17


def test_create_reply_and_read_shape(http, contrail_url, vn):
    assert set(vn) == {"name", "fq_name", "uuid", "parent_type", "parent_uuid", "href",
                       "parent_href"}
    assert vn["href"] == f"{contrail_url}/virtual-network/{vn['uuid']}"
    reply = http.get(f"/virtual-network/{vn['uuid']}")
    body = reply.json()["virtual-network"]
    assert reply.headers["etag"] == f'"{body["id_perms"]["last_modified"]}"'
    assert body["display_name"] == "wire-vn"
    assert body["perms2"]["share"] == [] and body["id_perms"]["uuid"]["uuid_mslong"] > 0
    assert body["routing_instances"][0]["to"] == [*DP, "wire-vn", "wire-vn"]
    assert "network_ipam_refs" not in body and "annotations" not in body
    etag = reply.headers["etag"]
    assert http.get(f"/virtual-network/{vn['uuid']}",
                    headers={"If-None-Match": etag}).status_code == 304
    only = http.get(f"/virtual-network/{vn['uuid']}?fields=routing_instances").json()
    assert set(only["virtual-network"]) == {"uuid", "name", "fq_name", "parent_type",
                                            "parent_uuid", "href", "parent_href", "id_perms",
                                            "perms2", "routing_instances"}
    bare = http.get(f"/virtual-network/{vn['uuid']}?exclude_children=True&exclude_hrefs=True")
    assert "routing_instances" not in bare.json()["virtual-network"]
    assert "href" not in bare.json()["virtual-network"]


def test_update_and_empty_update(http, vn):
    url = f"/virtual-network/{vn['uuid']}"
    reply = http.put(url, json={"virtual-network": {"uuid": vn["uuid"], "display_name": "x"}})
    assert reply.json() == {"virtual-network": {"uuid": vn["uuid"], "href": vn["href"]}}
    assert http.get(url).json()["virtual-network"]["display_name"] == "x"
    reply = http.put(url, json={"virtual-network": {"display_name": None}})
    assert http.get(url).json()["virtual-network"]["display_name"] == "wire-vn"
    empty = http.put(url, content=b"")
    assert (empty.status_code, empty.content) == (200, b"")


def test_list_shapes(http, vn):
    plain = http.get(f"/virtual-networks?parent_id={vn['parent_uuid']}&detail=False").json()
    assert {"uuid": vn["uuid"], "fq_name": vn["fq_name"], "href": vn["href"]} in plain[
        "virtual-networks"]
    detail = http.get("/virtual-networks?detail=True&obj_uuids=" + vn["uuid"]).json()
    assert detail["virtual-networks"][0]["virtual-network"]["name"] == "wire-vn"
    assert "routing_instances" not in detail["virtual-networks"][0]["virtual-network"]
    count = http.get("/virtual-networks?count=True&detail=False").json()
    assert count == {"virtual-networks": {"count": 5}}
    ordered = [o["fq_name"] for o in http.get("/virtual-networks").json()["virtual-networks"]]
    assert ordered == sorted(ordered, key=":".join)
    bulk = http.post("/list-bulk-collection", json={
        "type": "virtual-network", "obj_uuids": vn["uuid"], "detail": False, "count": False})
    assert [o["uuid"] for o in bulk.json()["virtual-networks"]] == [vn["uuid"]]
    assert http.get("/virtual-networks?parent_fq_name_str=default-domain:nope").json() == {
        "virtual-networks": []}


def test_error_texts(http, contrail_url, vn):
    missing = str(uuid.uuid4())
    cases = [
        (http.get(f"/virtual-network/{missing}"), 404,
         f"No virtual-network object found for id {missing}"),
        (http.get(f"/project/{vn['uuid']}"), 404, f"No project object found for id {vn['uuid']}"),
        (http.delete(f"/virtual-network/{missing}"), 404, f"ID {missing} does not exist"),
        (http.post("/fqname-to-id", json={"type": "project", "fq_name": ["default-domain", "x"]}),
         404, "Name ['default-domain', 'x'] not found"),
        (create(http, "virtual-network", {"fq_name": vn["fq_name"], "parent_type": "project"}),
         409, f"{vn['fq_name']} already exists with uuid: {vn['uuid']}"),
        (create(http, "project", {"fq_name": ["default-domain", "p2"], "uuid": vn["uuid"]}), 409,
         f"{vn['uuid']} already exists with fq_name: {vn['fq_name']}"),
        (create(http, "project", {"fq_name": ["default-domain", "p3"],
                                  "uuid": vn["uuid"].upper()}), 400, "Invalid UUID format"),
        (create(http, "project", {"parent_type": "domain"}), 400,
         "Bad Request, no fq_name in POST body"),
        (create(http, "virtual-network", {"fq_name": ["default-domain", "nope", "vn"],
                                          "parent_type": "project"}), 400,
         "Parent ['default-domain', 'nope'] type project does not exist"),
        (create(http, "virtual-network", {"fq_name": [*DP, "v"], "virtual_network_network_id": 9,
                                          "parent_type": "project"}), 403,
         "Cannot set the virtual network ID"),
        (http.get("/bgp-routers"), 404, "Resource type 'bgp-router' not found"),
    ]
    for reply, status, text in cases:
        assert (reply.status_code, reply.text) == (status, text)
    create(http, "virtual-machine-interface", {
        "fq_name": [*DP, "port"], "parent_type": "project",
        "virtual_network_refs": [{"to": vn["fq_name"]}]})
    port = http.post("/fqname-to-id", json={"type": "virtual-machine-interface",
                                            "fq_name": [*DP, "port"]}).json()["uuid"]
    refused = http.delete(f"/virtual-network/{vn['uuid']}")
    assert (refused.status_code, refused.text) == (
        409, f"Delete when resource still referred: "
             f"['{contrail_url}/virtual-machine-interface/{port}']")


def test_ref_relax_for_delete(http):
    pol = create(http, "network-policy", {"fq_name": [*DP, "pol"], "parent_type": "project"})
    pol = pol.json()["network-policy"]
    vn = create(http, "virtual-network", {
        "fq_name": [*DP, "relaxed"], "parent_type": "project",
        "network_policy_refs": [{"to": pol["fq_name"], "attr": {
            "sequence": {"major": 0, "minor": 0}, "timer": None}}]}).json()["virtual-network"]
    assert http.delete(f"/network-policy/{pol['uuid']}").status_code == 409
    reply = http.post("/ref-relax-for-delete", json={"uuid": vn["uuid"], "ref-uuid": pol["uuid"]})
    assert reply.json() == {"uuid": vn["uuid"]}
    assert http.delete(f"/network-policy/{pol['uuid']}").status_code == 200
    assert "network_policy_refs" not in http.get(f"/virtual-network/{vn['uuid']}").json()[
        "virtual-network"]


def test_protected_and_default_objects(http):
    fabric = http.post("/fqname-to-id", json={"type": "virtual-network",
                                              "fq_name": [*DP, "ip-fabric"]}).json()["uuid"]
    assert http.delete(f"/virtual-network/{fabric}").status_code == 409
    for type_, fq_name in (("global-vrouter-config", ["default-global-system-config",
                                                      "default-global-vrouter-config"]),
                           ("network-ipam", [*DP, "default-network-ipam"]),
                           ("security-group", [*DP, "__no_rule__"]),
                           ("policy-management", ["default-policy-management"])):
        reply = http.post("/fqname-to-id", json={"type": type_, "fq_name": fq_name})
        assert reply.status_code == 200, (type_, reply.text)

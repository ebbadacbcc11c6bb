"""Pure parts of the Contrail client: status -> error class, and desired-vs-actual matching."""

from __future__ import annotations

import pytest

from contrail.ensure import differences, matches, refs_match
from contrail.errors import (
    AlreadyExists,
    BadRequest,
    ContrailError,
    NotFound,
    PermissionDenied,
    RefsExist,
    Unavailable,
    error_for,
)


@pytest.mark.parametrize(("status", "text", "cls"), [
    (400, "Bad property in create", BadRequest),
    (401, "", PermissionDenied),
    (403, "Permission Denied", PermissionDenied),
    (404, "No virtual-network object found for id x", NotFound),
    (409, "['d', 'p'] already exists with uuid: u", AlreadyExists),
    (409, "IP address already in use", AlreadyExists),
    (409, "Delete when children still present: [...]", RefsExist),
    (409, "Delete when resource still referred: [...]", RefsExist),
    (503, "No connection to zookeeper.", Unavailable),
    (502, "", Unavailable),
    (504, "", Unavailable),
    (500, "boom", ContrailError),
])
def test_status_maps_to_one_class(status, text, cls):
    error = error_for(status, "POST", "http://h/x", text)
    assert type(error) is cls
    assert error.status == status and error.method == "POST" and error.url == "http://h/x"
    assert error.retryable is (cls is Unavailable)
    assert str(error).startswith("POST http://h/x -> ")


def test_matches_treats_none_as_server_choice_and_lists_elementwise():
    desired = {"policy_rule": [{"rule_uuid": None, "protocol": "tcp"}]}
    actual = {"policy_rule": [{"rule_uuid": "r1", "protocol": "tcp", "extra": 1}]}
    assert matches(desired, actual)
    assert not matches({"policy_rule": [{"protocol": "udp"}]}, actual)
    assert not matches({"policy_rule": []}, actual)


def test_refs_match_by_target_and_attr_subset():
    ipam = {"to": ["d", "p", "pod-ipam"], "attr": {"ipam_subnets": [], "host_routes": None}}
    stored = [{"to": ["d", "p", "pod-ipam"], "uuid": "u1",
               "attr": {"ipam_subnets": [{"subnet_uuid": "s"}], "host_routes": None}}]
    assert refs_match([ipam], stored)
    assert not refs_match([ipam], [])
    assert not refs_match([], stored)
    assert refs_match([{"to": ["x"], "uuid": "u1"}], stored)  # uuid wins over to


def test_differences_only_reports_what_differs():
    desired = {"uuid": "u", "fq_name": ["a"], "display_name": "x",
               "virtual_network_refs": [{"to": ["d", "p", "vn"]}], "port_security_enabled": True}
    actual = {"uuid": "u", "fq_name": ["a"], "display_name": "x",
              "virtual_network_refs": [{"to": ["d", "p", "vn"], "uuid": "v", "attr": None}],
              "port_security_enabled": False}
    assert differences(desired, actual) == {"port_security_enabled": True}

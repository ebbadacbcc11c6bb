"""Clients aimed at a fresh emulator: the official `vnc_api` client and raw httpx."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from vnc_api.gen.resource_client import NetworkIpam, Project, VirtualNetwork
from vnc_api.gen.resource_xsd import (
    IpamSubnets,
    IpamSubnetType,
    SubnetType,
    VirtualNetworkType,
    VnSubnetsType,
)
from vnc_api.vnc_api import VncApi


def vnc_for(url: str, **kwargs) -> VncApi:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    kwargs.setdefault("auth_type", "noauth")
    return VncApi(api_server_host=host, api_server_port=int(port), conf_file=os.devnull, **kwargs)


@pytest.fixture
def vnc(contrail_url) -> VncApi:
    return vnc_for(contrail_url)


@pytest.fixture
def http(contrail_url) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=contrail_url, timeout=10) as client:
        yield client


@pytest.fixture
def project(vnc) -> Project:
    domain = vnc.domain_read(fq_name=["default-domain"])
    proj = Project(f"probe-{uuid.uuid4().hex[:6]}", domain)
    vnc.project_create(proj)
    return proj


def user_vn(vnc, proj, name="vn", cidr=("10.32.0.0", 12)) -> VirtualNetwork:
    """A VN with a user-defined subnet on its own IPAM."""
    ipam = NetworkIpam(f"{name}-ipam", proj)
    vnc.network_ipam_create(ipam)
    vn = VirtualNetwork(name, proj)
    vn.add_network_ipam(ipam, VnSubnetsType([IpamSubnetType(subnet=SubnetType(*cidr))]))
    vnc.virtual_network_create(vn)
    return vn


def flat_ipam(vnc, proj, name="pod-ipam", cidr=("10.32.0.0", 12)) -> NetworkIpam:
    ipam = NetworkIpam(name, proj, ipam_subnet_method="flat-subnet",
                       ipam_subnets=IpamSubnets([IpamSubnetType(subnet=SubnetType(*cidr))]))
    vnc.network_ipam_create(ipam)
    return ipam


def flat_vn(vnc, proj, ipam, name="cluster-network") -> VirtualNetwork:
    """A VN the way ckm makes pod networks: flat-subnet-only, l3, empty VnSubnetsType."""
    vn = VirtualNetwork(name, proj, address_allocation_mode="flat-subnet-only",
                        virtual_network_properties=VirtualNetworkType(forwarding_mode="l3"))
    vn.add_network_ipam(ipam, VnSubnetsType([]))
    vnc.virtual_network_create(vn)
    return vn

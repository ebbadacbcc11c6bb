"""The pure allocator (vnc-rest.md 5.4): order, exclusions, reuse, pools, exhaustion."""

from __future__ import annotations

import pytest

from emulators.contrail.ipam import GatewayForVm, IdPool, InUse, Subnet


def test_highest_free_first_with_gateway_and_dns_excluded():
    subnet = Subnet.build("10.32.0.0", 12)
    assert (subnet.gateway, subnet.dns) == ("10.47.255.254", "10.47.255.253")
    assert [subnet.allocate() for _ in range(3)] == ["10.47.255.252", "10.47.255.251",
                                                     "10.47.255.250"]
    subnet.free("10.47.255.251")
    assert subnet.allocate() == "10.47.255.251"
    assert subnet.allocate() == "10.47.255.249"


def test_addr_from_start_and_requested_addresses():
    subnet = Subnet.build("192.168.1.0", 24, from_start=True)
    assert (subnet.gateway, subnet.dns) == ("192.168.1.1", "192.168.1.2")
    assert subnet.reserve("192.168.1.3") == "192.168.1.3"
    assert subnet.allocate() == "192.168.1.4"
    for taken in ("192.168.1.3", "192.168.1.2", "192.168.1.0", "192.168.1.255"):
        with pytest.raises(InUse):
            subnet.reserve(taken)
    assert subnet.reserve("192.168.1.1", gateway_ok=True) == "192.168.1.1"
    with pytest.raises(GatewayForVm):
        Subnet.build("10.0.0.0", 24).reserve("10.0.0.254", gateway_ok=True, vm_port=True)


def test_small_subnet_exhausts_and_pools_restrict():
    tiny = Subnet.build("10.0.0.0", 29)  # .0 net, .7 bcast, .6 gw, .5 dns
    assert [tiny.allocate() for _ in range(5)] == ["10.0.0.4", "10.0.0.3", "10.0.0.2",
                                                   "10.0.0.1", None]
    pooled = Subnet.build("10.1.0.0", 24, pools=[{"start": "10.1.0.10", "end": "10.1.0.11"}])
    assert [pooled.allocate() for _ in range(3)] == ["10.1.0.11", "10.1.0.10", None]


def test_ipv6_and_id_pool():
    v6 = Subnet.build("fd00::", 64)
    assert v6.allocate() == "fd00::ffff:ffff:ffff:fffc"
    ids = IdPool(1)
    assert [ids.allocate() for _ in range(3)] == [1, 2, 3]
    ids.free(2)
    assert ids.allocate() == 2 and ids.allocate() == 4

"""Service clusterIP and nodePort allocation.

The real allocators pick at random; this one hands out the lowest free address (after the
first, which belongs to the `kubernetes` Service as on a real cluster) so tests and demos are
repeatable.
"""

from __future__ import annotations

import ipaddress


class AllocationError(ValueError):
    """The requested value cannot be had; the message is the real server's wording."""


class ServiceIPs:
    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.used: set[int] = set()
        self._size = self.network.num_addresses

    def reset(self) -> None:
        self.used.clear()

    def allocate(self) -> str:
        # Offsets 0 and the last are the network and broadcast addresses.
        for offset in range(1, self._size - 1):
            if offset not in self.used:
                self.used.add(offset)
                return str(self.network.network_address + offset)
        raise AllocationError("range is full")

    def reserve(self, ip: str) -> None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            raise AllocationError("must be a valid IP address") from None
        if address not in self.network or address in (self.network.network_address,
                                                      self.network.broadcast_address):
            raise AllocationError(f"failed to allocate IP {ip}: provided IP is not in the valid "
                                  f"range. The range of valid IPs is {self.network}")
        offset = int(address) - int(self.network.network_address)
        if offset in self.used:
            raise AllocationError(f"failed to allocate IP {ip}: provided IP is already allocated")
        self.used.add(offset)

    def release(self, ip: str | None) -> None:
        try:
            address = ipaddress.ip_address(ip or "")
        except ValueError:
            return
        if address in self.network:
            self.used.discard(int(address) - int(self.network.network_address))


class NodePorts:
    def __init__(self, first: int = 30000, last: int = 32767) -> None:
        self.first, self.last = first, last
        self.used: set[int] = set()

    def reset(self) -> None:
        self.used.clear()

    def allocate(self) -> int:
        for port in range(self.first, self.last + 1):
            if port not in self.used:
                self.used.add(port)
                return port
        raise AllocationError("range is full")

    def reserve(self, port: int) -> None:
        if not self.first <= port <= self.last:
            raise AllocationError(f"provided port is not in the valid range. The range of valid "
                                  f"ports is {self.first}-{self.last}")
        if port in self.used:
            raise AllocationError("provided port is already allocated")
        self.used.add(port)

    def release(self, port: int | None) -> None:
        self.used.discard(port or 0)

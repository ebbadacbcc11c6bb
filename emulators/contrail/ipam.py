"""Address allocation for one subnet, the way the api-server's addr_mgmt does it (vnc-rest.md 5.4).

Pure bookkeeping, no objects and no HTTP. A `Subnet` knows its excluded addresses (network,
broadcast, gateway, DNS), its allocation ranges and the set of taken addresses, and hands out
the **highest free address first** (lowest first with `addr_from_start`). A cursor walks the
ranges once and a heap keeps addresses freed behind it, so allocation is amortised O(log n)
even for a /12. Which subnet a VN allocates from is decided in `addressing.py`.
"""

from __future__ import annotations

import heapq
import ipaddress
from dataclasses import dataclass, field


class InUse(Exception):
    """The requested address is taken or reserved (gateway, DNS, network, broadcast)."""


class GatewayForVm(Exception):
    """The gateway may only be requested by router ports (VMIs without a VM)."""


def _int(addr: str | None) -> int | None:
    if not addr or addr in ("0.0.0.0", "::"):
        return None
    return int(ipaddress.ip_address(addr))


@dataclass
class Subnet:
    """One prefix with its allocator state (address ints, family-agnostic)."""

    cidr: str
    gateway: str
    dns: str
    from_start: bool = False
    pools: list[tuple[int, int]] = field(default_factory=list)
    allocated: set[int] = field(default_factory=set)

    @classmethod
    def build(cls, prefix: str, plen: int, *, gateway: str | None = None, dns: str | None = None,
              from_start: bool = False, pools: list[dict] | None = None) -> Subnet:
        """Fill gateway/DNS defaults (last-1/last-2, or first+1/first+2 with addr_from_start)."""
        net = ipaddress.ip_network(f"{prefix}/{plen}", strict=False)
        first, last = int(net.network_address), int(net.broadcast_address)
        to_str = net.network_address.__class__
        if gateway is None:
            gateway = str(to_str(first + 1 if from_start else last - 1))
        if dns is None:
            dns = str(to_str(first + 2 if from_start else last - 2))
        ranges = [(_int(p["start"]), _int(p["end"])) for p in pools or [] if p.get("start")]
        subnet = cls(str(net), gateway, dns, from_start, ranges or [(first, last - 1)])
        subnet._setup(first, last)
        return subnet

    def _setup(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.excluded = {first, last} - {None}
        self.gateway_int = _int(self.gateway)
        self.excluded |= {x for x in (self.gateway_int, _int(self.dns)) if x is not None}
        # Walk the ranges in allocation order: descending unless addr_from_start.
        self.pools.sort(reverse=not self.from_start)
        self._step = 1 if self.from_start else -1
        self._range = 0
        lo, hi = self.pools[0]
        self._cursor: int | None = lo if self.from_start else hi
        self._freed: list[int] = []  # heap of addresses freed behind the cursor

    def contains(self, addr: str) -> bool:
        value = int(ipaddress.ip_address(addr))
        return self.first <= value <= self.last and _same_family(self.cidr, addr)

    def allocate(self) -> str | None:
        """The next free address in allocation order, or None when exhausted."""
        while self._freed:
            value = -self._step * heapq.heappop(self._freed)
            if value not in self.allocated:
                self.allocated.add(value)
                return self._str(value)
        while self._cursor is not None:
            value = self._cursor
            self._advance()
            if value not in self.allocated and value not in self.excluded:
                self.allocated.add(value)
                return self._str(value)
        return None

    def reserve(self, addr: str, *, gateway_ok: bool = False, vm_port: bool = False) -> str:
        """Take a requested address (raises InUse / GatewayForVm)."""
        value = int(ipaddress.ip_address(addr))
        if value in self.allocated:
            raise InUse(addr)
        if value == self.gateway_int and gateway_ok:
            if vm_port:
                raise GatewayForVm(addr)
        elif value in self.excluded:
            raise InUse(addr)
        self.allocated.add(value)
        return self._str(value)

    def take(self, addr: str) -> None:
        """Mark an address taken without checks (rebuilding state after a restart)."""
        self.allocated.add(int(ipaddress.ip_address(addr)))

    def free(self, addr: str) -> None:
        value = int(ipaddress.ip_address(addr))
        if value not in self.allocated:
            return
        self.allocated.discard(value)
        if self._behind_cursor(value) and self._in_pools(value):
            heapq.heappush(self._freed, -self._step * value)

    def _advance(self) -> None:
        value = self._cursor + self._step
        lo, hi = self.pools[self._range]
        if lo <= value <= hi:
            self._cursor = value
            return
        self._range += 1
        if self._range >= len(self.pools):
            self._cursor = None
            return
        lo, hi = self.pools[self._range]
        self._cursor = lo if self.from_start else hi

    def _behind_cursor(self, value: int) -> bool:
        if self._cursor is None:
            return True
        return value < self._cursor if self.from_start else value > self._cursor

    def _in_pools(self, value: int) -> bool:
        return any(lo <= value <= hi for lo, hi in self.pools)

    def _str(self, value: int) -> str:
        return str(ipaddress.ip_address(value) if ":" not in self.cidr else
                   ipaddress.IPv6Address(value))


def _same_family(cidr: str, addr: str) -> bool:
    return (":" in cidr) == (":" in addr)


class IdPool:
    """Lowest-free integer ids from `start` (VN network ids, SG ids, tag ids)."""

    def __init__(self, start: int = 1) -> None:
        self._next = start
        self._freed: list[int] = []
        self.used: set[int] = set()

    def allocate(self) -> int:
        while self._freed:
            value = heapq.heappop(self._freed)
            if value not in self.used:
                self.used.add(value)
                return value
        while self._next in self.used:
            self._next += 1
        self.used.add(self._next)
        return self._next

    def reserve(self, value: int) -> None:
        self.used.add(value)

    def free(self, value: int | None) -> None:
        if value in self.used:
            self.used.discard(value)
            if value < self._next:
                heapq.heappush(self._freed, value)

"""Which subnet a virtual network allocates from, and who holds which address (vnc-rest.md 5.4).

Allocators (`ipam.Subnet`) are keyed two ways, as on the real server: a user-defined subnet
by its `subnet_uuid` (one allocator per VN subnet), a flat subnet by `(ipam uuid, cidr)`
(one allocator per IPAM subnet, shared by every VN that refers to the IPAM, so pod addresses
are unique cluster-wide). Leases map the owning instance-ip / floating-ip uuid to its
allocator and address, so a delete frees exactly what the create took. All of this state is
derived from the objects and rebuilt after a restart.
"""

from __future__ import annotations

from typing import Any

from emulators.contrail import errors
from emulators.contrail.ipam import GatewayForVm, InUse, Subnet
from emulators.contrail.store import Obj, Store

FLAT = "flat-subnet"
Key = str | tuple[str, str]


def is_flat(ipam: Obj | None) -> bool:
    return ipam is not None and ipam.props.get("ipam_subnet_method") == FLAT


def ipam_subnet_list(props: dict[str, Any]) -> list[dict[str, Any]]:
    """The IpamSubnetType dicts of a network-ipam's `ipam_subnets` (wrapped list prop)."""
    return (props.get("ipam_subnets") or {}).get("subnets") or []


def subnet_from(entry: dict[str, Any]) -> Subnet | None:
    """An allocator for one IpamSubnetType dict (None when it has no prefix)."""
    prefix = (entry.get("subnet") or {}).get("ip_prefix")
    if not prefix:
        return None
    return Subnet.build(
        prefix, int(entry["subnet"].get("ip_prefix_len") or 0),
        gateway=entry.get("default_gateway"), dns=entry.get("dns_server_address"),
        from_start=bool(entry.get("addr_from_start")), pools=entry.get("allocation_pools"),
    )


def subnet_uuids(ipam_refs: dict[str, Any]) -> list[str]:
    """Every subnet_uuid in a VN's network_ipam_refs attrs (user-defined and flat)."""
    return [e["subnet_uuid"] for a in ipam_refs.values()
            for e in (a or {}).get("ipam_subnets") or [] if e.get("subnet_uuid")]


class Addressing:
    """Allocators by key and leases by owner uuid."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.subnets: dict[Key, Subnet] = {}
        self.leases: dict[str, tuple[Key, str]] = {}
        self.flat: dict[str, list[Key]] = {}  # ipam uuid -> its flat allocator keys

    # registration ----------------------------------------------------------------------------
    def register_ipam(self, ipam: Obj) -> None:
        if not is_flat(ipam):
            return
        for entry in ipam_subnet_list(ipam.props):
            subnet = subnet_from(entry)
            if subnet is not None and (ipam.uuid, subnet.cidr) not in self.subnets:
                self.subnets[(ipam.uuid, subnet.cidr)] = subnet
                self.flat.setdefault(ipam.uuid, []).append((ipam.uuid, subnet.cidr))

    def register_vn(self, vn: Obj) -> None:
        for ipam_uuid, attr in vn.refs.get("network_ipam_refs", {}).items():
            if is_flat(self.store.get(ipam_uuid)):
                continue
            for entry in (attr or {}).get("ipam_subnets") or []:
                subnet = subnet_from(entry)
                if subnet is not None and entry.get("subnet_uuid"):
                    self.subnets.setdefault(entry["subnet_uuid"], subnet)

    def drop(self, keys) -> None:
        for key in keys:
            self.subnets.pop(key, None)
            if isinstance(key, tuple) and key in self.flat.get(key[0], ()):
                self.flat[key[0]].remove(key)

    def vn_keys(self, vn: Obj) -> list[str]:
        return subnet_uuids(vn.refs.get("network_ipam_refs", {}))

    def in_use(self, keys) -> list[str]:
        """The cidrs of `keys` that still have leased addresses."""
        keys = set(keys)
        return sorted({self.subnets[k].cidr for k, _a in self.leases.values()
                       if k in keys and k in self.subnets})

    # candidates ------------------------------------------------------------------------------
    def _user(self, vn: Obj) -> list[tuple[Key, str]]:
        return [(key, key) for key in self.vn_keys(vn) if key in self.subnets]

    def _flat(self, vn: Obj) -> list[tuple[Key, str]]:
        out = []
        for ipam_uuid, attr in vn.refs.get("network_ipam_refs", {}).items():
            ipam = self.store.get(ipam_uuid)
            if not is_flat(ipam):
                continue
            vn_subnet = next(iter((attr or {}).get("ipam_subnets") or []), {}).get("subnet_uuid")
            out += [(key, vn_subnet) for key in self.flat.get(ipam_uuid, ())]
        return out

    def candidates(self, vn: Obj, *, specific: bool) -> list[tuple[Key, str]]:
        """(allocator key, subnet_uuid to record) in the order the real server tries them."""
        mode = vn.props.get("address_allocation_mode") or "user-defined-subnet-preferred"
        if specific or mode == "flat-subnet-preferred":
            return self._flat(vn) + self._user(vn)
        if mode == "flat-subnet-only":
            return self._flat(vn)
        if mode == "user-defined-subnet-only":
            return self._user(vn)
        return self._user(vn) + self._flat(vn)

    # allocation ------------------------------------------------------------------------------
    def allocate(self, owner: str, vn: Obj, *, requested: str | None = None,
                 subnet_uuid: str | None = None, only: list[str] | None = None,
                 gateway_ok: bool = False, vm_port: bool = False, status: int = 400,
                 ) -> tuple[str, str]:
        """Take an address for `owner` in `vn`; returns (address, subnet_uuid)."""
        found = self.candidates(vn, specific=bool(requested or subnet_uuid))
        if subnet_uuid or only:
            wanted = {subnet_uuid} if subnet_uuid else set(only)
            found = [c for c in found if c[1] in wanted]
            if not found:
                raise errors.invalid_subnet(vn.fq_name, subnet_uuid or only, status)
        if not found and not requested:
            raise errors.no_subnets(vn.fq_name, status)
        if requested:
            return self._reserve(owner, vn, found, requested, gateway_ok, vm_port, status)
        for key, record in found:
            address = self.subnets[key].allocate()
            if address is not None:
                self.leases[owner] = (key, address)
                return address, record
        raise errors.exhausted(vn.fq_name, [self.subnets[k].cidr for k, _ in found], status)

    def _reserve(self, owner, vn, found, requested, gateway_ok, vm_port, status):
        for key, record in found:
            subnet = self.subnets[key]
            if not subnet.contains(requested):
                continue
            try:
                address = subnet.reserve(requested, gateway_ok=gateway_ok, vm_port=vm_port)
            except InUse:
                raise errors.ip_in_use() from None
            except GatewayForVm:
                raise errors.gateway_for_vm() from None
            self.leases[owner] = (key, address)
            return address, record
        raise errors.exhausted(vn.fq_name, [self.subnets[k].cidr for k, _ in found], status)

    def restore(self, owner: str, vn: Obj, address: str) -> None:
        """Re-take a persisted address after a restart (no checks: the data was valid)."""
        for key, _record in self.candidates(vn, specific=True):
            subnet = self.subnets[key]
            if subnet.contains(address):
                subnet.take(address)
                self.leases[owner] = (key, address)
                return

    def release(self, owner: str) -> None:
        lease = self.leases.pop(owner, None)
        if lease and lease[0] in self.subnets:
            self.subnets[lease[0]].free(lease[1])

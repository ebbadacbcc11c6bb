"""Desired Contrail objects as plain values, and how they become wire bodies.

A reconciler returns a list of `Obj` in creation order (parents and ref targets first); the
apply layer creates or updates each in that order and deletes in the reverse order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ref:
    """A reference by fq_name (always resolvable) and, when known, uuid."""

    to: tuple[str, ...]
    uuid: str | None = None
    attr: dict | None = None

    def wire(self, *, with_attr: bool) -> dict:
        out: dict[str, Any] = {"to": list(self.to)}
        if self.uuid:
            out["uuid"] = self.uuid
        if with_attr:
            out["attr"] = self.attr
        return out


@dataclass(frozen=True)
class Obj:
    type: str
    uuid: str
    fq_name: tuple[str, ...]
    parent_type: str | None = None
    props: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, tuple[Ref, ...]] = field(default_factory=dict)  # "<type>_refs" -> refs
    annotations: dict[str, str] = field(default_factory=dict)
    # Fields set at creation only: another key owns them afterwards (a VMI's security groups
    # belong to "recompute SGs"), so later runs of this key must not compare or reset them.
    create_only: dict[str, Any] = field(default_factory=dict)
    # Take over a namesake with another uuid (objects made by upstream, for a migration)?
    # Not for objects whose uuid carries meaning (a VM's uuid is its pod's uid).
    adopt: bool = True

    def body(self) -> dict[str, Any]:
        """The update body (annotations travel separately, see contrail.ensure)."""
        out: dict[str, Any] = {"uuid": self.uuid, "fq_name": list(self.fq_name), **self.props}
        if self.parent_type:
            out["parent_type"] = self.parent_type
        for name, refs in self.refs.items():
            with_attr = any(r.attr is not None for r in refs)
            out[name] = [r.wire(with_attr=with_attr) for r in refs]
        return out

    def create_body(self) -> dict[str, Any]:
        return {**self.body(), **self.create_only}

    @property
    def address(self) -> tuple[str, str]:
        return self.type, self.uuid


# Referrers and children before what they point at: the order deletes must follow.
DELETE_ORDER = ("floating-ip", "instance-ip", "loadbalancer-member", "loadbalancer-pool",
                "loadbalancer-listener", "loadbalancer", "virtual-machine-interface",
                "virtual-machine", "security-group", "floating-ip-pool", "virtual-network",
                "network-ipam", "project")


def delete_rank(type_: str) -> int:
    return DELETE_ORDER.index(type_) if type_ in DELETE_ORDER else len(DELETE_ORDER)

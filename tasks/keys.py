"""Work keys: what the queue carries and what a reconciler is asked to make true.

A key names one operation on one object, `kind/namespace/name` (`kind/name` for cluster-wide
objects): `port/default/web-1` means "make the pod's port in Contrail match the pod". Keys
are strings on the wire so that Flower, logs and `ckm retry KEY` all show the same text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Key:
    kind: str
    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> Key:
        parts = text.split("/")
        if len(parts) == 2 and all(parts):
            return cls(parts[0], "", parts[1])
        if len(parts) == 3 and parts[0] and parts[2]:
            return cls(*parts)
        raise ValueError(f"{text!r} is not a key (kind/namespace/name or kind/name)")

    def __str__(self) -> str:
        return "/".join(p for p in (self.kind, self.namespace, self.name) if p)

"""Objects and their indexes: by uuid, by (type, fq_name), children per parent, back-refs.

The storage model only: no HTTP, no validation, no server behaviour. Every read the API needs
is an index lookup (a list by parent or by back-ref touches only the matching objects). Refs
live on the referring object (`refs[field][target uuid] = attr`); the back-ref index is kept in
step by `set_refs`, the only way refs change. Objects are plain mutable records; callers go
through `Backend`, which owns consistency rules.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from emulators.contrail.schema import TYPES


@dataclass(slots=True)
class Obj:
    type: str
    uuid: str
    fq_name: tuple[str, ...]
    parent_type: str | None
    parent_uuid: str | None
    props: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> {uuid: attr}
    seq: int = 0  # creation order

    @property
    def name(self) -> str:
        return self.fq_name[-1]

    def ref_uuids(self, ref_field: str) -> list[str]:
        return list(self.refs.get(ref_field, ()))


class Store:
    """The indexed object set. Single-threaded by design (see `backend.py`)."""

    def __init__(self) -> None:
        self.objs: dict[str, Obj] = {}
        self.by_fqn: dict[tuple[str, tuple[str, ...]], str] = {}
        self.by_type: dict[str, dict[str, None]] = {t: {} for t in TYPES}
        self.children: dict[str, dict[str, dict[str, None]]] = {}  # parent -> type -> uuids
        self.back_refs: dict[str, dict[str, dict[str, None]]] = {}  # target -> src type -> uuids
        self._seq = itertools.count(1)

    def __len__(self) -> int:
        return len(self.objs)

    def bump_seq(self, last: int) -> None:
        """After a restore: new objects sort after every loaded one."""
        self._seq = itertools.count(max(last, 0) + 1)

    def get(self, uuid: str) -> Obj | None:
        return self.objs.get(uuid)

    def uuid_of(self, type_: str, fq_name) -> str | None:
        return self.by_fqn.get((type_, tuple(fq_name)))

    def insert(self, obj: Obj) -> None:
        obj.seq = obj.seq or next(self._seq)
        self.objs[obj.uuid] = obj
        self.by_fqn[(obj.type, obj.fq_name)] = obj.uuid
        self.by_type[obj.type][obj.uuid] = None
        if obj.parent_uuid:
            self.children.setdefault(obj.parent_uuid, {}).setdefault(obj.type, {})[obj.uuid] = None
        refs, obj.refs = obj.refs, {}
        for ref_field, targets in refs.items():
            self.set_refs(obj, ref_field, targets)

    def remove(self, obj: Obj) -> None:
        for ref_field in list(obj.refs):
            self.set_refs(obj, ref_field, {})
        del self.objs[obj.uuid]
        del self.by_fqn[(obj.type, obj.fq_name)]
        del self.by_type[obj.type][obj.uuid]
        self.children.pop(obj.uuid, None)
        self.back_refs.pop(obj.uuid, None)
        if obj.parent_uuid:
            siblings = self.children.get(obj.parent_uuid, {}).get(obj.type, {})
            siblings.pop(obj.uuid, None)

    def set_refs(self, obj: Obj, ref_field: str, targets: dict[str, Any]) -> None:
        """Replace one ref field wholesale and keep the back-ref index in step."""
        old = obj.refs.get(ref_field, {})
        for target in old.keys() - targets.keys():
            self.back_refs.get(target, {}).get(obj.type, {}).pop(obj.uuid, None)
        for target in targets.keys() - old.keys():
            self.back_refs.setdefault(target, {}).setdefault(obj.type, {})[obj.uuid] = None
        if targets:
            obj.refs[ref_field] = dict(targets)
        else:
            obj.refs.pop(ref_field, None)

    def add_ref(self, obj: Obj, ref_field: str, target: str, attr: Any) -> None:
        targets = dict(obj.refs.get(ref_field, {}))
        targets[target] = attr
        self.set_refs(obj, ref_field, targets)

    def del_ref(self, obj: Obj, ref_field: str, target: str) -> None:
        targets = dict(obj.refs.get(ref_field, {}))
        if targets.pop(target, None) is not None or target in obj.refs.get(ref_field, {}):
            self.set_refs(obj, ref_field, targets)

    def children_of(self, parent_uuid: str, type_: str) -> list[Obj]:
        uuids = self.children.get(parent_uuid, {}).get(type_, {})
        return [self.objs[u] for u in uuids]

    def referrers(self, target_uuid: str, src_type: str) -> list[Obj]:
        uuids = self.back_refs.get(target_uuid, {}).get(src_type, {})
        return [self.objs[u] for u in uuids]

    def of_type(self, type_: str) -> list[Obj]:
        return [self.objs[u] for u in self.by_type[type_]]

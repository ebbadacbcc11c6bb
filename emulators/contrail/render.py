"""Objects -> wire dicts (vnc-rest.md 2.3, 2.6, 4.4): hrefs, refs, back-refs, children, fields.

Pure functions over the store. Shapes: a ref is `{"to", "uuid", "attr", "href"}` (refs and
back-refs ordered by uuid, like the real server's column order), a child `{"to", "uuid",
"href"}` in creation order; empty ref/child/back-ref lists and unset props are absent.
"""

from __future__ import annotations

from typing import Any

from emulators.contrail.schema import TYPES
from emulators.contrail.store import Obj, Store

ALWAYS = ("uuid", "name", "fq_name", "parent_type", "parent_uuid", "href", "parent_href")


class Renderer:
    """Renders objects of one store for one base URL (hrefs are absolute, from the request)."""

    def __init__(self, store: Store, base: str, *, hrefs: bool = True) -> None:
        self.store = store
        self.base = base
        self.hrefs = hrefs

    def href(self, type_: str, uuid: str) -> str:
        return f"{self.base}/{type_}/{uuid}"

    def head(self, obj: Obj) -> dict[str, Any]:
        """The keys every read carries, whatever `fields` says."""
        out: dict[str, Any] = {"uuid": obj.uuid, "name": obj.name, "fq_name": list(obj.fq_name)}
        if obj.parent_type:
            out["parent_type"] = obj.parent_type
            out["parent_uuid"] = obj.parent_uuid
        if self.hrefs:
            out["href"] = self.href(obj.type, obj.uuid)
            if obj.parent_type:
                out["parent_href"] = self.href(obj.parent_type, obj.parent_uuid)
        return out

    def obj(self, obj: Obj, *, fields: list[str] | None = None, children: bool = True,
            back_refs: bool = True) -> dict[str, Any]:
        """A full read (2.3); with `fields`, exactly those plus id_perms, perms2 and the head."""
        out = self.head(obj)
        if fields is not None:
            for name in ("id_perms", "perms2", *fields):
                self._field(out, obj, name)
            return out
        out.update(obj.props)
        for ref_field in sorted(obj.refs):
            self._field(out, obj, ref_field)
        spec = TYPES[obj.type]
        if children:
            for child_field in spec.children:
                self._field(out, obj, child_field)
        if back_refs:
            for back_field in spec.back_refs:
                self._field(out, obj, back_field)
        return out

    def list_entry(self, obj: Obj, fields: list[str] | None) -> dict[str, Any]:
        """One element of a `detail=False` list (2.6)."""
        out: dict[str, Any] = {"uuid": obj.uuid, "fq_name": list(obj.fq_name)}
        if self.hrefs:
            out["href"] = self.href(obj.type, obj.uuid)
        if fields:
            if obj.parent_type:
                out["parent_type"] = obj.parent_type
                out["parent_uuid"] = obj.parent_uuid
            for name in fields:
                self._field(out, obj, name)
        return out

    def detail_entry(self, obj: Obj, fields: list[str] | None) -> dict[str, Any]:
        """One element of a `detail=True` list: props and refs, plus named children/back-refs."""
        out = self.obj(obj, children=False, back_refs=False)
        spec = TYPES[obj.type]
        for name in fields or ():
            if name in spec.children or name in spec.back_refs:
                self._field(out, obj, name)
        return out

    def _field(self, out: dict[str, Any], obj: Obj, name: str) -> None:
        spec = TYPES[obj.type]
        if name in obj.props:
            out[name] = obj.props[name]
        elif name in spec.refs:
            value = self._refs(obj, name, spec.refs[name][0])
            if value:
                out[name] = value
        elif name in spec.children:
            value = self._children(obj, spec.children[name][0])
            if value:
                out[name] = value
        elif name in spec.back_refs:
            value = self._back_refs(obj, spec.back_refs[name])
            if value:
                out[name] = value

    def _link(self, target: Obj, attr: Any = None, with_attr: bool = True) -> dict[str, Any]:
        link: dict[str, Any] = {"to": list(target.fq_name), "uuid": target.uuid}
        if with_attr:
            link["attr"] = attr
        if self.hrefs:
            link["href"] = self.href(target.type, target.uuid)
        return link

    def _refs(self, obj: Obj, ref_field: str, target_type: str) -> list[dict[str, Any]]:
        targets = obj.refs.get(ref_field, {})
        get = self.store.objs.get
        return [self._link(get(u), targets[u]) for u in sorted(targets) if u in self.store.objs]

    def _children(self, obj: Obj, child_type: str) -> list[dict[str, Any]]:
        kids = self.store.children_of(obj.uuid, child_type)
        return [self._link(kid, with_attr=False) for kid in kids]

    def _back_refs(self, obj: Obj, src_type: str) -> list[dict[str, Any]]:
        ref_field = TYPES[obj.type].obj_type + "_refs"
        srcs = sorted(self.store.referrers(obj.uuid, src_type), key=lambda o: o.uuid)
        return [self._link(src, src.refs[ref_field][obj.uuid]) for src in srcs]

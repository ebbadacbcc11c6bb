"""`GET /<type>s` and `POST /list-bulk-collection` selection (vnc-rest.md 2.6), no rendering.

Anchors, in the server's order: parents (`parent_id` / `parent_fq_name_str`), else
`back_ref_id`, else `obj_uuids`, else `fq_names`, else every object of the type (fq_name-string
order). Parent- and back-ref-anchored lists come straight from the indexes; `obj_uuids` and
`back_ref_id` also filter a parent-anchored list; `filters` match property fields only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from emulators.contrail.schema import CONFIG_ROOT, TypeSpec, resource_type
from emulators.contrail.store import Obj, Store


def split(value: Any) -> list[str] | None:
    """Comma-joined query value (or JSON list) -> list; absent -> None."""
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v for v in str(value).split(",") if v]


def flag(value: Any) -> bool:
    """`detail`/`count`/`shared`: the server tests `'true' in value.lower()`."""
    if isinstance(value, bool):
        return value
    return value is not None and "true" in str(value).lower()


def parse_filters(value: str | None) -> dict[str, list[Any]]:
    """`key=="json",key==2` -> {key: [values]} (split on commas, like the server)."""
    out: dict[str, list[Any]] = {}
    for item in split(value) or []:
        key, sep, raw = item.partition("==")
        if not sep:
            continue
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw
        out.setdefault(key, []).append(parsed)
    return out


@dataclass
class ListQuery:
    parent_ids: list[str] | None = None
    parent_fq_name: list[str] | None = None
    parent_type: str | None = None
    back_ref_ids: list[str] | None = None
    obj_uuids: list[str] | None = None
    fq_names: list[str] | None = None
    filters: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, params: dict[str, Any]) -> ListQuery:
        fq_str = params.get("parent_fq_name_str")
        return cls(
            parent_ids=split(params.get("parent_id")),
            parent_fq_name=fq_str.split(":") if fq_str else None,
            parent_type=params.get("parent_type"),
            back_ref_ids=split(params.get("back_ref_id")),
            obj_uuids=split(params.get("obj_uuids")),
            fq_names=split(params.get("fq_names")),
            filters=parse_filters(params.get("filters")),
        )


def select(store: Store, spec: TypeSpec, q: ListQuery) -> list[Obj]:
    objs = _anchor(store, spec, q)
    if q.filters:
        objs = [o for o in objs if _matches(o, spec, q.filters)]
    return objs


def _page_key(obj: Obj) -> str:
    return ":".join(obj.fq_name) + ":" + obj.uuid


def paginate(objs: list[Obj], limit: str | None, marker: str | None
             ) -> tuple[list[Obj], str | None] | None:
    """`page_limit` / `page_marker`, as the API server's lists take them: the page after the
    marker, in fq_name-string order, and the marker to ask for the next one (None after the
    last page). None when the request asked for no page."""
    if not limit:
        return None
    try:
        size = int(limit)
    except ValueError:
        raise ValueError(f"page_limit must be an integer, not {limit!r}") from None
    ordered = sorted(objs, key=_page_key)
    if marker:
        ordered = [o for o in ordered if _page_key(o) > marker]
    page = ordered[:size] if size > 0 else ordered
    more = len(ordered) > len(page)
    return page, (_page_key(page[-1]) if more and page else None)


def _anchor(store: Store, spec: TypeSpec, q: ListQuery) -> list[Obj]:
    parents = _parents(store, spec, q)
    if parents is not None:
        objs = [o for p in parents for o in store.children_of(p, spec.name)]
        if q.obj_uuids is not None:
            wanted = set(q.obj_uuids)
            objs = [o for o in objs if o.uuid in wanted]
        if q.back_ref_ids is not None:
            targets = set(q.back_ref_ids)
            objs = [o for o in objs if any(targets & r.keys() for r in o.refs.values())]
        return objs
    if q.back_ref_ids is not None:
        seen: dict[str, Obj] = {}
        for target in q.back_ref_ids:
            for obj in store.referrers(target, spec.name):
                seen.setdefault(obj.uuid, obj)
        return list(seen.values())
    if q.obj_uuids is not None:
        found = (store.get(u) for u in dict.fromkeys(q.obj_uuids))
        return [o for o in found if o is not None and o.type == spec.name]
    if q.fq_names is not None:
        uuids = (store.uuid_of(spec.name, name.split(":")) for name in q.fq_names)
        return [store.objs[u] for u in dict.fromkeys(uuids) if u]
    return sorted(store.of_type(spec.name), key=lambda o: ":".join(o.fq_name))


def _parents(store: Store, spec: TypeSpec, q: ListQuery) -> list[str] | None:
    if q.parent_fq_name is not None:
        types = [resource_type(q.parent_type)] if q.parent_type else spec.parents
        found = (store.uuid_of(t, q.parent_fq_name) for t in types if t != CONFIG_ROOT)
        return [u for u in found if u]
    return q.parent_ids


def _matches(obj: Obj, spec: TypeSpec, filters: dict[str, list[Any]]) -> bool:
    for key, values in filters.items():
        if key not in spec.props:
            continue  # the server ignores filters on non-property fields
        if not any(_match_value(obj.props.get(key), v) for v in values):
            return False
    return True


def _match_value(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict) and isinstance(actual, dict):
        return all(_match_value(actual.get(k), v) for k, v in wanted.items())
    return actual == wanted

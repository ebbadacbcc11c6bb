"""The action endpoints (vnc-rest.md 2.8-2.13) as functions over the backend, no HTTP.

ref-update (ADD replaces the attr, DELETE of a missing ref is a no-op; both go through the
type's update hook), ref-relax-for-delete, prop-collection-update/get (map props keyed by
their key field, list props by position = index), useragent-kv, chown, chmod and set-tag.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from emulators.contrail import errors
from emulators.contrail.backend import Backend, canonical_uuid
from emulators.contrail.hooks.projects import tag_type_of
from emulators.contrail.schema import TYPES, obj_type, resource_type
from emulators.contrail.store import Obj


def _need(body: dict, *keys: str) -> None:
    missing = [k for k in keys if body.get(k) in (None, "")]
    if missing:
        raise errors.bad_request(f"Bad Request: missing {', '.join(missing)}")


def _obj(b: Backend, uuid: str) -> Obj:
    obj = b.store.get(uuid)
    if obj is None:
        raise errors.id_not_found(uuid)
    return obj


# refs ----------------------------------------------------------------------------------------
def ref_update(b: Backend, body: dict[str, Any]) -> str:
    _need(body, "type", "uuid", "ref-type", "operation")
    operation = str(body["operation"]).upper()
    if operation not in ("ADD", "DELETE"):
        raise errors.bad_request(f"Bad Request: operation {body['operation']} not supported")
    spec = b.spec(body["type"])
    obj = b.get(spec.name, body["uuid"])
    ref_type = resource_type(str(body["ref-type"]).removesuffix("_refs"))
    ref_field = obj_type(ref_type) + "_refs"
    if ref_field not in spec.refs:
        raise errors.bad_request(f"Bad Request: {spec.name} has no reference to {ref_type}")
    ref_uuid = body.get("ref-uuid")
    if not ref_uuid:
        if not body.get("ref-fq-name"):
            raise errors.bad_request("Bad Request: ref-uuid or ref-fq-name needed")
        ref_uuid = b.fqname_to_id(ref_type, body["ref-fq-name"])
    elif operation == "ADD" and (b.store.get(ref_uuid) is None
                                 or b.store.get(ref_uuid).type != ref_type):
        raise errors.id_not_found(ref_uuid)
    targets = dict(obj.refs.get(ref_field, {}))
    if operation == "ADD":
        targets[ref_uuid] = body.get("attr") if spec.refs[ref_field][1] else None
    elif targets.pop(ref_uuid, "absent") == "absent":
        return obj.uuid
    b.apply_update(obj, {}, {ref_field: targets})
    return obj.uuid


def ref_relax(b: Backend, body: dict[str, Any]) -> str:
    _need(body, "uuid", "ref-uuid")
    referrer = _obj(b, body["uuid"])
    _obj(b, body["ref-uuid"])
    b.relaxed.setdefault(body["ref-uuid"], set()).add(referrer.uuid)
    b.on_change("")
    return referrer.uuid


# property collections ------------------------------------------------------------------------
def _collection(obj: Obj, name: str) -> tuple[str, str | None]:
    """(wrapper key, map key name or None for a list prop); 400 for other fields."""
    spec = TYPES[obj.type]
    if name in spec.map_props:
        return spec.map_props[name]
    if name in spec.list_props:
        return spec.list_props[name], None
    raise errors.bad_request(f"Bad Request: {name} is not a list or map property of {obj.type}")


def prop_collection_update(b: Backend, body: dict[str, Any]) -> None:
    _need(body, "uuid")
    obj = _obj(b, body["uuid"])
    for update in body.get("updates") or []:
        name, operation = update.get("field"), str(update.get("operation", "")).lower()
        wrapper, key_name = _collection(obj, name)
        items = list((obj.props.get(name) or {}).get(wrapper) or [])
        position = update.get("position")
        value = update.get("value")
        if key_name is not None:
            items = _map_op(items, key_name, operation, value, position)
        else:
            items = _list_op(items, operation, value, position)
        if items:
            obj.props[name] = {wrapper: items}
        else:
            obj.props.pop(name, None)
    b.touch(obj)


def _map_op(items: list, key_name: str, operation: str, value: Any, position: Any) -> list:
    if operation == "set":
        key = (value or {}).get(key_name)
        items = [i for i in items if i.get(key_name) != key] + [value]
    elif operation == "delete":
        items = [i for i in items if i.get(key_name) != position]
    else:
        raise errors.bad_request(f"Bad Request: unsupported map operation {operation}")
    return sorted(items, key=lambda i: str(i.get(key_name)))


def _list_op(items: list, operation: str, value: Any, position: Any) -> list:
    index = int(position) if str(position or "").isdigit() else None
    if operation == "add":
        items.insert(len(items) if index is None else index, value)
    elif operation == "modify" and index is not None and index < len(items):
        items[index] = value
    elif operation == "delete" and index is not None and index < len(items):
        items.pop(index)
    else:
        raise errors.bad_request(f"Bad Request: unsupported list operation {operation}")
    return items


def prop_collection_get(b: Backend, uuid: str, fields: list[str], position: str | None) -> dict:
    obj = _obj(b, uuid)
    out: dict[str, list] = {}
    for name in fields:
        wrapper, key_name = _collection(obj, name)
        items = (obj.props.get(name) or {}).get(wrapper) or []
        pairs = [[item, item.get(key_name) if key_name else str(i)] for i, item in enumerate(items)]
        if position is not None:
            pairs = [p for p in pairs if p[1] == position]
        out[name] = pairs
    return out


# misc ----------------------------------------------------------------------------------------
def useragent_kv(b: Backend, body: dict[str, Any]) -> dict | None:
    _need(body, "operation", "key")
    operation, key = body["operation"], body["key"]
    if operation == "STORE":
        b.kv[key] = body.get("value")
        b.on_change("")
        return None
    if operation == "RETRIEVE":
        if key not in b.kv:
            raise errors.kv_not_found(key)
        return {"value": b.kv[key]}
    if operation == "DELETE":
        b.kv.pop(key, None)
        b.on_change("")
        return None
    raise errors.ApiError(404, f"Invalid Operation {operation}")


def chown(b: Backend, body: dict[str, Any]) -> None:
    _need(body, "uuid", "owner")
    obj = _obj(b, canonical_uuid(body["uuid"]))
    try:
        uuidlib.UUID(str(body["owner"]))  # dashed or not, like the server's check
    except ValueError:
        raise errors.invalid_uuid() from None
    obj.props["perms2"] = {**obj.props["perms2"], "owner": body["owner"]}
    b.touch(obj)


def chmod(b: Backend, body: dict[str, Any]) -> None:
    _need(body, "uuid")
    obj = _obj(b, canonical_uuid(body["uuid"]))
    perms2 = dict(obj.props["perms2"])
    for key in ("owner", "owner_access", "share", "global_access"):
        if body.get(key) is not None:
            perms2[key] = body[key]
    if body.get("global_access") is not None and "is_shared" in TYPES[obj.type].props:
        obj.props["is_shared"] = body["global_access"] != 0
    obj.props["perms2"] = perms2
    b.touch(obj)


def set_tag(b: Backend, body: dict[str, Any]) -> None:
    _need(body, "obj_type", "obj_uuid")
    obj = b.get(b.spec(body["obj_type"]).name, body["obj_uuid"])
    targets = dict(obj.refs.get("tag_refs", {}))
    for tag_type, spec in body.items():
        if tag_type in ("obj_type", "obj_uuid"):
            continue
        tag_type = tag_type.lower()
        current = {u for u in targets if tag_type_of(b, b.store.get(u)) == tag_type}
        if spec is None:
            targets = {u: None for u in targets if u not in current}
            continue
        adds = spec.get("add_values") or ([spec["value"]] if spec.get("value") else [])
        removes = spec.get("delete_values") or []
        if tag_type != "label" and (len(adds) > 1 or removes):
            raise errors.bad_request(f"Tag type {tag_type} cannot be set multiple times")
        if tag_type != "label":
            targets = {u: None for u in targets if u not in current}
        for value in adds:
            targets[_tag_uuid(b, obj, tag_type, value, spec.get("is_global"))] = None
        for value in removes:
            targets.pop(_tag_uuid(b, obj, tag_type, value, spec.get("is_global")), None)
    b.apply_update(obj, {}, {"tag_refs": targets})


def _tag_uuid(b: Backend, obj: Obj, tag_type: str, value: str, is_global: bool) -> str:
    name = f"{tag_type}={value}"
    fq_name = [name] if is_global else [*_project_fq(b, obj), name]
    uuid = b.store.uuid_of("tag", fq_name)
    if uuid is None:
        raise errors.tag_not_found(fq_name)
    return uuid


def _project_fq(b: Backend, obj: Obj) -> tuple[str, ...]:
    node: Obj | None = obj
    while node is not None and node.type != "project":
        node = b.store.get(node.parent_uuid) if node.parent_uuid else None
    return node.fq_name if node is not None else ()

"""The config API's object operations: create, read, update, delete, list, fqname lookups.

No HTTP here: methods take plain dicts, return `Obj`s and raise `errors.ApiError`. Generic
rules (fq_name/uuid uniqueness, parents, ref resolution, id_perms/perms2 defaults, delete
refusal) come from the schema table; per-type behaviour runs through `hooks.HOOKS`.

Concurrency: every method is synchronous and never awaits, and the ASGI app calls them
directly on the event loop, so operations never interleave: no locks needed, and each request
sees and leaves a consistent store. Mutations call `on_change(uuid)` (persistence).
"""

from __future__ import annotations

import datetime
import uuid as uuidlib
from collections.abc import Callable
from typing import Any

from emulators.contrail import errors
from emulators.contrail.addressing import Addressing
from emulators.contrail.hooks import HOOKS, TypeHooks
from emulators.contrail.ipam import IdPool
from emulators.contrail.schema import CONFIG_ROOT, TYPES, TypeSpec, resource_type
from emulators.contrail.store import Obj, Store

NO_HOOKS = TypeHooks()
ID_PERMS_REQUEST_KEYS = ("enable", "description", "user_visible", "creator")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat()


def canonical_uuid(value: Any) -> str:
    try:
        if str(uuidlib.UUID(str(value))) == value:
            return value
    except ValueError:
        pass
    raise errors.invalid_uuid()


class Backend:
    """All objects plus the server-side state derived from them (allocators, id pools)."""

    def __init__(self) -> None:
        self.store = Store()
        self.addressing = Addressing(self.store)
        self.ids = {"vn": IdPool(1), "sg": IdPool(1), "tag-type": IdPool(0x100)}
        self.tag_values: dict[str, IdPool] = {}
        self.relaxed: dict[str, set[str]] = {}  # referred uuid -> referrers relaxed for delete
        self.kv: dict[str, Any] = {}
        self.on_change: Callable[[str], None] = lambda uuid: None

    # lookups ---------------------------------------------------------------------------------
    def spec(self, type_: str) -> TypeSpec:
        spec = TYPES.get(resource_type(type_))
        if spec is None:
            raise errors.unknown_type(type_)
        return spec

    def get(self, type_: str, uuid: str, *, missing=errors.no_object) -> Obj:
        obj = self.store.get(uuid)
        if obj is None or obj.type != type_:
            raise missing(type_, uuid)
        return obj

    def fqname_to_id(self, type_: str, fq_name) -> str:
        uuid = self.store.uuid_of(self.spec(type_).name, fq_name or ())
        if uuid is None:
            raise errors.name_not_found(fq_name)
        return uuid

    def id_to_fqname(self, uuid: str) -> Obj:
        obj = self.store.get(uuid)
        if obj is None:
            raise errors.id_not_found(uuid)
        return obj

    # create ----------------------------------------------------------------------------------
    def create(self, type_: str, body: dict[str, Any]) -> Obj:
        spec = self.spec(type_)
        hooks = HOOKS.get(spec.name, NO_HOOKS)
        if hooks.prepare:
            hooks.prepare(self, body)
        fq_name = self._fq_name(body)
        uuid = self._new_uuid(body.get("uuid"))
        parent_type, parent_uuid = self._parent(spec, body, fq_name)
        existing = self.store.uuid_of(spec.name, fq_name)
        if existing:
            raise errors.fq_name_exists(fq_name, existing)
        obj = Obj(spec.name, uuid, fq_name, parent_type, parent_uuid)
        obj.props = self._create_props(spec, body)
        obj.refs = self._resolve_refs(spec, body, uuid_first=False)
        self._defaults(obj, body)
        if hooks.pre_create:
            hooks.pre_create(self, obj, body)
        self.store.insert(obj)
        if hooks.post_create:
            hooks.post_create(self, obj)
        self.on_change(obj.uuid)
        return obj

    def _fq_name(self, body: dict[str, Any]) -> tuple[str, ...]:
        fq_name = body.get("fq_name")
        if not fq_name or not isinstance(fq_name, list):
            raise errors.no_fq_name()
        if not all(isinstance(part, str) and part for part in fq_name):
            raise errors.bad_request(f"Bad Request, invalid fq_name {fq_name}")
        if ":" in fq_name[-1]:
            raise errors.bad_request(f"Bad Request, name {fq_name[-1]} contains ':'")
        return tuple(fq_name)

    def _new_uuid(self, requested: Any) -> str:
        if requested is None:
            return str(uuidlib.uuid4())
        uuid = canonical_uuid(requested)
        taken = self.store.get(uuid)
        if taken is not None:
            raise errors.uuid_exists(uuid, taken.fq_name)
        return uuid

    def _parent(self, spec: TypeSpec, body: dict, fq_name: tuple) -> tuple[str | None, str | None]:
        """Parent from parent_type + fq_name[:-1] (the client's parent_uuid is overwritten)."""
        parent_type = body.get("parent_type")
        if parent_type is None and body.get("parent_uuid") in self.store.objs:
            parent_type = self.store.objs[body["parent_uuid"]].type
        if parent_type is None:
            if len(spec.parents) == 1:
                parent_type = spec.parents[0]
            elif CONFIG_ROOT in spec.parents and len(fq_name) == 1:
                parent_type = CONFIG_ROOT
            else:
                raise errors.missing_parent_type()
        parent_type = resource_type(parent_type)
        if parent_type not in spec.parents:
            raise errors.invalid_parent_type(parent_type, spec.name)
        if parent_type == CONFIG_ROOT:
            if len(fq_name) != 1:
                raise errors.bad_request(f"Invalid fq_name for config-root child: {list(fq_name)}")
            return None, None
        if len(fq_name) < 2:
            raise errors.bad_request(f"Invalid fq_name for {spec.name}: {list(fq_name)}")
        parent_uuid = self.store.uuid_of(parent_type, fq_name[:-1])
        if parent_uuid is None:
            raise errors.parent_missing(fq_name[:-1], parent_type)
        return parent_type, parent_uuid

    def _create_props(self, spec: TypeSpec, body: dict[str, Any]) -> dict[str, Any]:
        props = {}
        for key, value in body.items():
            if key in spec.props and value is not None and key not in ("id_perms", "perms2"):
                self._check_enum(spec, key, value)
                props[key] = value
        return props

    @staticmethod
    def _check_enum(spec: TypeSpec, key: str, value: Any) -> None:
        allowed = spec.enums.get(key)
        if allowed and value not in allowed:
            raise errors.bad_property(f"{key} value {value!r} is not one of {list(allowed)}")

    def _defaults(self, obj: Obj, body: dict[str, Any]) -> None:
        """id_perms, perms2 and display_name as the server fills them (vnc-rest.md 4.3)."""
        stamp = now()
        value = uuidlib.UUID(obj.uuid).int
        id_perms = {
            "permissions": {"owner": "cloud-admin", "owner_access": 7, "group": "cloud-admin-group",
                            "group_access": 7, "other_access": 7},
            "uuid": {"uuid_mslong": value >> 64, "uuid_lslong": value & (2**64 - 1)},
            "enable": True, "created": stamp, "last_modified": stamp, "description": None,
            "user_visible": True, "creator": None,
        }
        requested = body.get("id_perms") or {}
        id_perms.update({k: requested[k] for k in ID_PERMS_REQUEST_KEYS
                         if requested.get(k) is not None})
        perms2 = {"owner": self._owner(obj), "owner_access": 7, "global_access": 0, "share": []}
        perms2.update({k: v for k, v in (body.get("perms2") or {}).items() if v is not None})
        obj.props.update(id_perms=id_perms, perms2=perms2)
        obj.props.setdefault("display_name", obj.name)

    def _owner(self, obj: Obj) -> str:
        if obj.type == "project":
            return obj.uuid.replace("-", "")
        parent = self.store.get(obj.parent_uuid) if obj.parent_uuid else None
        if parent is not None and parent.type == "project":
            return parent.props["perms2"]["owner"]
        return "cloud-admin"

    def _resolve_refs(self, spec: TypeSpec, body: dict, *, uuid_first: bool) -> dict[str, dict]:
        """Refs by `to` on create, by `uuid` first on update (vnc-rest.md 2.2 step 5, 2.4)."""
        refs: dict[str, dict[str, Any]] = {}
        for ref_field, (target_type, has_attr) in spec.refs.items():
            if ref_field not in body:
                continue
            targets: dict[str, Any] = {}
            for ref in body[ref_field] or ():
                target = self._ref_target(target_type, ref, uuid_first)
                targets[target] = ref.get("attr") if has_attr else None
            refs[ref_field] = targets
        return refs

    def _ref_target(self, target_type: str, ref: dict, uuid_first: bool) -> str:
        by_uuid = ref.get("uuid")
        if by_uuid and (uuid_first or not ref.get("to")):
            target = self.store.get(by_uuid)
            if target is not None and target.type == target_type:
                return by_uuid
            if not ref.get("to"):
                raise errors.unknown_reference("update" if uuid_first else "create")
        found = self.store.uuid_of(target_type, ref.get("to") or ())
        if found is None:
            raise errors.unknown_reference("update" if uuid_first else "create")
        return found

    # update ----------------------------------------------------------------------------------
    def update(self, type_: str, uuid: str, body: dict[str, Any]) -> Obj:
        obj = self.get(self.spec(type_).name, uuid)
        if not body:
            return obj
        spec = TYPES[obj.type]
        props: dict[str, Any] = {}
        for key, value in body.items():
            if key in spec.props and key not in ("id_perms", "perms2"):
                if value is not None:
                    self._check_enum(spec, key, value)
                props[key] = value
        if body.get("id_perms"):
            merged = dict(obj.props["id_perms"])
            merged.update({k: body["id_perms"][k] for k in ("enable", "description")
                           if body["id_perms"].get(k) is not None})
            props["id_perms"] = merged
        if body.get("perms2"):
            if not body["perms2"].get("owner"):
                raise errors.bad_request("Bad Request, perms2 needs an owner")
            props["perms2"] = {**obj.props["perms2"], **body["perms2"]}
        refs = self._resolve_refs(spec, body, uuid_first=True)
        self.apply_update(obj, props, refs)
        return obj

    def apply_update(self, obj: Obj, props: dict[str, Any], refs: dict[str, dict]) -> None:
        """Run the type's update hook, then write props (None removes) and whole ref fields."""
        hooks = HOOKS.get(obj.type, NO_HOOKS)
        if hooks.pre_update:
            hooks.pre_update(self, obj, props, refs)
        for key, value in props.items():
            if value is None:
                obj.props.pop(key, None)
            else:
                obj.props[key] = value
        obj.props.setdefault("display_name", obj.name)
        for ref_field, targets in refs.items():
            self.store.set_refs(obj, ref_field, targets)
        self.touch(obj)
        if hooks.post_update:
            hooks.post_update(self, obj)

    def touch(self, obj: Obj) -> None:
        obj.props["id_perms"] = {**obj.props["id_perms"], "last_modified": now()}
        self.on_change(obj.uuid)

    # delete ----------------------------------------------------------------------------------
    def delete(self, type_: str, uuid: str) -> None:
        obj = self.get(self.spec(type_).name, uuid, missing=lambda _t, u: errors.id_not_found(u))
        hooks = HOOKS.get(obj.type, NO_HOOKS)
        if hooks.pre_delete:
            hooks.pre_delete(self, obj)
        self._check_children(obj)
        self._check_back_refs(obj)
        self.force_delete(obj)

    def _check_children(self, obj: Obj) -> None:
        for child_type, derived in TYPES[obj.type].children.values():
            if derived:
                continue
            kids = [k for k in self.store.children_of(obj.uuid, child_type)
                    if k.name != f"default-{child_type}"]
            if kids:
                raise errors.children_present([self.href(k) for k in kids])

    def _check_back_refs(self, obj: Obj) -> None:
        relaxed = self.relaxed.get(obj.uuid, set())
        for src_type in list(self.store.back_refs.get(obj.uuid, {})):
            referrers = self.store.referrers(obj.uuid, src_type)
            blockers = [s for s in referrers if s.uuid not in relaxed]
            if blockers:
                raise errors.still_referred([self.href(s) for s in blockers])

    def force_delete(self, obj: Obj) -> None:
        """Delete without checks: own refs, then derived/default children, then referrers' refs."""
        for ref_field in list(obj.refs):
            self.store.set_refs(obj, ref_field, {})
        for child_type, _derived in TYPES[obj.type].children.values():
            for kid in self.store.children_of(obj.uuid, child_type):
                self.force_delete(kid)
        ref_field = TYPES[obj.type].obj_type + "_refs"
        for src_type in list(self.store.back_refs.get(obj.uuid, {})):
            for src in self.store.referrers(obj.uuid, src_type):
                self.store.del_ref(src, ref_field, obj.uuid)
                self.on_change(src.uuid)
        self.relaxed.pop(obj.uuid, None)
        self.store.remove(obj)
        hooks = HOOKS.get(obj.type, NO_HOOKS)
        if hooks.post_delete:
            hooks.post_delete(self, obj)
        self.on_change(obj.uuid)

    @staticmethod
    def href(obj: Obj) -> str:
        return f"{errors.HREF_BASE}/{obj.type}/{obj.uuid}"

    # restore ---------------------------------------------------------------------------------
    def restore(self, objs: list[Obj]) -> None:
        """Load persisted objects and rebuild what derives from them (allocators, id pools)."""
        for obj in sorted(objs, key=lambda o: o.seq):
            self.store.insert(obj)
        self.store.bump_seq(max((o.seq for o in objs), default=0))
        for obj in sorted(objs, key=lambda o: o.seq):
            hooks = HOOKS.get(obj.type, NO_HOOKS)
            if hooks.restore:
                hooks.restore(self, obj)


"""project, tag and tag-type behaviour (vnc-rest.md 5.3).

A project gets a `default-application-policy-set` child and a ref to it. A tag is renamed
`<type>=<value>` before any check, gets (or creates) its tag-type, a `tag_type_refs` ref and a
`tag_id` made of the type id and a per-type value id (`0x00010002`: type 1, value 2).
"""

from __future__ import annotations

from emulators.contrail import errors
from emulators.contrail.hooks.base import TypeHooks, first
from emulators.contrail.ipam import IdPool

APS = "default-application-policy-set"
# sandesh_common TagTypeNameToId (vnc-rest.md 10: only these are predefined).
PREDEFINED_TAG_TYPES = {"label": 0, "application": 1, "tier": 2, "deployment": 3, "site": 4,
                        "neutron_fwaas": 5}


def project_post_create(b, obj) -> None:
    aps = b.create("application-policy-set", {
        "fq_name": [*obj.fq_name, APS], "parent_type": "project", "all_applications": True})
    b.store.add_ref(obj, "application_policy_set_refs", aps.uuid, None)


# tag-type ------------------------------------------------------------------------------------
def _type_id(value: str | None) -> int | None:
    return int(value, 16) if value else None


def tag_type_pre_create(b, obj, body) -> None:
    if not obj.props.get("tag_type_id"):
        number = PREDEFINED_TAG_TYPES.get(obj.name)
        number = b.ids["tag-type"].allocate() if number is None else number
        obj.props["tag_type_id"] = f"0x{number:04x}"
    b.tag_values.setdefault(obj.name, IdPool(1))


def tag_type_post_delete(b, obj) -> None:
    b.ids["tag-type"].free(_type_id(obj.props.get("tag_type_id")))


def tag_type_restore(b, obj) -> None:
    b.ids["tag-type"].reserve(_type_id(obj.props.get("tag_type_id")))
    b.tag_values.setdefault(obj.name, IdPool(1))


# tag -----------------------------------------------------------------------------------------
def tag_prepare(b, body) -> None:
    type_name, value = body.get("tag_type_name"), body.get("tag_value")
    if not type_name or value is None:
        raise errors.bad_request("Tag must have a tag_type_name and a tag_value")
    if body.get("tag_type_refs"):
        raise errors.bad_request("Tag Type reference is not setable")
    name = f"{type_name.lower()}={value}"
    body["tag_type_name"] = type_name.lower()
    if isinstance(body.get("fq_name"), list) and body["fq_name"]:
        body["fq_name"] = [*body["fq_name"][:-1], name]
    body["display_name"] = name


def tag_post_create(b, obj) -> None:
    type_name = obj.props["tag_type_name"]
    type_uuid = b.store.uuid_of("tag-type", (type_name,))
    if type_uuid is None:
        type_uuid = b.create("tag-type", {
            "fq_name": [type_name], "id_perms": {"user_visible": False}}).uuid
    tag_type = b.store.get(type_uuid)
    b.store.add_ref(obj, "tag_type_refs", type_uuid, None)
    value_id = b.tag_values.setdefault(type_name, IdPool(1)).allocate()
    obj.props["tag_id"] = f"0x{_type_id(tag_type.props['tag_type_id']):04x}{value_id:04x}"


def _value_id(obj) -> int | None:
    return int(obj.props["tag_id"], 16) & 0xFFFF if obj.props.get("tag_id") else None


def tag_post_delete(b, obj) -> None:
    pool = b.tag_values.get(obj.props.get("tag_type_name"))
    if pool is not None:
        pool.free(_value_id(obj))


def tag_restore(b, obj) -> None:
    pool = b.tag_values.setdefault(obj.props.get("tag_type_name"), IdPool(1))
    pool.reserve(_value_id(obj))


def tag_type_of(b, tag) -> str | None:
    """The tag-type name of a tag object (from its ref, else its prop)."""
    ref = b.store.get(first(tag.refs.get("tag_type_refs")) or "")
    return ref.name if ref is not None else tag.props.get("tag_type_name")


HOOKS = {
    "project": TypeHooks(post_create=project_post_create),
    "tag-type": TypeHooks(pre_create=tag_type_pre_create, post_delete=tag_type_post_delete,
                          restore=tag_type_restore),
    "tag": TypeHooks(prepare=tag_prepare, post_create=tag_post_create,
                     post_delete=tag_post_delete, restore=tag_restore),
}

"""Idempotent building blocks for reconcilers: make an object be as desired, whatever exists.

`ensure` creates an object under its deterministic uuid; when it already exists it reads it
and updates only what differs, so running it twice, or on two workers, makes one object and
costs one call in the common case. Fields the server fills in (rule uuids, ids, subnet uuids
in IPAM refs, MAC addresses) are not "differences": desired values are matched as subsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contrail.client import ContrailClient
from contrail.errors import AlreadyExists, NotFound


class Taken(AlreadyExists):
    """The name is held by another object (another uuid) that ensure must not adopt."""

    def __init__(self, message: str, holder: dict):
        super().__init__(message)
        self.holder = holder


class Conflict(AlreadyExists):
    """Refused with 409, yet no object holds the name: what is taken is something else, such
    as a requested address."""


IDENTITY = ("uuid", "fq_name", "parent_type", "parent_uuid", "annotations")


@dataclass(frozen=True)
class Ensured:
    uuid: str
    action: str  # "created", "updated" or "unchanged"


def matches(desired: Any, actual: Any) -> bool:
    """Does `actual` satisfy `desired`? None in desired means "whatever the server chose"."""
    if desired is None:
        return True
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            matches(v, actual.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(actual, list) and len(desired) == len(actual)
                and all(matches(d, a) for d, a in zip(desired, actual, strict=True)))
    return desired == actual


def _ref_key(ref: dict) -> str:
    return ref.get("uuid") or ":".join(ref["to"])


def refs_match(desired: list[dict], actual: list[dict] | None) -> bool:
    """Same targets, and each desired attr satisfied (attrs the server rewrites stay equal)."""
    by_key = {_ref_key(r): r for r in actual or []}
    by_fq = {":".join(r["to"]): r for r in actual or []}
    if len(by_key) != len(desired):
        return False
    for ref in desired:
        have = by_key.get(_ref_key(ref)) or by_fq.get(":".join(ref["to"]))
        if have is None:
            return False
        attr = ref.get("attr")
        if attr and not _attr_matches(attr, have.get("attr")):
            return False
    return True


def _attr_matches(desired: dict, actual: dict | None) -> bool:
    # An empty list in a desired attr (e.g. flat-subnet ipam_subnets) accepts what the
    # server put there.
    trimmed = {k: v for k, v in desired.items() if v != []}
    return matches(trimmed, actual or {})


def annotations_of(obj: dict) -> dict[str, str]:
    pairs = (obj.get("annotations") or {}).get("key_value_pair") or []
    return {p["key"]: p["value"] for p in pairs}


def as_annotations(pairs: dict[str, str]) -> dict:
    return {"key_value_pair": [{"key": k, "value": v} for k, v in sorted(pairs.items())]}


def differences(desired: dict, actual: dict) -> dict[str, Any]:
    """The fields of `desired` that `actual` does not satisfy, ready for a PUT."""
    out = {}
    for name, value in desired.items():
        if name in IDENTITY:
            continue
        same = (refs_match(value, actual.get(name)) if name.endswith("_refs")
                else matches(value, actual.get(name)))
        if not same:
            out[name] = value
    return out


def ensure(client: ContrailClient, type_: str, desired: dict, *,
           annotations: dict[str, str] | None = None,
           create_only: dict | None = None, adopt: bool = True) -> Ensured:
    """Create `desired` (which carries its uuid) or bring the existing object in line.

    `create_only` fields go into the create body but are never compared or updated. When the
    name is held by an object with another uuid, `adopt` takes that object over (objects made
    by upstream kube-manager, for a migration); otherwise `Taken` is raised."""
    body = {**desired, **(create_only or {})}
    if annotations:
        body["annotations"] = as_annotations(annotations)
    try:
        return Ensured(client.create(type_, body)["uuid"], "created")
    except AlreadyExists as exc:
        refused = exc
    try:
        actual = _find(client, type_, desired)
    except NotFound:  # nothing holds the name: the conflict is elsewhere (an address in use)
        raise Conflict(str(refused)) from refused
    if not adopt and desired.get("uuid") and actual["uuid"] != desired["uuid"]:
        raise Taken(f"{type_} {':'.join(desired['fq_name'])} is held by {actual['uuid']}, "
                    f"not {desired['uuid']}", actual)
    changes = differences(desired, actual)
    if changes:
        client.update(type_, actual["uuid"], changes)
    missing = {k: v for k, v in (annotations or {}).items()
               if annotations_of(actual).get(k) != v}
    client.set_annotations(type_, actual["uuid"], missing)
    return Ensured(actual["uuid"], "updated" if changes or missing else "unchanged")


def _find(client: ContrailClient, type_: str, desired: dict) -> dict:
    """The object that blocked the create: ours by uuid, or a namesake made by someone else."""
    if desired.get("uuid"):
        try:
            return client.read(type_, desired["uuid"])
        except NotFound:
            pass
    uuid = client.fq_name_to_id(type_, desired["fq_name"])
    return client.read(type_, uuid)


def delete_if_exists(client: ContrailClient, type_: str, uuid: str) -> bool:
    """Delete; True if something was deleted, False if it was already gone."""
    try:
        client.delete(type_, uuid)
    except NotFound:
        return False
    return True


def set_ref(client: ContrailClient, type_: str, uuid: str, ref_type: str, ref_uuid: str,
            attr: dict | None = None) -> None:
    client.ref_update(type_, uuid, ref_type, ref_uuid, "ADD", attr=attr)


def unset_ref(client: ContrailClient, type_: str, uuid: str, ref_type: str,
              ref_uuid: str) -> None:
    client.ref_update(type_, uuid, ref_type, ref_uuid, "DELETE")

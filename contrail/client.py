"""Typed calls of the VNC REST API (vnc-rest.md section 2), one method per operation.

Objects travel as plain dicts in wire form: `{"fq_name": [...], "parent_type": ..., props,
"<type>_refs": [{"to": [...], "uuid": ..., "attr": ...}]}`. Types use the resource spelling
(`virtual-machine-interface`); field names use underscores, as on the wire.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterator
from typing import Any

from config.settings import Settings
from contrail.errors import ContrailError
from contrail.transport import Gate, KeystoneAuth, Transport

# The official client switches to POST /list-bulk-collection above this many ids.
LIST_BULK_THRESHOLD = 25


def field_name(resource_type: str) -> str:
    """`virtual-machine-interface` -> `virtual_machine_interface` (wire field spelling)."""
    return resource_type.replace("-", "_")


class ContrailClient:
    """One client per process; safe to share between threads."""

    def __init__(self, transport: Transport):
        self.transport = transport

    @classmethod
    def from_settings(cls, settings: Settings, *, gate: Gate | None = None) -> ContrailClient:
        auth = None
        if settings.contrail_auth == "keystone":
            if not settings.keystone_url:
                raise ValueError("contrail_auth=keystone needs keystone_url")
            password = settings.contrail_password
            auth = KeystoneAuth(settings.keystone_url, settings.contrail_user,
                                password.get_secret_value() if password else "",
                                settings.contrail_tenant,
                                verify=settings.contrail_ca_file or True)
        return cls(Transport(settings.contrail_urls, auth=auth, timeout=settings.contrail_timeout,
                             retry_seconds=settings.contrail_retry_seconds,
                             ca_file=settings.contrail_ca_file, gate=gate))

    def close(self) -> None:
        self.transport.close()

    def _call(self, method: str, path: str, kind: str, *, params=None, json=None):
        return self.transport.request(method, path, kind=kind, params=params, json=json)

    # --- objects -------------------------------------------------------------------------
    def create(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        """POST /<type>s; returns the server's short answer (uuid, fq_name, parent_*)."""
        answer = self._call("POST", f"/{type_}s", type_, json={type_: obj})
        return answer.json()[type_]

    def read(self, type_: str, uuid: str, *, fields: list[str] | None = None,
             children: bool = False, back_refs: bool = False) -> dict[str, Any]:
        """GET /<type>/<uuid>: props and refs; children/back-refs on request, or `fields` only."""
        if fields:
            params = {"fields": ",".join(fields)}
        else:
            params = {k: "True" for k, wanted in (("exclude_children", children),
                                                  ("exclude_back_refs", back_refs)) if not wanted}
        return self._call("GET", f"/{type_}/{uuid}", type_, params=params).json()[type_]

    def update(self, type_: str, uuid: str, fields: dict[str, Any]) -> None:
        """PUT only the given fields (a ref field given here replaces the whole ref list)."""
        if fields:
            self._call("PUT", f"/{type_}/{uuid}", type_, json={type_: {"uuid": uuid, **fields}})

    def delete(self, type_: str, uuid: str) -> None:
        self._call("DELETE", f"/{type_}/{uuid}", type_)

    def list(self, type_: str, *, parent_id: list[str] | str | None = None,
             back_ref_id: list[str] | str | None = None,
             obj_uuids: list[str] | None = None, fields: list[str] | None = None,
             detail: bool = False, filters: dict[str, Any] | None = None) -> list[dict]:
        """GET /<type>s (POST /list-bulk-collection for long id lists); a list of objects.

        With `detail` each entry is the full object; otherwise uuid, fq_name, href (+ fields).
        """
        ids = {k: ([v] if isinstance(v, str) else list(v))
               for k, v in (("parent_id", parent_id), ("back_ref_id", back_ref_id),
                            ("obj_uuids", obj_uuids)) if v is not None}
        if any(not v for v in ids.values()):
            return []  # an empty anchor list means "nothing", not "everything"
        query: dict[str, Any] = {k: ",".join(v) for k, v in ids.items()}
        if fields:
            query["fields"] = ",".join(fields)
        if filters:
            query["filters"] = ",".join(f"{k}=={jsonlib.dumps(v)}" for k, v in filters.items())
        if any(len(v) > LIST_BULK_THRESHOLD for v in ids.values()):
            body = {**query, "type": type_, "detail": detail, "count": False, "shared": False}
            answer = self._call("POST", "/list-bulk-collection", type_, json=body)
        else:
            query.update(detail=str(detail), count="False", shared="False")
            answer = self._call("GET", f"/{type_}s", type_, params=query)
        items = answer.json()[f"{type_}s"]
        return [item[type_] for item in items] if detail else items

    def pages(self, type_: str, *, fields: list[str] | None = None,
              page_limit: int = 1000) -> Iterator[list[dict]]:
        """Every object of a type, a page at a time (`page_limit`, `page_marker`: the server
        answers the marker to ask for the next page). A server that does not paginate answers
        no marker, and its one answer is the one page."""
        marker, seen = None, set()
        while True:
            query: dict[str, Any] = {"detail": "False", "count": "False", "shared": "False",
                                     "page_limit": str(page_limit)}
            if fields:
                query["fields"] = ",".join(fields)
            if marker is not None:
                query["page_marker"] = marker
            answer = self._call("GET", f"/{type_}s", type_, params=query).json()
            items = answer[f"{type_}s"]
            if items and items[0].get("uuid") in seen:
                # a server (or proxy) that takes page_limit but not page_marker answers the
                # first page again: the list cannot be read to its end this way
                raise ContrailError(f"GET /{type_}s: the server answered a page again "
                                    "(page_marker not honoured)")
            if items:
                seen.add(items[0].get("uuid"))  # a page's first item: memory per page
                yield items
            marker = answer.get("marker")
            if not items or not marker:
                return

    def count(self, type_: str, **anchors) -> int:
        query = {k: v if isinstance(v, str) else ",".join(v) for k, v in anchors.items()}
        query.update(detail="False", count="True", shared="False")
        return self._call("GET", f"/{type_}s", type_, params=query).json()[f"{type_}s"]["count"]

    # --- names -----------------------------------------------------------------------------
    def fq_name_to_id(self, type_: str, fq_name: list[str]) -> str:
        body = {"type": type_, "fq_name": fq_name}
        return self._call("POST", "/fqname-to-id", type_, json=body).json()["uuid"]

    def id_to_fq_name(self, uuid: str) -> tuple[str, list[str]]:
        """(resource type, fq_name) of a uuid."""
        answer = self._call("POST", "/id-to-fqname", "any", json={"uuid": uuid}).json()
        return answer["type"], answer["fq_name"]

    # --- refs and collections --------------------------------------------------------------
    def ref_update(self, type_: str, uuid: str, ref_type: str, ref_uuid: str | None,
                   operation: str, *, ref_fq_name: list[str] | None = None,
                   attr: dict | None = None) -> None:
        """Add (or replace the attr of) / delete one ref; both are idempotent on the server."""
        body = {"type": type_, "uuid": uuid, "ref-type": ref_type, "ref-uuid": ref_uuid,
                "ref-fq-name": ref_fq_name, "operation": operation, "attr": attr}
        self._call("POST", "/ref-update", type_, json=body)

    def prop_collection_update(self, type_: str, uuid: str, updates: list[dict]) -> None:
        """Element-wise edits of list/map props, e.g. annotations (vnc-rest.md 2.10)."""
        self._call("POST", "/prop-collection-update", type_,
                   json={"uuid": uuid, "updates": updates})

    def set_annotations(self, type_: str, uuid: str, pairs: dict[str, str]) -> None:
        updates = [{"field": "annotations", "operation": "set",
                    "value": {"key": k, "value": v}, "position": k} for k, v in pairs.items()]
        if updates:
            self.prop_collection_update(type_, uuid, updates)

    def healthy(self) -> bool:
        """True when the current API server answers its home page."""
        try:
            self._call("GET", "/", "home")
        except Exception:
            return False
        return True

"""The API verbs over the store: create, get, list, update, patch, delete, with the real
server's metadata rules (uid, resourceVersion, generation, generateName, optimistic
concurrency, status subresource, finalizers, namespace lifecycle). No HTTP here: methods take
plain values and raise `ApiError`.

Deletion is immediate (no graceful period): a Pod disappears at once. A Namespace deletion
removes every object in it and then the Namespace, either at once (`namespace_grace=0`, the
default) or after staying `Terminating` for `namespace_grace` seconds, so the watcher can see
the Terminating phase. Objects with `metadata.finalizers` get a deletionTimestamp and go when
their last finalizer is removed.
"""

from __future__ import annotations

import asyncio
import copy
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from emulators.kube import errors
from emulators.kube.admission import Admission, check_resource_version, validate_name
from emulators.kube.ipam import NodePorts, ServiceIPs
from emulators.kube.listing import Paginator
from emulators.kube.patching import json_patch, merge_patch, strategic_merge_patch
from emulators.kube.resources import BY_KIND, RESOURCES, ResourceType
from emulators.kube.selectors import object_matcher
from emulators.kube.store import Store

Obj = dict[str, Any]
NAMESPACES = BY_KIND["Namespace"]
# The real server returns these kinds' last state from DELETE; the others answer a Status.
_RETURNS_DELETED_OBJECT = {"Pod", "Namespace", "Service"}
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: Obj) -> Obj:
    """What `generation` tracks: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


class Backend:
    def __init__(self, *, service_cidr: str = "10.96.0.0/12", history_size: int = 1000,
                 namespace_grace: float = 0.0, continue_ttl: float = 300.0) -> None:
        self.store = Store(history_size)
        self.service_ips = ServiceIPs(service_cidr)
        self.admission = Admission(self.service_ips, NodePorts())
        self.paginator = Paginator(ttl=continue_ttl)
        self.namespace_grace = namespace_grace

    # --- reads ---------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(rt, namespace if rt.namespaced else "", name)
        if obj is None:
            raise errors.not_found(rt.qualified, name, rt.group)
        return obj

    def list(self, rt: ResourceType, namespace: str | None, *, label_selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None,
             continue_token: str | None = None) -> Obj:
        if continue_token:
            items, rv, token, remaining = self.paginator.next_page(continue_token, limit)
        else:
            matcher = object_matcher(label_selector, field_selector)
            ns = namespace if rt.namespaced else None
            objects = self.store.objects(rt, ns)
            matched = list(objects) if matcher is None else [o for o in objects if matcher(o)]
            rv = self.store.rv
            items, token, remaining = self.paginator.first_page(matched, rv, limit)
        metadata: Obj = {"resourceVersion": str(rv)}
        if token:
            metadata["continue"] = token
            if remaining is not None:
                metadata["remainingItemCount"] = remaining
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                "metadata": metadata, "items": items}

    # --- create --------------------------------------------------------------------------

    def create(self, rt: ResourceType, namespace: str | None, body: Any) -> Obj:
        obj = self._decode(rt, body)
        meta = obj["metadata"]
        self._place(rt, meta, namespace)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                random.choices(_GENERATE_ALPHABET, k=5))
        validate_name(rt, meta.get("name", ""))
        ns = meta.get("namespace", "")
        if rt.namespaced:
            self._check_namespace_open(rt, ns, meta["name"])
        if self.store.get(rt, ns, meta["name"]) is not None:
            raise errors.already_exists(rt.qualified, meta["name"], rt.group)
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "selfLink", "managedFields"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta["generation"] = 1
        self.admission.create(rt, obj)
        return self._write(rt, obj, None)

    def _decode(self, rt: ResourceType, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if (kind and kind != rt.kind) or (api_version and api_version != rt.api_version):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})" if kind == rt.kind else
                f"{kind} in version \"{rt.version}\" cannot be handled as a {rt.kind}")
        obj = {"kind": rt.kind, "apiVersion": rt.api_version,
               **{k: copy.deepcopy(v) for k, v in body.items() if k not in ("kind", "apiVersion")}}
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        return obj

    @staticmethod
    def _place(rt: ResourceType, meta: Obj, namespace: str | None) -> None:
        if not rt.namespaced:
            meta.pop("namespace", None)
            return
        if meta.get("namespace") and namespace and meta["namespace"] != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        meta["namespace"] = meta.get("namespace") or namespace or "default"

    def _check_namespace_open(self, rt: ResourceType, ns: str, name: str) -> None:
        namespace = self.store.get(NAMESPACES, "", ns)
        if namespace is None:
            raise errors.not_found("namespaces", ns)
        if namespace["metadata"].get("deletionTimestamp"):
            raise errors.namespace_terminating(rt.qualified, name, ns, rt.group)

    # --- update / patch ------------------------------------------------------------------

    def update(self, rt: ResourceType, namespace: str | None, name: str, body: Any,
               subresource: str | None = None) -> Obj:
        old = self.get(rt, namespace or "", name)
        new = self._decode(rt, body)
        if new["metadata"].get("name", name) != name:
            raise errors.bad_request(f"the name of the object ({new['metadata']['name']}) does "
                                     f"not match the name on the URL ({name})")
        return self._replace(rt, old, new, subresource)

    def patch(self, rt: ResourceType, namespace: str | None, name: str, content_type: str,
              patch: Any, subresource: str | None = None) -> Obj:
        old = self.get(rt, namespace or "", name)
        if content_type == "application/json-patch+json":
            new = json_patch(old, patch)
        elif content_type == "application/merge-patch+json":
            new = merge_patch(old, patch)
        elif content_type == "application/strategic-merge-patch+json":
            new = strategic_merge_patch(old, patch, rt.kind)
        else:
            raise errors.unsupported_media_type(content_type)
        return self._replace(rt, old, self._decode(rt, new), subresource)

    def _replace(self, rt: ResourceType, old: Obj, new: Obj, subresource: str | None) -> Obj:
        meta, old_meta = new["metadata"], old["metadata"]
        wanted_rv = check_resource_version(meta.get("resourceVersion"))
        if wanted_rv is not None and wanted_rv != int(old_meta["resourceVersion"]):
            raise errors.conflict(rt.qualified, old_meta["name"], rt.group)
        if subresource == "status":
            # Only status changes through /status.
            new = {**copy.deepcopy(old), "status": new.get("status", {})}
        elif rt.status:
            new["status"] = copy.deepcopy(old.get("status", {}))
            if "status" not in old:
                new.pop("status")
        meta = new["metadata"]
        for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "generation"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if subresource != "status":
            self.admission.update(rt, new, old)
        if _spec_part(new) != _spec_part(old):
            meta["generation"] = int(old_meta.get("generation", 0)) + 1
        meta["resourceVersion"] = old_meta["resourceVersion"]
        meta.pop("managedFields", None)
        if new == old:
            return old  # a no-op write changes nothing, not even the resourceVersion
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and rt is not NAMESPACES:
            return self._remove(rt, new)
        return self._write(rt, new, old)

    def _write(self, rt: ResourceType, obj: Obj, old: Obj | None) -> Obj:
        rv = self.store.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        self.store.put(rt, obj, rv, old)
        return obj

    def replace_internal(self, rt: ResourceType, obj: Obj) -> Obj:
        """A controller's write (scheduler, kubelet): no admission, no conflict check.
        `obj` may share nested values with the stored object but must not have changed them:
        only its top level and metadata are copied (deep copies of big Endpoints cost)."""
        old = self.get(rt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        new = {**obj, "metadata": dict(obj["metadata"])}
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        return old if new == old else self._write(rt, new, old)

    # --- delete --------------------------------------------------------------------------

    def delete(self, rt: ResourceType, namespace: str | None, name: str,
               options: Obj | None = None) -> Obj:
        obj = self.get(rt, namespace or "", name)
        self._check_preconditions(rt, obj, (options or {}).get("preconditions") or {})
        meta = obj["metadata"]
        if rt.kind == "Namespace":
            return self._delete_namespace(obj)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return obj
            pending = copy.deepcopy(obj)
            pending["metadata"]["deletionTimestamp"] = now()
            pending["metadata"]["deletionGracePeriodSeconds"] = 0
            return self._write(rt, pending, obj)
        last = self._remove(rt, obj)
        if rt.kind in _RETURNS_DELETED_OBJECT:
            return last
        return errors.success(rt.qualified, name, meta["uid"], rt.group)

    def _check_preconditions(self, rt: ResourceType, obj: Obj, preconditions: Obj) -> None:
        meta = obj["metadata"]
        uid, rv = preconditions.get("uid"), preconditions.get("resourceVersion")
        if uid and uid != meta["uid"]:
            raise errors.ApiError(409, "Conflict", f"Precondition failed: UID in precondition: "
                                  f"{uid}, UID in object meta: {meta['uid']}",
                                  {"name": meta["name"], "kind": rt.plural})
        if rv and rv != meta["resourceVersion"]:
            raise errors.ApiError(409, "Conflict", "Precondition failed: ResourceVersion in "
                                  f"precondition: {rv}, ResourceVersion in object meta: "
                                  f"{meta['resourceVersion']}",
                                  {"name": meta["name"], "kind": rt.plural})

    def _remove(self, rt: ResourceType, obj: Obj) -> Obj:
        rv = self.store.next_rv()
        last = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(rv)}}
        self.store.remove(rt, last, rv)
        self.admission.deleted(rt, last)
        return last

    def delete_collection(self, rt: ResourceType, namespace: str | None, *,
                          label_selector: str | None = None,
                          field_selector: str | None = None) -> Obj:
        listed = self.list(rt, namespace, label_selector=label_selector,
                           field_selector=field_selector)
        for obj in listed["items"]:
            meta = obj["metadata"]
            self.delete(rt, meta.get("namespace"), meta["name"])
        return listed

    def _delete_namespace(self, ns_obj: Obj) -> Obj:
        name = ns_obj["metadata"]["name"]
        if ns_obj["metadata"].get("deletionTimestamp"):
            return ns_obj
        terminating = copy.deepcopy(ns_obj)
        terminating["metadata"]["deletionTimestamp"] = now()
        terminating["status"] = {"phase": "Terminating"}
        terminating = self._write(NAMESPACES, terminating, ns_obj)
        if self.namespace_grace > 0:
            asyncio.get_running_loop().call_later(self.namespace_grace,
                                                  self.finish_namespace, name)
        else:
            self.finish_namespace(name)
        return terminating

    def finish_namespace(self, name: str) -> None:
        """Delete everything in the namespace, then the namespace itself."""
        for rt in RESOURCES:
            if rt.namespaced:
                for obj in list(self.store.objects(rt, name)):
                    self._remove(rt, obj)
        ns_obj = self.store.get(NAMESPACES, "", name)
        if ns_obj is not None:
            self._remove(NAMESPACES, ns_obj)

"""Discovery documents: /version, /api, /apis, group versions, and a minimal OpenAPI v3.

Only the legacy (unaggregated) discovery format is served; kubectl 1.32 asks for aggregated
discovery first and falls back to this when the response comes back as plain
`application/json`.

OpenAPI v3 is served only as far as kubectl needs it: every resource's PATCH operation
declares the `fieldValidation` query parameter, so `kubectl apply/create` (validation
`Strict` by default) hands validation to the server instead of downloading a v2 schema to
validate client side. Schemas are absent, so kubectl computes strategic merge patches from
its compiled-in types, and `kubectl explain` does not work. /openapi/v2 is 404.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from emulators.kube.resources import ALL_VERBS, RESOURCES, ResourceType, groups, in_group_version

Obj = dict[str, Any]
KUBE_VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-ckm-emulator",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.4", "compiler": "gc",
    "platform": "linux/amd64",
}
_SUBRESOURCE_VERBS = ["get", "patch", "update"]


def api_versions() -> Obj:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": "127.0.0.1:6443"}]}


def _group(name: str, versions: list[str]) -> Obj:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def api_group_list() -> Obj:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(name, versions) for name, versions in groups().items()]}


def api_group(name: str) -> Obj | None:
    versions = groups().get(name)
    if versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _resource_entry(rt: ResourceType) -> Obj:
    entry: Obj = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                  "kind": rt.kind, "verbs": list(ALL_VERBS)}
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    entry["storageVersionHash"] = hashlib.sha256(rt.key.encode()).hexdigest()[:12]
    return entry


def resource_list(group: str, version: str) -> Obj | None:
    found = in_group_version(group, version)
    if not found:
        return None
    resources = []
    for rt in found:
        resources.append(_resource_entry(rt))
        if rt.status:
            resources.append({"name": f"{rt.plural}/status", "singularName": "",
                              "namespaced": rt.namespaced, "kind": rt.kind,
                              "verbs": _SUBRESOURCE_VERBS})
        if rt.kind == "Pod":
            resources.append({"name": "pods/binding", "singularName": "", "namespaced": True,
                              "kind": "Binding", "verbs": ["create"]})
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": resources}


# --- OpenAPI v3 ---------------------------------------------------------------------------

def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _gv_pairs() -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for rt in RESOURCES:
        if (rt.group, rt.version) not in pairs:
            pairs.append((rt.group, rt.version))
    return pairs


def openapi_v3_root() -> Obj:
    paths = {}
    for group, version in _gv_pairs():
        path = _gv_path(group, version)
        digest = hashlib.sha256(json.dumps(openapi_v3_group(path)).encode()).hexdigest()[:16]
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest.upper()}"}
    return {"paths": paths}


def openapi_v3_group(gv_path: str) -> Obj | None:
    match = next(((g, v) for g, v in _gv_pairs() if _gv_path(g, v) == gv_path), None)
    if match is None:
        return None
    group, version = match
    paths: Obj = {}
    for rt in in_group_version(group, version):
        gvk = {"group": group, "version": version, "kind": rt.kind}
        base = f"/{gv_path}/namespaces/{{namespace}}" if rt.namespaced else f"/{gv_path}"
        patch = {
            "operationId": f"patch{rt.kind}", "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [{"name": name, "in": "query", "schema": {"type": "string"},
                            "uniqueItems": True}
                           for name in ("dryRun", "fieldManager", "fieldValidation", "force")],
            "responses": {"200": {"description": "OK"}},
        }
        paths[f"{base}/{rt.plural}/{{name}}"] = {"patch": patch}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths, "components": {"schemas": {}}}

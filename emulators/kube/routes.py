"""The HTTP layer of the resource API: parse the URL and query, call one backend method, render.

URLs (`/api/v1/...` and `/apis/<group>/<version>/...`):

    <plural>                          list / watch / create / deletecollection (cluster-wide)
    <plural>/<name>[/<sub>]           cluster-scoped object (namespaces, nodes, ingressclasses)
    namespaces/<ns>/<plural>          list / watch / create / deletecollection in a namespace
    namespaces/<ns>/<plural>/<name>[/status|/binding]

`kubectl get` asks for `as=Table`; those GETs (and watches) answer `meta.k8s.io/v1` Tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from emulators.kube import errors, tables
from emulators.kube.backend import PATCH_TYPES, now
from emulators.kube.resources import BY_KIND, ResourceType, lookup
from emulators.kube.selectors import object_matcher
from emulators.kube.watching import WatchRequest, WatchStream

if TYPE_CHECKING:
    from emulators.kube.app import Emulator

Obj = dict[str, Any]


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_path(group: str, version: str, parts: list[str]) -> Target:
    namespace = None
    if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] not in ("status", "finalize"):
        namespace, parts = parts[1], parts[2:]
    if not parts or len(parts) > 3:
        raise errors.route_not_found()
    rt = lookup(group, version, parts[0])
    if rt is None or (namespace is not None and not rt.namespaced):
        raise errors.route_not_found()
    name = parts[1] if len(parts) > 1 else None
    sub = parts[2] if len(parts) > 2 else None
    if sub not in (None, "status", "binding", "finalize") or (sub == "status" and not rt.status):
        raise errors.route_not_found()
    if rt.namespaced and name is not None and namespace is None:
        raise errors.route_not_found()
    return Target(rt, namespace, name, sub)


def _json(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status)


def wants_table(request: Request) -> bool:
    return "as=Table" in request.headers.get("accept", "")


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("true", "1")


def _limit(request: Request) -> int | None:
    raw = request.query_params.get("limit")
    try:
        return int(raw) if raw else None
    except ValueError:
        raise errors.bad_request(f'invalid value for limit: "{raw}"') from None


BODY_TYPES = ("application/json", "application/yaml", "application/apply-patch+yaml", "",
              *PATCH_TYPES)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    content_type = request.headers.get("content-type", "application/json").split(";")[0]
    if content_type.strip() not in BODY_TYPES:
        # protobuf or CBOR: answered as a server that does not speak it, so that client-go
        # falls back to JSON (it does on 415)
        raise errors.unsupported_body(content_type)
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as e:
        raise errors.bad_request(f"error decoding the request body: {e}") from None


def verb_of(method: str, target: Target, watch: bool) -> str:
    if method == "GET":
        return "watch" if watch else ("get" if target.name else "list")
    if method == "DELETE":
        return "delete" if target.name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


class ResourceApi:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    @property
    def backend(self):
        return self.emulator.backend

    async def handle(self, request: Request, group: str, version: str) -> Response:
        try:
            parts = [p for p in request.path_params["rest"].split("/") if p]
            target = parse_path(group, version, parts)
            watch = _flag(request, "watch")
            label = target.rt.qualified + (f"/{target.subresource}" if target.subresource else "")
            self.emulator.count(verb_of(request.method, target, watch), label)
            if request.query_params.get("dryRun"):
                raise errors.bad_request("dryRun is not supported by the emulator")
            return await self._dispatch(request, target, watch)
        except errors.ApiError as e:
            return _json(e.status(), e.code)

    async def _dispatch(self, request: Request, t: Target, watch: bool) -> Response:
        method, b = request.method, self.backend
        if t.name is None:
            if method == "GET":
                return self._watch(request, t) if watch else self._list(request, t)
            if method == "POST":
                return _json(b.create(t.rt, t.namespace, await _body(request)), 201)
            if method == "DELETE":
                q = request.query_params
                return _json(b.delete_collection(t.rt, t.namespace,
                                                 label_selector=q.get("labelSelector"),
                                                 field_selector=q.get("fieldSelector")))
            raise errors.method_not_allowed()
        if t.subresource == "binding":
            if method != "POST":
                raise errors.method_not_allowed()
            return _json(self._bind(t, await _body(request)), 201)
        if method == "GET":
            obj = b.get(t.rt, t.namespace, t.name)
            if wants_table(request):
                return _json(tables.table(t.rt, [obj], include_object=self._include(request)))
            return _json(obj)
        if method == "PUT":
            return _json(b.update(t.rt, t.namespace, t.name, await _body(request),
                                  t.subresource))
        if method == "PATCH":
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type not in PATCH_TYPES:
                raise errors.unsupported_media_type(content_type)
            return _json(b.patch(t.rt, t.namespace, t.name, content_type,
                                 await _body(request), t.subresource))
        if method == "DELETE":
            return _json(b.delete(t.rt, t.namespace, t.name, await _body(request)))
        raise errors.method_not_allowed()

    @staticmethod
    def _include(request: Request) -> str:
        return request.query_params.get("includeObject", "Metadata")

    def _list(self, request: Request, t: Target) -> Response:
        q = request.query_params
        listed = self.backend.list(t.rt, t.namespace, label_selector=q.get("labelSelector"),
                                   field_selector=q.get("fieldSelector"), limit=_limit(request),
                                   continue_token=q.get("continue"))
        if wants_table(request):
            return _json(tables.table(t.rt, listed["items"], include_object=self._include(request),
                                      list_meta=listed["metadata"]))
        return _json(listed)

    def _watch(self, request: Request, t: Target) -> Response:
        q = request.query_params
        rv = q.get("resourceVersion")
        if rv not in (None, "") and not rv.isdigit():
            raise errors.bad_request(f'invalid resource version: "{rv}"')
        timeout = q.get("timeoutSeconds")
        render = None
        if wants_table(request):
            include = self._include(request)
            render = lambda obj: tables.table(t.rt, [obj], include_object=include)  # noqa: E731
        req = WatchRequest(
            rt=t.rt, namespace=t.namespace if t.rt.namespaced else None,
            matcher=object_matcher(q.get("labelSelector"), q.get("fieldSelector")),
            resource_version=rv, bookmarks=_flag(request, "allowWatchBookmarks"),
            timeout=float(timeout) if timeout else self.emulator.options.watch_timeout,
            send_initial_events=_flag(request, "sendInitialEvents"), render=render)
        stream = WatchStream(self.backend.store, req,
                             bookmark_interval=self.emulator.options.bookmark_interval,
                             closing=lambda: self.emulator.closing)
        return StreamingResponse(stream.events(), media_type="application/json",
                                 headers={"Cache-Control": "no-cache, private"})

    def _bind(self, t: Target, body: Any) -> Obj:
        """POST pods/<name>/binding, as a scheduler binds a pod to a node."""
        node = ((body or {}).get("target") or {}).get("name")
        if not node:
            raise errors.bad_request("binding target name is required")
        pods = BY_KIND["Pod"]
        pod = self.backend.get(pods, t.namespace, t.name)
        if (pod.get("spec") or {}).get("nodeName"):
            raise errors.ApiError(409, "Conflict", f'Operation cannot be fulfilled on pods/binding '
                                  f'"{t.name}": pod {t.name} is already assigned to node '
                                  f'"{pod["spec"]["nodeName"]}"', {"name": t.name, "kind": "pods"})
        bind_pod(self.backend, pod, node)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "code": 201}


def bind_pod(backend, pod: Obj, node: str) -> Obj:
    """Set spec.nodeName and the PodScheduled condition, as the binding subresource does."""
    bound = json.loads(json.dumps(pod))
    bound["spec"]["nodeName"] = node
    status = bound.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": now()})
    status["conditions"] = conditions
    return backend.replace_internal(BY_KIND["Pod"], bound)

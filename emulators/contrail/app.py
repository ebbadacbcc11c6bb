"""The VNC REST API as a Starlette app: each route parses, makes one backend call, renders JSON.

`create_app(**options)` wires the pieces: backend (+ defaults or a state file), the home page,
CRUD and list routes generic over the schema, the action routes, Keystone, the admin
endpoints, and the fault/token middlewares. Handlers are `async` and call the synchronous
backend directly on the event loop, so backend operations never interleave (see backend.py).
Errors are `errors.ApiError`s rendered as text bodies with the real server's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import traceback
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from emulators.contrail import actions, admin, errors, listing
from emulators.contrail.backend import Backend
from emulators.contrail.defaults import fresh_backend
from emulators.contrail.faults import (
    ADMIN_PREFIX,
    KEYSTONE_PREFIX,
    Counters,
    FaultMiddleware,
    Faults,
)
from emulators.contrail.homepage import homepage
from emulators.contrail.keystone import Keystone, TokenMiddleware
from emulators.contrail.keystone import routes as keystone_routes
from emulators.contrail.persistence import StateFile
from emulators.contrail.render import Renderer
from emulators.contrail.schema import TYPES

log = logging.getLogger(__name__)


@dataclass
class Emulator:
    """Everything the routes share; `backend` is replaced by an admin reset."""

    backend: Backend
    faults: Faults
    counters: Counters
    keystone: Keystone
    state: StateFile | None = None


def emu(request: Request) -> Emulator:
    return request.app.state.emu


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def as_json(data: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data), status, headers, media_type="application/json")


def empty() -> Response:
    return Response(b"", 200, media_type="text/html")


def endpoint(handler):
    """ApiError -> text body with its status; anything unexpected -> 500 like bottle does."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except errors.ApiError as exc:
            text = exc.message.replace(errors.HREF_BASE, base_url(request))
            return Response(text, exc.status, media_type="text/html")
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return Response(traceback.format_exc().strip().splitlines()[-1], 500,
                            media_type="text/html")

    return wrapper


async def read_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise errors.bad_request("Bad Request, invalid JSON body") from None
    if not isinstance(data, dict):
        raise errors.bad_request("Bad Request, JSON body must be an object")
    return data


def _type_of_collection(name: str) -> str:
    type_ = name[:-1] if name.endswith("s") else ""
    if type_ not in TYPES:
        raise errors.unknown_type(type_ or name)
    return type_


def _type_of_item(name: str) -> str:
    if name not in TYPES:
        raise errors.unknown_type(name)
    return name


# CRUD ----------------------------------------------------------------------------------------
@endpoint
async def create(request: Request) -> Response:
    type_ = _type_of_collection(request.path_params["collection"])
    body = await read_json(request)
    if not isinstance(body.get(type_), dict):
        raise errors.bad_request(f"Bad Request, no {type_} in POST body")
    e = emu(request)
    obj = e.backend.create(type_, body[type_])
    return as_json({type_: Renderer(e.backend.store, base_url(request)).head(obj)})


@endpoint
async def read(request: Request) -> Response:
    type_ = _type_of_item(request.path_params["type"])
    e, q = emu(request), request.query_params
    obj = e.backend.get(type_, request.path_params["uuid"])
    etag = f'"{obj.props["id_perms"]["last_modified"]}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    renderer = Renderer(e.backend.store, base_url(request), hrefs="exclude_hrefs" not in q)
    fields = listing.split(q.get("fields"))
    data = renderer.obj(obj, fields=fields, children="exclude_children" not in q,
                        back_refs="exclude_back_refs" not in q)
    return as_json({type_: data}, headers={"ETag": etag})


@endpoint
async def update(request: Request) -> Response:
    type_ = _type_of_item(request.path_params["type"])
    body = (await read_json(request)).get(type_)
    e = emu(request)
    obj = e.backend.update(type_, request.path_params["uuid"], body or {})
    if not body:
        return empty()
    href = Renderer(e.backend.store, base_url(request)).href(type_, obj.uuid)
    return as_json({type_: {"uuid": obj.uuid, "href": href}})


@endpoint
async def delete(request: Request) -> Response:
    type_ = _type_of_item(request.path_params["type"])
    emu(request).backend.delete(type_, request.path_params["uuid"])
    return empty()


# lists ---------------------------------------------------------------------------------------
def _list(request: Request, type_: str, params: dict[str, Any]) -> Response:
    e = emu(request)
    spec = e.backend.spec(type_)
    objs = listing.select(e.backend.store, spec, listing.ListQuery.parse(params))
    key = spec.plural
    if listing.flag(params.get("count")):
        return as_json({key: {"count": len(objs)}})
    renderer = Renderer(e.backend.store, base_url(request),
                        hrefs=not listing.flag(params.get("exclude_hrefs")))
    fields = listing.split(params.get("fields"))
    extra: dict[str, Any] = {}
    try:
        paged = listing.paginate(objs, params.get("page_limit"), params.get("page_marker"))
    except ValueError as exc:
        raise errors.bad_request(str(exc)) from None
    if paged is not None:
        objs, extra["marker"] = paged
    if listing.flag(params.get("detail")):
        return as_json({key: [{spec.name: renderer.detail_entry(o, fields)} for o in objs],
                        **extra})
    return as_json({key: [renderer.list_entry(o, fields) for o in objs], **extra})


@endpoint
async def list_collection(request: Request) -> Response:
    type_ = _type_of_collection(request.path_params["collection"])
    params = dict(request.query_params)
    if "exclude_hrefs" in params:
        params["exclude_hrefs"] = "true"
    return _list(request, type_, params)


@endpoint
async def list_bulk(request: Request) -> Response:
    body = await read_json(request)
    if not body.get("type"):
        raise errors.bad_request("Bad Request, no type in list-bulk-collection body")
    return _list(request, emu(request).backend.spec(body["type"]).name, body)


# actions -------------------------------------------------------------------------------------
@endpoint
async def fqname_to_id(request: Request) -> Response:
    body = await read_json(request)
    return as_json({"uuid": emu(request).backend.fqname_to_id(body.get("type", ""),
                                                              body.get("fq_name"))})


@endpoint
async def id_to_fqname(request: Request) -> Response:
    body = await read_json(request)
    obj = emu(request).backend.id_to_fqname(body.get("uuid", ""))
    return as_json({"fq_name": list(obj.fq_name), "type": obj.type})


def _action(fn, *, wrap_uuid: bool = False):
    @endpoint
    async def handler(request: Request) -> Response:
        result = fn(emu(request).backend, await read_json(request))
        if wrap_uuid:
            return as_json({"uuid": result})
        return empty() if result is None else as_json(result)

    return handler


@endpoint
async def prop_collection_get(request: Request) -> Response:
    q = request.query_params
    fields = listing.split(q.get("fields")) or []
    result = actions.prop_collection_get(emu(request).backend, q.get("uuid", ""), fields,
                                         q.get("position"))
    return as_json(result)


def _with_empty_dict(fn):
    def run(backend, body):
        fn(backend, body)
        return {}

    return run


@endpoint
async def home(request: Request) -> Response:
    return as_json(homepage(base_url(request)))


@endpoint
async def unknown(request: Request) -> Response:
    raise errors.ApiError(404, f"Not found: '{request.url.path}'")


# (method, first path segment) -> handler for the one-segment action paths.
ACTIONS = {
    ("POST", "fqname-to-id"): fqname_to_id,
    ("POST", "id-to-fqname"): id_to_fqname,
    ("POST", "ref-update"): _action(actions.ref_update, wrap_uuid=True),
    ("POST", "ref-relax-for-delete"): _action(actions.ref_relax, wrap_uuid=True),
    ("POST", "prop-collection-update"): _action(actions.prop_collection_update),
    ("GET", "prop-collection-get"): prop_collection_get,
    ("POST", "useragent-kv"): _action(actions.useragent_kv),
    ("POST", "list-bulk-collection"): list_bulk,
    ("POST", "chown"): _action(_with_empty_dict(actions.chown)),
    ("POST", "chmod"): _action(_with_empty_dict(actions.chmod)),
    ("POST", "set-tag"): _action(_with_empty_dict(actions.set_tag)),
}
COLLECTION = {"GET": list_collection, "POST": create}
ITEM = {"GET": read, "PUT": update, "DELETE": delete}


class ApiDispatch:
    """Routes VNC API paths by their segments in O(1) (Starlette's router tries each route in
    turn, which cost more than the backend). Admin, Keystone and lifespan go to the inner app."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith((ADMIN_PREFIX, KEYSTONE_PREFIX)):
            return await self.app(scope, receive, send)
        handler, params = self.resolve(scope["method"], path)
        scope["path_params"] = params
        response = await handler(Request(scope, receive))
        await response(scope, receive, send)

    @staticmethod
    def resolve(method: str, path: str):
        parts = path.strip("/").split("/") if path != "/" else []
        if not parts:
            return (home if method == "GET" else unknown), {}
        if len(parts) == 1:
            action = ACTIONS.get((method, parts[0]))
            if action is not None:
                return action, {}
            return COLLECTION.get(method, unknown), {"collection": parts[0]}
        if len(parts) == 2:
            return ITEM.get(method, unknown), {"type": parts[0], "uuid": parts[1]}
        return unknown, {}


# factory -------------------------------------------------------------------------------------
def create_app(*, state_file: str | None = None, keystone: bool = False,
               users: dict[str, str] | None = None, token_ttl: float = 3600.0,
               latency_ms: float = 0.0, latency_jitter_ms: float = 0.0,
               error_rate: float = 0.0, seed: int | None = None, max_concurrency: int = 0,
               outage_seconds: float = 0.0, flush_interval: float = 0.2) -> Starlette:
    """Build the emulator. Every knob is also adjustable at run time under `/_emulator/`."""
    faults = Faults(latency_ms=latency_ms, latency_jitter_ms=latency_jitter_ms,
                    error_rate=error_rate, seed=seed, max_concurrency=max_concurrency,
                    outage_seconds=outage_seconds or None)
    state = StateFile(state_file) if state_file else None
    emulator = Emulator(_initial_backend(state), faults, Counters(),
                        Keystone(users, token_ttl), state)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        flusher = asyncio.create_task(_flush_loop(state, flush_interval)) if state else None
        try:
            yield
        finally:
            if flusher:
                flusher.cancel()
            if state:
                state.close()

    app = Starlette(routes=[*admin.routes, *keystone_routes], lifespan=lifespan)
    app.state.emu = emulator
    app.add_middleware(ApiDispatch)
    app.add_middleware(TokenMiddleware, keystone=emulator.keystone, enabled=keystone)
    app.add_middleware(FaultMiddleware, faults=faults, counters=emulator.counters)
    return app


def _initial_backend(state: StateFile | None) -> Backend:
    if state is None:
        return fresh_backend()
    backend = Backend()
    if not state.load_into(backend):
        backend = fresh_backend()
        state.replace_all(backend)
    state.attach(backend)
    return backend


async def _flush_loop(state: StateFile, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        state.flush()


"""`create_app(**options)`: the kube emulator as a Starlette app (routes → one backend call).

    from emulators.kube.app import create_app
    from emulators.server import serve_in_thread
    app = create_app(nodes=2, bookmark_interval=1)
    with serve_in_thread(app) as url: ...

`app.state.emulator` is the `Emulator`: the backend, counters, faults and node layer, for
tests that want to look inside. Its methods run on the server's loop; from another thread
only `close_watches()` is safe.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.kube import discovery, errors
from emulators.kube.admin import FaultMiddleware, Faults, admin_routes
from emulators.kube.backend import Backend
from emulators.kube.options import Options
from emulators.kube.resources import BY_KIND
from emulators.kube.routes import ResourceApi

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class Emulator:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.backend = self._new_backend()
        self.faults = Faults(options.latency, options.unavailable_for)
        self.counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.closing = False
        self.node_layer = None
        self.state = None
        if options.state_file:
            from emulators.kube.persistence import StateFile

            self.state = StateFile(options.state_file)
            restored = self.state.load_into(self.backend)
            self.state.attach(self.backend)
            if restored:
                return
        self._seed()

    def _new_backend(self) -> Backend:
        o = self.options
        return Backend(service_cidr=o.service_cidr, history_size=o.history_size,
                       namespace_grace=o.namespace_grace, continue_ttl=o.continue_ttl)

    async def start_node_layer(self) -> None:
        if self.options.node_layer:
            from emulators.kube.nodes import NodeLayer

            self.node_layer = NodeLayer(self.backend, self.options)
            await self.node_layer.start()

    async def stop_node_layer(self) -> None:
        if self.node_layer is not None:
            await self.node_layer.stop()
            self.node_layer = None

    async def reset(self) -> None:
        """Back to a fresh cluster (objects, counters, faults); resourceVersions keep growing,
        and resuming a watch from before the reset gets 410."""
        old = self.backend.store
        old.drop_watches()
        await self.stop_node_layer()
        self.backend = self._new_backend()
        # Skip one resourceVersion so that every pre-reset one is below the floor (410).
        self.backend.store.rv = self.backend.store.floor = old.rv + 1
        if self.state is not None:
            self.state.attach(self.backend)
        self._seed()
        self.counters.clear()
        self.faults.set({"latency": self.options.latency, "unavailable_for": 0})
        await self.start_node_layer()

    def count(self, verb: str, resource: str) -> None:
        self.counters[verb][resource] += 1

    def close_watches(self) -> None:
        """End every watch stream within ~0.5 s and refuse new ones (thread-safe: a flag)."""
        self.closing = True

    def _seed(self) -> None:
        for name in DEFAULT_NAMESPACES:
            self.backend.create(BY_KIND["Namespace"], None, {"metadata": {"name": name}})
        if self.options.kubernetes_service:
            self.backend.create(BY_KIND["Service"], "default", {
                "metadata": {"name": "kubernetes",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]}})


def _json(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status)


def _discovery_routes() -> list[Route]:
    async def version(request: Request) -> Response:
        return _json(discovery.KUBE_VERSION)

    async def api(request: Request) -> Response:
        return _json(discovery.api_versions())

    async def core_v1(request: Request) -> Response:
        return _json(discovery.resource_list("", "v1"))

    async def apis(request: Request) -> Response:
        return _json(discovery.api_group_list())

    async def group(request: Request) -> Response:
        found = discovery.api_group(request.path_params["group"])
        return _json(found) if found else _not_found()

    async def group_version(request: Request) -> Response:
        found = discovery.resource_list(request.path_params["group"],
                                        request.path_params["version"])
        return _json(found) if found else _not_found()

    async def openapi_v3(request: Request) -> Response:
        return _json(discovery.openapi_v3_root())

    async def openapi_v3_group(request: Request) -> Response:
        found = discovery.openapi_v3_group(request.path_params["gv"].strip("/"))
        return _json(found) if found else _not_found()

    async def healthz(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    return [
        Route("/version", version), Route("/api", api), Route("/api/v1", core_v1),
        Route("/apis", apis), Route("/apis/{group}", group),
        Route("/apis/{group}/{version}", group_version),
        Route("/openapi/v3", openapi_v3), Route("/openapi/v3/{gv:path}", openapi_v3_group),
        Route("/healthz", healthz), Route("/readyz", healthz), Route("/livez", healthz),
    ]


def _not_found() -> Response:
    error = errors.route_not_found()
    return _json(error.status(), error.code)


def create_app(**options: Any) -> Starlette:
    """Build the emulator; `options` are the fields of `emulators.kube.options.Options`."""
    emulator = Emulator(Options(**options))
    api = ResourceApi(emulator)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    async def core(request: Request) -> Response:
        return await api.handle(request, "", "v1")

    async def named(request: Request) -> Response:
        return await api.handle(request, request.path_params["group"],
                                request.path_params["version"])

    async def fallback(request: Request) -> Response:
        return _not_found()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        emulator.closing = False
        await emulator.start_node_layer()
        if emulator.state is not None:
            emulator.state.start()
        try:
            yield
        finally:
            emulator.closing = True
            await emulator.stop_node_layer()
            if emulator.state is not None:
                await emulator.state.stop()

    routes = [
        *_discovery_routes(), *admin_routes(emulator),
        Route("/api/v1/{rest:path}", core, methods=methods),
        Route("/apis/{group}/{version}/{rest:path}", named, methods=methods),
        Route("/{rest:path}", fallback, methods=methods),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(FaultMiddleware, faults=emulator.faults)])
    app.state.emulator = emulator
    return app

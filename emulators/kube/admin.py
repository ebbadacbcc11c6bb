"""The emulator's own control plane under /_emulator (never part of the Kubernetes API).

    GET  /_emulator/counters            requests so far: {verb: {resource: n}}
    POST /_emulator/counters/reset      zero them
    POST /_emulator/watches/drop        end every open watch stream now → {"dropped": n}
    POST /_emulator/compact             forget the event history: older resumes get 410
    POST /_emulator/reset               a fresh cluster: default objects only, counters and
                                        faults cleared, watches dropped (resourceVersions
                                        keep growing)
    GET  /_emulator/faults              current fault settings
    POST /_emulator/faults              {"latency": s, "unavailable_for": s}: add latency to
                                        every API request; answer 503 for the next s seconds
    GET  /_emulator/state               resourceVersion, object counts, open watches

`FaultMiddleware` applies the faults to every request outside /_emulator. A true TCP
refusal cannot be made from inside an ASGI app: stop the server for that (the test fixture
`kube_emulator_factory` has `.outage(seconds)`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from emulators.kube import errors
from emulators.kube.resources import RESOURCES

if TYPE_CHECKING:
    from emulators.kube.app import Emulator

ADMIN_PREFIX = "/_emulator"


class Faults:
    def __init__(self, latency: float = 0.0, unavailable_for: float = 0.0) -> None:
        self.latency = latency
        self.unavailable_until = time.monotonic() + unavailable_for if unavailable_for else 0.0

    def set(self, settings: dict[str, Any]) -> None:
        if "latency" in settings:
            self.latency = float(settings["latency"] or 0)
        if "unavailable_for" in settings:
            seconds = float(settings["unavailable_for"] or 0)
            self.unavailable_until = time.monotonic() + seconds if seconds > 0 else 0.0

    def describe(self) -> dict[str, float]:
        left = max(0.0, self.unavailable_until - time.monotonic())
        return {"latency": self.latency, "unavailable_for": round(left, 3)}


class FaultMiddleware:
    """Pure ASGI middleware, so watch streams pass through untouched once started."""

    def __init__(self, app, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.faults.latency > 0:
            await asyncio.sleep(self.faults.latency)
        if time.monotonic() < self.faults.unavailable_until:
            error = errors.unavailable()
            # No Retry-After: urllib3 would silently retry, hiding the fault from the client.
            response = JSONResponse(error.status(), status_code=error.code)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def admin_routes(emulator: Emulator) -> list[Route]:
    async def counters(request: Request) -> JSONResponse:
        return JSONResponse(emulator.counters)

    async def reset_counters(request: Request) -> JSONResponse:
        emulator.counters.clear()
        return JSONResponse({})

    async def drop_watches(request: Request) -> JSONResponse:
        return JSONResponse({"dropped": emulator.backend.store.drop_watches()})

    async def compact(request: Request) -> JSONResponse:
        emulator.backend.store.compact()
        return JSONResponse({"resourceVersion": str(emulator.backend.store.rv)})

    async def reset(request: Request) -> JSONResponse:
        await emulator.reset()
        return JSONResponse({"resourceVersion": str(emulator.backend.store.rv)})

    async def faults(request: Request) -> JSONResponse:
        if request.method == "POST":
            emulator.faults.set(await request.json())
        return JSONResponse(emulator.faults.describe())

    async def state(request: Request) -> JSONResponse:
        store = emulator.backend.store
        counts = {rt.qualified: store.count(rt) for rt in RESOURCES}
        return JSONResponse({"resourceVersion": str(store.rv), "objects": counts,
                             "watches": store.watch_count()})

    return [
        Route(f"{ADMIN_PREFIX}/counters", counters, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/counters/reset", reset_counters, methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/watches/drop", drop_watches, methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/compact", compact, methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/reset", reset, methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/faults", faults, methods=["GET", "POST"]),
        Route(f"{ADMIN_PREFIX}/state", state, methods=["GET"]),
    ]

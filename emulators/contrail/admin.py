"""The emulator's own control plane under `/_emulator/` (never faulted, never counted).

    GET  /_emulator/faults              current knobs (+ seconds left of an outage)
    PUT  /_emulator/faults              change some knobs: {"error_rate": 0.2, "seed": 1,
                                        "latency_ms": 5, "latency_jitter_ms": 10,
                                        "max_concurrency": 8, "outage_seconds": 3}
    GET  /_emulator/counters            request counts by method, type, operation; faults
    POST /_emulator/counters/reset      zero them
    POST /_emulator/reset               back to a fresh server (default objects only)
    GET  /_emulator/stats               object counts by type, process CPU seconds
    GET  /_emulator/coverage            implemented types and what is not emulated
    POST /_emulator/keystone/revoke     {"token": t} or {} for every token
    POST /_emulator/keystone/expire     same, but expire instead of revoke
"""

from __future__ import annotations

import json
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.contrail.defaults import fresh_backend
from emulators.contrail.schema import ALL_RESOURCE_TYPES, TYPES

NOT_EMULATED = [
    "XSD validation of complex properties (only enum restrictions are checked)",
    "quotas (412), RBAC/perms (403), draft security mode (202)",
    "virtual-network ip-alloc/ip-free/subnet-ip-count, obj-perms, aaa-mode",
    "firewall-rule/-policy, address-group, application-policy-set specific checks",
    "same-type refs are not symmetric; list props use index positions",
]


def _emu(request: Request):
    return request.app.state.emu


async def _body(request: Request) -> dict:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


async def get_faults(request: Request) -> Response:
    return JSONResponse(_emu(request).faults.as_dict())


async def put_faults(request: Request) -> Response:
    try:
        return JSONResponse(_emu(request).faults.update(await _body(request)))
    except (ValueError, TypeError) as exc:
        return JSONResponse({"error": str(exc)}, 400)


async def get_counters(request: Request) -> Response:
    return JSONResponse(_emu(request).counters.snapshot())


async def reset_counters(request: Request) -> Response:
    _emu(request).counters.reset()
    return JSONResponse({})


async def reset(request: Request) -> Response:
    emu = _emu(request)
    emu.backend = fresh_backend()
    if emu.state is not None:
        emu.state.replace_all(emu.backend)
    return JSONResponse({"objects": len(emu.backend.store)})


async def stats(request: Request) -> Response:
    store = _emu(request).backend.store
    by_type = {t: len(uuids) for t, uuids in store.by_type.items() if uuids}
    # Process CPU time lets a benchmark tell server cost from client cost on a shared machine.
    return JSONResponse({"objects": len(store), "by_type": by_type,
                         "process_cpu_seconds": time.process_time()})


async def coverage(request: Request) -> Response:
    return JSONResponse({"implemented": sorted(TYPES),
                         "not_found": sorted(set(ALL_RESOURCE_TYPES) - set(TYPES)),
                         "not_emulated": NOT_EMULATED})


def _token_op(name: str):
    async def handler(request: Request) -> Response:
        keystone = _emu(request).keystone
        count = getattr(keystone, name)((await _body(request)).get("token"))
        return JSONResponse({name + "d": count})

    return handler


routes = [
    Route("/_emulator/faults", get_faults, methods=["GET"]),
    Route("/_emulator/faults", put_faults, methods=["PUT"]),
    Route("/_emulator/counters", get_counters, methods=["GET"]),
    Route("/_emulator/counters/reset", reset_counters, methods=["POST"]),
    Route("/_emulator/reset", reset, methods=["POST"]),
    Route("/_emulator/stats", stats, methods=["GET"]),
    Route("/_emulator/coverage", coverage, methods=["GET"]),
    Route("/_emulator/keystone/revoke", _token_op("revoke"), methods=["POST"]),
    Route("/_emulator/keystone/expire", _token_op("expire"), methods=["POST"]),
]

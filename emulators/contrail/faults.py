"""Fault knobs and request counters, applied by one ASGI middleware in front of the API.

Knobs (constructor options of `create_app`, and `GET/PUT /_emulator/faults` at run time):
fixed latency plus random jitter per call, a 503 error rate drawn from a seeded RNG (so a test
run is repeatable), outage windows (503 for the next N seconds) and a concurrency cap (503
beyond N requests in flight). Counters count every API request by method, by resource type
(or action name) and by operation (`create virtual-network`, `list instance-ip`, ...).
Admin paths (`/_emulator/...`) are never faulted or counted; Keystone calls are counted, not
faulted, so an auth test cannot be broken by an error-rate knob meant for the config API.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from emulators.contrail.schema import ALL_RESOURCE_TYPES

ADMIN_PREFIX = "/_emulator"
KEYSTONE_PREFIX = "/v3"
_TYPES = frozenset(ALL_RESOURCE_TYPES)


@dataclass
class FaultConfig:
    latency_ms: float = 0.0  # added to every call
    latency_jitter_ms: float = 0.0  # plus uniform random 0..jitter
    error_rate: float = 0.0  # probability of a 503 per call
    seed: int | None = None  # RNG seed for error_rate and jitter
    max_concurrency: int = 0  # 0 = unlimited; beyond it -> 503
    outage_seconds: float = 0.0  # on update: 503 for this many seconds from now


class Faults:
    """Current knob values plus the RNG and the outage deadline."""

    def __init__(self, **options: Any) -> None:
        self.config = FaultConfig()
        self.outage_until = 0.0
        self.rng = random.Random()
        self.update(options)

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        unknown = set(changes) - set(FaultConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault knobs: {sorted(unknown)}")
        for key, value in changes.items():
            setattr(self.config, key, value)
        if "seed" in changes:
            self.rng = random.Random(self.config.seed)
        if changes.get("outage_seconds") is not None:
            self.outage_until = time.monotonic() + float(changes["outage_seconds"])
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self.config)
        out["outage_seconds"] = max(0.0, round(self.outage_until - time.monotonic(), 3))
        return out

    def delay(self) -> float:
        jitter = self.config.latency_jitter_ms
        extra = self.rng.uniform(0, jitter) if jitter else 0.0
        return (self.config.latency_ms + extra) / 1000.0

    def failure(self) -> str | None:
        """Why this call should get a 503 now (outage or error rate), or None."""
        if self.outage_until and time.monotonic() < self.outage_until:
            return "outage"
        if self.config.error_rate and self.rng.random() < self.config.error_rate:
            return "injected"
        return None


def classify(method: str, path: str) -> tuple[str, str]:
    """(resource type or action name, operation) of a request path."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "home", "home"
    head = parts[0]
    if head == KEYSTONE_PREFIX[1:]:
        return "keystone", "auth"
    if len(parts) == 1 and head.endswith("s") and head[:-1] in _TYPES:
        return head[:-1], "create" if method == "POST" else "list"
    if head in _TYPES and len(parts) >= 2:
        op = {"GET": "read", "PUT": "update", "DELETE": "delete"}.get(method, "action")
        return head, op if len(parts) == 2 else "action"
    return head, "action"


class Counters:
    """Request counts; `snapshot()` is what `GET /_emulator/counters` returns."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.by_method: Counter[str] = Counter()
        self.by_type: Counter[str] = Counter()
        self.by_method_type: Counter[str] = Counter()
        self.by_operation: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()

    def record(self, method: str, path: str) -> None:
        resource, op = classify(method, path)
        self.by_method[method] += 1
        self.by_type[resource] += 1
        self.by_method_type[f"{method} {resource}"] += 1
        self.by_operation[f"{op} {resource}"] += 1

    def snapshot(self) -> dict[str, Any]:
        return {"total": sum(self.by_method.values()), "by_method": dict(self.by_method),
                "by_type": dict(self.by_type), "by_method_type": dict(self.by_method_type),
                "by_operation": dict(self.by_operation), "faults": dict(self.faults)}


class FaultMiddleware:
    """Counts, delays and fails API requests according to `Faults`."""

    def __init__(self, app, faults: Faults, counters: Counters) -> None:
        self.app = app
        self.faults = faults
        self.counters = counters
        self.in_flight = 0

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(ADMIN_PREFIX):
            return await self.app(scope, receive, send)
        self.counters.record(scope["method"], path)
        if path.startswith(KEYSTONE_PREFIX):
            return await self.app(scope, receive, send)
        cap = self.faults.config.max_concurrency
        if cap and self.in_flight >= cap:
            self.counters.faults["over_capacity"] += 1
            return await _unavailable(send, "Too many concurrent requests")
        self.in_flight += 1
        try:
            delay = self.faults.delay()
            if delay:
                await asyncio.sleep(delay)
            reason = self.faults.failure()
            if reason:
                self.counters.faults[reason] += 1
                return await _unavailable(send, "Service Unavailable")
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _unavailable(send, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"text/html; charset=UTF-8"),
        (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

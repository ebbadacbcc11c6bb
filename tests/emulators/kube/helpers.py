"""Object bodies and small waits shared by the kube emulator tests."""

import time
from collections.abc import Callable
from typing import Any


def pod(name: str, labels: dict | None = None, **spec: Any) -> dict:
    """A minimal Pod body with one container exposing port 80 as `http`."""
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                     "ports": [{"name": "http", "containerPort": 80}]}]}}
    body["spec"].update(spec)
    return body


def namespace(name: str, labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}}


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy; return its value or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)

"""/healthz, /readyz and /metrics over plain HTTP, for probes and Prometheus, plus any
read-only JSON pages a process adds (a worker serves /failed)."""

from __future__ import annotations

import json
import platform
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata

import celery
from prometheus_client import CONTENT_TYPE_LATEST, Info, generate_latest


def _version() -> str:
    try:  # the installed distribution; this package does not import the `ckm` CLI package
        return metadata.version("ckm")
    except metadata.PackageNotFoundError:
        return "unknown"


BUILD = Info("ckm_build", "Which ckm this process runs (ckm_build_info, always 1)")
BUILD.info({"version": _version(), "python": platform.python_version(),
            "celery": celery.__version__})


def serve_health(port: int, *, healthy: Callable[[], bool], ready: Callable[[], bool],
                 host: str = "0.0.0.0",
                 pages: dict[str, Callable[[], object]] | None = None) -> ThreadingHTTPServer:
    pages = pages or {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path in pages:
                try:
                    body, status = json.dumps(pages[self.path](), indent=1).encode(), 200
                except Exception as exc:  # Redis away: say so, keep serving
                    body, status = json.dumps({"error": str(exc)}).encode(), 503
                kind = "application/json"
            elif self.path == "/metrics":
                body, status, kind = generate_latest(), 200, CONTENT_TYPE_LATEST
            elif self.path in ("/healthz", "/readyz"):
                ok = healthy() if self.path == "/healthz" else ready()
                body, status, kind = (b"ok\n" if ok else b"not ok\n"), (200 if ok else 503), \
                    "text/plain"
            else:
                body, status, kind = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # probes every few seconds would flood the log
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    return server

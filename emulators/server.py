"""Run an emulator's ASGI app on loopback: in a background thread (tests) or in the foreground.

Both emulators are Starlette apps served by uvicorn. A test starts one with
`with serve_in_thread(app) as url: ...`; `ckm emulate` calls `serve_forever`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _config(app, host: str, port: int) -> uvicorn.Config:
    # h11 and asyncio keep the dependency set small; access logs would drown test output.
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False,
        lifespan="on", timeout_keep_alive=30, http="h11", loop="asyncio",
    )


@contextlib.contextmanager
def serve_in_thread(app, *, host: str = LOOPBACK, port: int = 0) -> Iterator[str]:
    """Serve `app` from a daemon thread; yield its base URL; stop it on exit."""
    port = port or free_port(host)
    server = uvicorn.Server(_config(app, host, port))
    thread = threading.Thread(target=server.run, name=f"emulator:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"emulator did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve_forever(app, *, host: str = LOOPBACK, port: int) -> None:
    """Serve `app` in the foreground until SIGINT/SIGTERM."""
    uvicorn.Server(_config(app, host, port)).run()

"""`ckm emulate contrail`: serve the Contrail config API emulator in the foreground.

Only typer and the standard library are imported here; the app is built lazily inside
`run`, so registering the command costs nothing.
"""

from __future__ import annotations

from typing import Annotated

import typer


def run(
    port: Annotated[int, typer.Option(help="TCP port of the VNC API.")] = 8082,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    state: Annotated[str | None, typer.Option(
        "--state", help="SQLite file to load from and save to (survives restarts).")] = None,
    latency_ms: Annotated[float, typer.Option(help="Fixed latency added per call.")] = 0.0,
    latency_jitter_ms: Annotated[float, typer.Option(
        help="Random extra latency per call, uniform 0..N ms.")] = 0.0,
    error_rate: Annotated[float, typer.Option(help="Probability of a 503 per call.")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="RNG seed for error rate/jitter.")] = None,
    max_concurrency: Annotated[int, typer.Option(
        help="503 beyond this many requests in flight (0 = unlimited).")] = 0,
    keystone: Annotated[bool, typer.Option(
        "--keystone", help="Require X-Auth-Token; serve Keystone v3 at /v3/auth/tokens.")] = False,
    user: Annotated[list[str] | None, typer.Option(
        help="Keystone user as NAME:PASSWORD (repeatable; default admin:contrail123).")] = None,
) -> None:
    """Run the Contrail (VNC REST) emulator until interrupted."""
    from emulators.contrail.app import create_app
    from emulators.server import serve_forever

    users = dict(u.split(":", 1) for u in user) if user else None
    app = create_app(state_file=state, keystone=keystone, users=users, latency_ms=latency_ms,
                     latency_jitter_ms=latency_jitter_ms, error_rate=error_rate, seed=seed,
                     max_concurrency=max_concurrency)
    typer.echo(f"contrail emulator on http://{host}:{port} (admin: /_emulator/counters)")
    serve_forever(app, host=host, port=port)


def main() -> None:
    typer.run(run)

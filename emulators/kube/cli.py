"""`ckm emulate kube`: run the Kubernetes API emulator in the foreground.

`run` is a plain function with typer-annotated options; the lead registers it on the `ckm`
command line and `python -m emulators.kube` runs it alone. Heavy imports wait until it runs.
"""

from __future__ import annotations

from typing import Annotated

import typer


def run(
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 6443,
    host: Annotated[str, typer.Option(help="Address to bind (plain HTTP).")] = "127.0.0.1",
    contrail_url: Annotated[str | None, typer.Option(
        help="Contrail config API URL: enables the node layer with vrouters and CNI.")] = None,
    nodes: Annotated[int, typer.Option(help="Simulated nodes (0: none, or 1 with Contrail).")] = 0,
    kubeconfig: Annotated[str | None, typer.Option(
        help="Where to write the kubeconfig (default: a file in the temp dir).")] = None,
    history_size: Annotated[int, typer.Option(help="Watch events kept per resource.")] = 1000,
    bookmark_interval: Annotated[float, typer.Option(help="Seconds between bookmarks.")] = 60.0,
    namespace_grace: Annotated[float, typer.Option(
        help="Seconds a deleted namespace stays Terminating.")] = 0.0,
    latency: Annotated[float, typer.Option(help="Seconds of latency added per request.")] = 0.0,
    state: Annotated[str | None, typer.Option(
        help="Keep the cluster in this file across restarts.")] = None,
) -> None:
    """Serve the Kubernetes API emulator; print the kubeconfig path."""
    from emulators.kube.app import create_app
    from emulators.kube.kubeconfig import write_kubeconfig
    from emulators.server import serve_forever

    app = create_app(contrail_url=contrail_url, nodes=nodes, history_size=history_size,
                     bookmark_interval=bookmark_interval, namespace_grace=namespace_grace,
                     latency=latency, state_file=state)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    path = write_kubeconfig(f"http://{shown_host}:{port}", kubeconfig)
    typer.echo(f"kubeconfig: {path}")
    typer.echo(f"  export KUBECONFIG={path}; kubectl get nodes,pods -A -o wide")
    serve_forever(app, host=host, port=port)

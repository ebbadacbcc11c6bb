"""`ckm up` runs the whole system locally; `ckm demo` runs the design walkthrough on it."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ckm.cli import app
from ckm.console import console

out = console()

StateDir = Annotated[Path, typer.Option("--state-dir", help="Where logs, state and "
                                        "stack.json live")]


def _options(**kw):
    from ckm.stack import StackOptions

    return StackOptions(**{k: v for k, v in kw.items() if v is not None})


@app.command()
def up(
    state_dir: StateDir = Path(".ckm"),
    workers: Annotated[int, typer.Option(help="Worker processes")] = 2,
    kube_port: Annotated[int, typer.Option(help="Kubernetes emulator port (0: any)")] = 0,
    contrail_port: Annotated[int, typer.Option(help="Contrail emulator port (0: any)")] = 0,
    flower_port: Annotated[int, typer.Option(help="Flower port (0: any)")] = 5555,
    broker: Annotated[str | None, typer.Option(help="Use this Redis instead of a private one")
                      ] = None,
    kubeconfig: Annotated[str | None, typer.Option(
        help="Use this real cluster instead of the Kubernetes emulator")] = None,
    contrail_url: Annotated[str | None, typer.Option(
        help="Use this real Contrail API instead of the emulator")] = None,
    nodes: Annotated[int, typer.Option(help="Simulated nodes")] = 2,
) -> None:
    """Run everything on this machine until Ctrl-C: Redis, both emulators, the watcher,
    workers, beat and Flower."""
    from ckm.context import clear_current, set_current
    from ckm.processes import Processes, StartError
    from ckm.stack import running_stack, start

    if (running := running_stack(state_dir)) is not None:
        out.print(f"[red]ckm is already up in {state_dir}[/] (pid {running.pid}): stop it "
                  "first, or pass another --state-dir")
        raise typer.Exit(1)
    stop = threading.Event()
    with Processes(state_dir) as procs:  # until up, SIGTERM unwinds through here at once
        try:
            with out.status("starting ckm ..."):
                info = start(procs, _options(workers=workers, kube_port=kube_port,
                                             contrail_port=contrail_port,
                                             flower_port=flower_port, broker=broker,
                                             kubeconfig=kubeconfig, contrail_url=contrail_url,
                                             nodes=nodes, keep_cluster=True),
                             report=lambda part, where, took: out.print(
                                 f"  [green]ready[/] {part:11} {where}  ({took:.1f}s)",
                                 highlight=False))
        except StartError as exc:
            out.print(f"[bold red]cannot start ckm:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # from now: a clean stop, below
        set_current(state_dir)  # other `ckm` commands find this stack from anywhere
        out.print(f"[bold green]ckm is up[/] (state in {state_dir}/stack.json; now the "
                  "current context)")
        for label, value in (("kubernetes", info.kube_url or kubeconfig),
                             ("kubeconfig", info.kubeconfig), ("contrail", info.contrail_url),
                             ("redis", info.broker_url), ("flower", info.flower_url)):
            out.print(f"  {label:11} {value}")
        if info.flower_auth_file:
            out.print(f"  flower auth user ckm, password in {info.flower_auth_file}  "
                      f"(curl -u \"$(cat {info.flower_auth_file})\" ...)", highlight=False)
        for name, url in info.metrics_urls.items():
            out.print(f"  metrics     {url}  ({name})")
        out.print(f"try: KUBECONFIG={info.kubeconfig} kubectl get pods -A -o wide;  "
                  "ckm status;  ckm demo")
        try:
            # A child that dies is restarted with backoff; the rest keep running.
            while not stop.wait(0.5):
                procs.supervise(lambda line: out.print(f"[yellow]{escape(line)}[/]",
                                                       highlight=False))
        except KeyboardInterrupt:
            pass
        out.print("stopping ...")
    (state_dir / "stack.json").unlink(missing_ok=True)
    clear_current(state_dir)


@app.command()
def demo(
    state_dir: StateDir = Path(".ckm"),
    workers: Annotated[int, typer.Option(help="Worker processes (when starting a stack)")] = 2,
    flower: Annotated[bool, typer.Option(help="Also start Flower")] = False,
) -> None:
    """The design document's walkthrough, checked end to end; exit 0 only if all holds.

    Uses the stack `ckm up` runs in the state dir, or starts a private one for the run."""
    import tempfile

    from ckm.demo import run_demo
    from ckm.processes import Processes
    from ckm.stack import running_stack, start

    info = running_stack(state_dir)
    if info is not None:
        out.print(f"using the running stack in {state_dir}")
        ok = run_demo(info, out)
    else:
        with tempfile.TemporaryDirectory(prefix="ckm-demo-") as tmp, \
                Processes(Path(tmp)) as procs:
            with out.status("starting a private ckm stack (Redis, emulators, watcher, "
                            "workers) ..."):
                info = start(procs, _options(workers=workers,
                                             flower_port=0 if flower else None, beat=False))
            ok = run_demo(info, out)
    raise typer.Exit(0 if ok else 1)

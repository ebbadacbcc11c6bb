"""Commands that run or steer the engine: worker, beat, flower, wait, failed, retry, resync."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from ckm.cli import (
    BrokerOption,
    StateDirOption,
    app,
    engine_settings,
    loaded_settings,
    system_line,
)
from ckm.console import console

failed_app = typer.Typer(no_args_is_help=True, help="Failed syncs: keys that could not be synced.")
app.add_typer(failed_app, name="failed")

out = console()
err = console(stderr=True)


def _engine(ctx: typer.Context, *, operator: bool = True, **flags):
    """Install this process's engine context from the settings, and return the Celery app.
    An operator's command says which system it talks to (on stderr) and refuses a Redis it
    merely fell back to."""
    from workers import context as contexts

    if operator:
        loaded = engine_settings(ctx, **flags)
        err.print(f"ckm: {system_line(ctx, loaded)}", highlight=False, style="dim")
    else:
        loaded = loaded_settings(ctx, **flags)
    settings = loaded.settings
    contexts.install(contexts.Context(settings))
    from workers.app import app as celery_app
    from workers.app import configure

    configure(settings)
    return celery_app, contexts.current()


@app.command()
def worker(
    ctx: typer.Context,
    concurrency: Annotated[int | None, typer.Option(help="Threads in this process")] = None,
    broker: Annotated[str | None, typer.Option(help="Redis URL (broker and state)")] = None,
    name: Annotated[str | None, typer.Option(help="Worker node name")] = None,
) -> None:
    """Run a Celery worker process: reconcile keys from every ckm queue."""
    celery_app, context = _engine(ctx, operator=False, worker_concurrency=concurrency,
                                  broker_url=broker)
    from workers.syncs import queues

    celery_app.worker_main([
        "worker", "--pool", "threads", "--concurrency", str(context.settings.worker_concurrency),
        "--queues", ",".join(queues()), "--loglevel", context.settings.log_level,
        "--hostname", name or f"ckm-{os.getpid()}@%h", "--without-gossip", "--without-mingle"])


@app.command()
def beat(ctx: typer.Context,
         broker: Annotated[str | None, typer.Option(help="Redis URL")] = None) -> None:
    """Run Celery beat: schedules the periodic full resync and garbage collection."""
    celery_app, context = _engine(ctx, operator=False, broker_url=broker)
    celery_app.start(["beat", "--loglevel", context.settings.log_level,
                      "--schedule", os.path.join(os.environ.get("CKM_STATE_DIR", "."),
                                                 "celerybeat-schedule")])


@app.command()
def flower(ctx: typer.Context,
           port: Annotated[int, typer.Option(help="HTTP port")] = 5555,
           address: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
           broker: Annotated[str | None, typer.Option(help="Redis URL")] = None) -> None:
    """Run Flower, the Celery web monitor, configured for ckm. Beyond loopback it needs
    basic auth (CKM_FLOWER_BASIC_AUTH=user:password): it can retry syncs."""
    celery_app, context = _engine(ctx, operator=False, broker_url=broker)
    if not context.settings.flower_basic_auth and address not in ("127.0.0.1", "localhost",
                                                                  "::1"):
        err.print(f"[bold red]refusing to serve Flower on {address} without auth:[/] set "
                  "CKM_FLOWER_BASIC_AUTH=user:password (there is no default)", highlight=False)
        raise typer.Exit(2)
    args = ["flower", f"--port={port}", f"--address={address}", "--persistent=True",
            f"--db={os.path.join(os.environ.get('CKM_STATE_DIR', '.'), 'flower.db')}"]
    if context.settings.flower_basic_auth:
        args.append(f"--basic-auth={context.settings.flower_basic_auth.get_secret_value()}")
    try:
        celery_app.start(args)  # Flower turns the workers' task events on while it runs
    finally:
        with contextlib.suppress(Exception):  # nobody watches now: workers stop paying for them
            celery_app.control.disable_events()


@app.command()
def wait(ctx: typer.Context,
         idle: Annotated[bool, typer.Option("--idle", help="Wait until no key is pending",
                                            show_default=False)] = True,
         timeout: Annotated[float, typer.Option(help="Give up after S seconds")] = 300.0,
         as_json: Annotated[bool, typer.Option("--json", help="No progress bar; print the "
                                                "outcome as JSON")] = False,
         broker: BrokerOption = None, state_dir: StateDirOption = None) -> None:
    """Exit 0 once no key is queued, running or waiting for a retry (failed keys are only
    reported); exit 1 on timeout. A terminal shows keys left, rate and ETA."""
    _, context = _engine(ctx, broker=broker, state_dir=state_dir)
    _finish_waiting(context, timeout, as_json)


def _finish_waiting(context, timeout: float, as_json: bool, **extra) -> None:
    """Wait for the keys to finish (with a progress bar on a terminal), then report."""
    from ckm.progress import wait_pending
    from workers.status import pending

    started = time.monotonic()
    left = wait_pending(lambda: pending(context), timeout, console=err, quiet=as_json)
    failed = context.failures.count()
    if as_json:
        typer.echo(json.dumps({**extra, "pending": left, "failed": failed,
                               "seconds": round(time.monotonic() - started, 2)}))
    else:
        if failed:
            out.print(f"{failed} failed sync(s): see `ckm failed list`", style="yellow",
                      highlight=False)
        if left:
            out.print(f"still pending after {timeout:.0f}s: {left}", style="red",
                      highlight=False)
        else:
            out.print(f"idle after {time.monotonic() - started:.1f}s", highlight=False)
    if left:
        raise typer.Exit(1)


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


@failed_app.command("list")
def failed_list(ctx: typer.Context,
                as_json: Annotated[bool, typer.Option("--json")] = False,
                broker: BrokerOption = None, state_dir: StateDirOption = None) -> None:
    """Every failed sync with its last error."""
    _, context = _engine(ctx, broker=broker, state_dir=state_dir)
    failures = context.failures.all()
    if as_json:
        typer.echo(json.dumps([f.__dict__ for f in failures], indent=2))
        return
    table = Table("key", "attempts", "since", "last", "retrying", "error",
                  title=f"{len(failures)} failed sync(s)")
    for f in failures:
        table.add_row(f.key, str(f.attempts), _when(f.first_failed), _when(f.last_failed),
                      "no (bad input)" if f.permanent else "yes", f.error)
    out.print(table)


@failed_app.command("show")
def failed_show(ctx: typer.Context, key: str,
                as_json: Annotated[bool, typer.Option("--json")] = False,
                broker: BrokerOption = None, state_dir: StateDirOption = None) -> None:
    """One failed sync in full, traceback included."""
    _, context = _engine(ctx, broker=broker, state_dir=state_dir)
    failure = context.failures.get(key)
    if failure is None:
        out.print(f"{key} is not a failed sync", style="yellow")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(failure.__dict__, indent=2))
        return
    for label, value in (("key", failure.key), ("error", failure.error),
                         ("attempts", failure.attempts),
                         ("first failed", _when(failure.first_failed)),
                         ("last failed", _when(failure.last_failed)),
                         ("retrying", "no (bad input)" if failure.permanent else "yes")):
        out.print(f"[bold]{label}:[/] {value}", highlight=False)
    if failure.traceback:
        sys.stdout.write(failure.traceback)


@app.command()
def retry(ctx: typer.Context,
          keys: Annotated[list[str] | None, typer.Argument(help="Keys to run now")] = None,
          all_failed: Annotated[bool, typer.Option("--all-failed")] = False,
          broker: BrokerOption = None, state_dir: StateDirOption = None) -> None:
    """Reset the backoff of keys (or of every failed sync) and run them now (even a key
    that looks queued: its message may have been lost)."""
    from workers import reconcilers  # noqa: F401  (registers every sync)
    from workers.manual import problem, retry_keys

    if not keys and not all_failed:
        raise typer.BadParameter("name keys or use --all-failed")
    bad = [f"{key}: {why}" for key in keys or [] if (why := problem(key))]
    if bad:
        err.print("[bold red]not retried:[/] " + "; ".join(bad), highlight=False)
        raise typer.Exit(2)
    celery_app, context = _engine(ctx, broker=broker, state_dir=state_dir)
    done = retry_keys(celery_app, context, keys or [], all_failed=all_failed)
    if not done.queued:
        out.print("nothing to retry: no failed syncs")
        return
    for key in done.unseen:
        out.print(f"note: ckm has no stored object for {key}: it runs, and removes what "
                  "it may have made", style="yellow", highlight=False)
    out.print(f"queued {len(done.queued)} key(s)")


@app.command()
def resync(ctx: typer.Context,
           kind: Annotated[str | None, typer.Option(help="Only this Kubernetes kind")] = None,
           wait: Annotated[bool, typer.Option("--wait", help="Then wait until every key has "
                                              "run (progress bar on a terminal)")] = False,
           timeout: Annotated[float, typer.Option(help="With --wait: give up after S "
                                                  "seconds")] = 600.0,
           as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as "
                                                 "JSON")] = False,
           broker: BrokerOption = None, state_dir: StateDirOption = None) -> None:
    """Start a resync pass: every stored key runs again at low priority, handed out as the
    workers take them; with no --kind every object is verified against Contrail and GC runs."""
    from workers.resync import progress, progress_text
    from workers.resync import resync as run_resync

    celery_app, context = _engine(ctx, broker=broker, state_dir=state_dir)
    counts = run_resync(context, celery_app, kinds=[kind] if kind else None)
    running = None if counts else progress(context)
    if not as_json:
        out.print(f"resync pass started over {counts['objects']} object(s); the workers hand "
                  f"their keys out as they take them: {counts}" if counts else
                  "not started: a pass is already running: " + progress_text(running)
                  if running else "not started: a resync is starting elsewhere",
                  highlight=False)
    if wait:
        _finish_waiting(context, timeout, as_json, started=bool(counts), queued=counts)
    elif as_json:
        typer.echo(json.dumps({"started": bool(counts), "queued": counts, "running": running}))


@app.command()
def watcher(
    ctx: typer.Context,
    kube_url: Annotated[str | None, typer.Option(help="Kubernetes API URL")] = None,
    kubeconfig: Annotated[str | None, typer.Option(help="kubeconfig file")] = None,
    broker: Annotated[str | None, typer.Option(help="Redis URL")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve /metrics, /healthz and /readyz here")] = None,
    identity: Annotated[str | None, typer.Option(help="Lease holder identity")] = None,
) -> None:
    """Run the watcher: list+watch Kubernetes into the store and enqueue keys (one leader)."""
    import logging
    import signal

    from watcher.health import serve_health
    from watcher.kubeapi import api_client
    from watcher.main import Watcher
    from workers.dispatch import enqueue
    from workers.reconcilers import CLUSTER_KEY

    celery_app, context = _engine(ctx, operator=False, kube_url=kube_url, kubeconfig=kubeconfig,
                                  broker_url=broker, metrics_port=metrics_port)
    settings = context.settings
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    def push(keys: list[str], urgent: bool) -> None:
        enqueue(celery_app, context.queue, keys, urgent=urgent)

    from workers.engine import report_bad_object

    running = Watcher(api_client(settings), context.store, push, bootstrap_keys=[CLUSTER_KEY],
                      identity=identity, lease_namespace=settings.lease_namespace,
                      lease_name=settings.lease_name, app_label=settings.app_label,
                      lease_seconds=settings.watcher_lease_seconds,
                      on_bad_object=lambda kind, obj, exc: report_bad_object(
                          context, kind, obj, exc))
    if settings.metrics_port:
        serve_health(settings.metrics_port, healthy=running.healthy, ready=running.ready)
    signal.signal(signal.SIGTERM, lambda *_: running.stop.set())
    try:
        running.run()
    except KeyboardInterrupt:
        running.stop.set()

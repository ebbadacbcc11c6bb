"""The `ckm` command line: one entry point for operators, scripts and containers."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import ckm
from config.errors import ConfigError
from config.loading import Loaded, effective, load

app = typer.Typer(
    name="ckm", no_args_is_help=True, add_completion=False,
    help="Kubernetes -> OpenContrail network controller on a Celery task queue.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the effective configuration.")
app.add_typer(config_app, name="config")

err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ckm {ckm.__version__}")
        raise typer.Exit()


def _parse_sets(pairs: list[str]) -> dict[str, str]:
    flags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--set")
        flags[key.strip().replace("-", "_")] = value
    return flags


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[str | None, typer.Option(
        "--config", "-c", envvar="CKM_CONFIG",
        help="Config file: .toml, .yaml, or the upstream contrail-kubernetes.conf")] = None,
    set_: Annotated[list[str], typer.Option(
        "--set", help="Override one setting: KEY=VALUE (repeatable; beats env and file)")] = [],  # noqa: B006
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit")] = False,
) -> None:
    ctx.obj = {"config": config, "flags": _parse_sets(set_)}


def _local_stack_env() -> dict[str, str]:
    """Settings of a stack `ckm up` runs in the state dir, as the lowest-priority layer."""
    from pathlib import Path

    from ckm.stack import running_stack

    info = running_stack(Path(os.environ.get("CKM_STATE_DIR", ".ckm")))
    return info.env() if info else {}


def loaded_settings(ctx: typer.Context, **flags) -> Loaded:
    """The effective settings for a command; a bad configuration stops here with one message.
    With no URLs configured, a stack started by `ckm up` (in CKM_STATE_DIR, default .ckm) is
    used."""
    obj = ctx.find_root().obj or {}
    sets = obj.get("flags", {})
    merged = {**sets, **{k: v for k, v in flags.items() if v is not None}}
    labels = {key: f"--set {key}" for key in sets}
    environ = {**_local_stack_env(), **os.environ}
    try:
        return load(config_file=obj.get("config"), flags=merged, flag_labels=labels,
                    environ=environ)
    except ConfigError as exc:
        err.print(f"[bold red]configuration error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Print the effective settings and where each value came from (secrets masked)."""
    rows = effective(loaded_settings(ctx))
    if as_json:
        typer.echo(json.dumps({n: {"value": v, "source": s} for n, v, s in rows}, indent=2))
        return
    table = Table("setting", "value", "source", title="ckm effective configuration")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def main() -> None:
    app()


# Subcommand modules register themselves on `app`; imported last because they import it.
from ckm import (  # noqa: E402,F401
    bench_cli,
    emulate_cli,
    engine_cli,
    reach_cli,
    status_cli,
    up_cli,
)

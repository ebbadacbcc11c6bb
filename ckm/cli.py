"""The `ckm` command line: one entry point for operators, scripts and containers."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

import ckm
from ckm.console import console
from config.errors import ConfigError
from config.loading import Loaded, effective, load

# Plain click help: flags read as flags (`--json`, `--flower / --no-flower`), not `<bool>`.
app = typer.Typer(
    name="ckm", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="Kubernetes -> OpenContrail network controller on a Celery task queue.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the effective configuration.")
app.add_typer(config_app, name="config")

err = console(stderr=True)


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
    state_dir: Annotated[str | None, typer.Option(
        "--state-dir", envvar="CKM_STATE_DIR",
        help="The `ckm up` stack to talk to (default: the current one, then ./.ckm)")] = None,
    broker: Annotated[str | None, typer.Option(
        "--broker", help="Redis URL (beats every other source)")] = None,
) -> None:
    ctx.obj = {"config": config, "flags": _parse_sets(set_), "state_dir": state_dir,
               "broker": broker}


# Options every command that talks to Redis also takes after its name
BrokerOption = Annotated[str | None, typer.Option("--broker", help="Redis URL")]
StateDirOption = Annotated[str | None, typer.Option(
    "--state-dir", help="The `ckm up` stack to talk to")]


def loaded_settings(ctx: typer.Context, *, broker: str | None = None,
                    state_dir: str | None = None, **flags) -> Loaded:
    """The effective settings for a command; a bad configuration stops here with one message.
    The stack `ckm up` runs (see ckm.context) is the lowest layer: a config file, `CKM_*`
    variables and flags beat it."""
    from ckm.context import find

    obj = ctx.find_root().obj or {}
    sets = obj.get("flags", {})
    broker = broker or obj.get("broker")
    merged = {**sets, **{k: v for k, v in flags.items() if v is not None},
              **({"broker_url": broker} if broker else {})}
    labels = {key: f"--set {key}" for key in sets} | ({"broker_url": "--broker"}
                                                      if broker else {})
    found = find(state_dir or obj.get("state_dir"))
    base = (found.stack.env(), f"ckm up in {found.state_dir}") if found.stack else None
    obj["found"] = found
    try:
        loaded = load(config_file=obj.get("config"), flags=merged, flag_labels=labels,
                      environ=os.environ, base=base)
    except ConfigError as exc:
        err.print(f"[bold red]configuration error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    for warning in loaded.warnings:  # escaped: INI section names look like markup
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    return loaded


def system_line(ctx: typer.Context, loaded: Loaded) -> str:
    """Which system a command talks to, and why: broker, Kubernetes, Contrail, state dir."""
    s, found = loaded.settings, (ctx.find_root().obj or {}).get("found")
    kube = s.kube_url or s.kubeconfig or "in-cluster / ~/.kube/config"
    where = (f"{found.state_dir} ({found.how})" if found and found.stack else
             f"none running{f' in {found.state_dir}' if found and found.state_dir else ''}")
    return (f"broker {_safe_url(s.broker_url)} ({loaded.origin('broker_url')}) · kubernetes "
            f"{kube} · contrail {', '.join(s.contrail_urls)} · state dir {where}")


def _safe_url(url: str) -> str:
    """A URL without its password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def engine_settings(ctx: typer.Context, *, broker: str | None = None,
                    state_dir: str | None = None, **flags) -> Loaded:
    """Settings for a command that reads or writes Redis. It refuses the built-in default
    broker (a Redis it merely fell back to may be somebody else's) and an unreachable one,
    at once and with one line, instead of writing there or hanging."""
    loaded = loaded_settings(ctx, broker=broker, state_dir=state_dir, **flags)
    url = loaded.settings.broker_url
    if loaded.origin("broker_url") == "default":
        found = (ctx.find_root().obj or {}).get("found")
        looked = f"; no `ckm up` running in {found.state_dir}" if found and found.state_dir \
            else "; no `ckm up` running (current context or ./.ckm)"
        err.print("[bold red]no ckm system named:[/] give --broker, --state-dir, "
                  f"CKM_BROKER_URL or a config file{looked}. Not using the default {url}, "
                  "which may be somebody else's Redis.", highlight=False)
        raise typer.Exit(2)
    _reachable(loaded)
    return loaded


def _reachable(loaded: Loaded) -> None:
    import redis

    from ckm.context import CONNECT_SECONDS
    from workers.redis_conn import is_sentinel

    url = loaded.settings.broker_url
    if is_sentinel(url):
        return  # the sentinels are asked on first use
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_SECONDS,
                                      socket_timeout=CONNECT_SECONDS)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        err.print(f"[bold red]cannot reach Redis[/] at {_safe_url(url)} "
                  f"({loaded.origin('broker_url')}): {exc}", highlight=False)
        raise typer.Exit(1) from None


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
    console().print(table)


def main() -> None:
    app()


# Subcommand modules register themselves on `app`; imported last because they import it.
from ckm import (  # noqa: E402,F401
    bench_cli,
    bench_mixed,
    bench_resync,
    bench_scale,
    describe_cli,
    emulate_cli,
    engine_cli,
    reach_cli,
    status_cli,
    up_cli,
)

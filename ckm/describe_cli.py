"""`ckm describe KIND [NS/]NAME`: why does this object (not) have its Contrail state? Its keys'
state and last runs, the Contrail objects they made, and the Kubernetes Events about it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from ckm.cli import BrokerOption, StateDirOption, app, engine_settings, system_line
from ckm.console import console

out = console()
err = console(stderr=True)


def _ago(stamp: float | None) -> str:
    if not stamp:
        return "-"
    seconds = max(0.0, datetime.now(UTC).timestamp() - stamp)
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


def _state(entry: dict) -> str:
    state = entry["state"]
    if state == "running":
        return f"running (lease {entry['lease_left_seconds']}s left)" + (
            ", runs again after" if entry.get("again_after") else "")
    if state == "queued":
        return f"queued ({entry['lane']})"
    if "next_attempt_in_seconds" in entry:
        return f"{state}, next attempt in {entry['next_attempt_in_seconds']}s"
    return state


@app.command()
def describe(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="pod, service, namespace, ingress, networkpolicy")],
    name: Annotated[str, typer.Argument(help="NS/NAME (NAME for a namespace)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    broker: BrokerOption = None, state_dir: StateDirOption = None,
) -> None:
    """One object's sync: its keys (queued, running, backoff, failed with the reason, done),
    their last runs, the Contrail objects they made, and the Kubernetes Events about it."""
    from watcher.kubeapi import api_client
    from workers.context import Context
    from workers.describe import KINDS
    from workers.describe import describe as collect

    target = KINDS.get(kind.lower())
    if target is None:
        raise typer.BadParameter(f"{kind!r}: one of {', '.join(sorted(set(KINDS)))}")
    namespace, _, short = name.rpartition("/")
    if target != "Namespace" and not namespace:
        raise typer.BadParameter(f"{name!r}: give NS/NAME")
    loaded = engine_settings(ctx, broker=broker, state_dir=state_dir,
                             contrail_retry_seconds=0, contrail_timeout=3)
    err.print(f"ckm: {system_line(ctx, loaded)}", highlight=False, style="dim")
    context = Context(loaded.settings)
    try:
        kube = api_client(loaded.settings)
    except Exception as exc:  # no kubeconfig here: describe what ckm knows
        kube = None
        err.print(f"(no Kubernetes client: {exc})", highlight=False)
    found = collect(context, target, namespace, short, api_client=kube)
    if as_json:
        typer.echo(json.dumps(found, indent=2, default=str))
        return
    obj = found["object"]
    where = f"{obj['namespace']}/{obj['name']}" if obj["namespace"] else obj["name"]
    extra = ", ".join(f"{k} {v}" for k, v in obj.items()
                      if k in ("uid", "node", "labels"))
    out.print(f"[bold]{obj['kind']} {where}[/]" + (f"  ({extra})" if extra else "")
              + ("" if obj["stored"] else
                 "  [yellow]not in ckm's store: deleted, or never seen by the watcher[/]"),
              highlight=False)
    keys = Table("key", "state", "last run", "failure", title="keys", title_justify="left")
    for entry in found["keys"]:
        last = entry.get("last_run") or {}
        failure = entry.get("failure")
        keys.add_row(entry["key"], _state(entry),
                     f"{last['outcome']} {_ago(last.get('end'))}"
                     + (f" on {last['worker']}" if last.get("worker") else "")
                     if last else "none recorded (kept a week)",
                     f"{failure['error']} ({failure['attempts']} attempts, "
                     f"{'retrying' if failure['retrying'] else 'bad input: not retried'})"
                     if failure else "")
    out.print(keys)
    made = Table("type", "fq_name", "uuid", "address", title="Contrail objects its keys made",
                 title_justify="left")
    for entry in found["contrail"]:
        made.add_row(entry["type"], entry.get("fq_name", ""), entry["uuid"],
                     entry.get("address") or entry.get("error", ""))
    out.print(made if found["contrail"] else "Contrail objects its keys made: none")
    if "events_error" in found:
        out.print(f"events: Kubernetes unreachable ({found['events_error']})", highlight=False)
    elif found.get("events") is not None:
        shown = Table("type", "reason", "count", "last", "message", title="events",
                      title_justify="left")
        for event in found["events"]:
            shown.add_row(event["type"] or "", event["reason"] or "", str(event["count"]),
                          event["last"] or "", event["message"] or "")
        out.print(shown if found["events"] else "events: none")

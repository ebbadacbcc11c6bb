"""`ckm status`: what Flower does not show — keys by state, the leader, the last resync and
the Contrail API's health — as a table (`--watch` to follow it) or as JSON."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from ckm.cli import BrokerOption, StateDirOption, app, engine_settings, system_line
from ckm.console import console

out = console()


def collect(context) -> dict:
    """One snapshot of the engine's state (Redis reads and one Contrail home-page GET)."""
    from watcher.main import LEADER_KEY, STREAMS_KEY
    from workers import reconcilers  # noqa: F401  (registers every sync and its queue)
    from workers.liveness import workers_seen
    from workers.resync import LAST, progress, progress_text
    from workers.status import pending
    from workers.syncs import queues

    r = context.redis
    depths = context.queue.depths()
    last = r.get(LAST)
    failed = context.failures.all()
    return {
        "queues": {q: int(r.llen(q)) for q in queues()},
        "queued_keys": depths.queued,
        "in_flight": depths.processing,
        "in_backoff": depths.delayed,
        "failed": len(failed),
        "failed_bad_input": sum(f.permanent for f in failed),
        "pending": pending(context),
        "leader": r.get(LEADER_KEY),
        "last_resync": (datetime.fromtimestamp(int(last), UTC).isoformat() if last else None),
        "resync_running": (progress_text(running)
                           if (running := progress(context)) is not None else None),
        "contrail_healthy": _contrail_answers(context.settings.contrail_urls),
        "contrail_urls": context.settings.contrail_urls,
        "workers": workers_seen(context),
        "streams": {kind: json.loads(raw) for kind, raw in sorted(
            r.hgetall(STREAMS_KEY).items())},
        "rates": rates(context),
        "store_complete": context.store.complete(),
    }


RATE_WINDOW = 60.0
RATE_PAGE = 500


def rates(context) -> dict:
    """Runs per second over the last minute, from the engine's run log (newest first),
    read a page at a time until a run is older than the window (`--watch` reads it every
    second: not the whole log)."""
    from workers.engine import RUNS, RUNS_KEPT

    since, runs, done, errors = time.time() - RATE_WINDOW, 0, 0, 0
    for start in range(0, RUNS_KEPT, RATE_PAGE):
        page = [json.loads(raw) for raw in context.redis.lrange(RUNS, start,
                                                                 start + RATE_PAGE - 1)]
        recent = [run for run in page if run["end"] >= since]
        runs += len(recent)
        done += sum(run["outcome"] == "done" for run in recent)
        errors += sum(run["outcome"] in ("error", "bad-input") for run in recent)
        if len(recent) < RATE_PAGE:  # the window ends in this page, or the log does
            break
    # every run the log keeps is recent: there were at least this many, maybe more
    at_least = runs >= RUNS_KEPT
    return {"window_seconds": RATE_WINDOW, "runs": runs, "done": done, "errors": errors,
            "runs_per_second": round(runs / RATE_WINDOW, 2), "at_least": at_least}


def _contrail_answers(urls: list[str]) -> bool:
    """Does some Contrail API server answer its home page within 2 s? (Not through the
    client, whose retries would hold `ckm status` for a minute.)"""
    import httpx

    for url in urls:
        try:
            if httpx.get(url.rstrip("/") + "/", timeout=2.0).status_code < 500:
                return True
        except httpx.HTTPError:
            continue
    return False


def _workers(workers: dict[str, dict]) -> str:
    if not workers:
        return "[red]none heard from[/]"
    stuck = [name for name, w in workers.items() if not w["consuming"]]
    text = f"{len(workers) - len(stuck)}/{len(workers)}"
    return text + (f" [red](stuck: {', '.join(stuck)})[/]" if stuck else "")


def _table(state: dict) -> Table:
    table = Table("", "", title=f"ckm status at {datetime.now(UTC):%H:%M:%S} UTC",
                  show_header=False)
    for queue, depth in state["queues"].items():
        table.add_row(f"queue {queue}", str(depth))
    rows = (("keys queued", state["queued_keys"]), ("in flight", state["in_flight"]),
            ("in backoff", state["in_backoff"]),
            ("failed syncs", f"{state['failed']} ({state['failed_bad_input']} bad input)"),
            ("watcher leader", state["leader"] or "[red]none[/]"),
            ("store", "complete" if state["store_complete"]
             else "[red]incomplete: the watcher is listing, no key runs[/]"),
            ("workers consuming", _workers(state["workers"])),
            ("last resync", state["last_resync"] or "never"),
            ("resync pass", state["resync_running"] or "none running"),
            ("Contrail API", "[green]healthy[/]" if state["contrail_healthy"]
             else "[red]unreachable[/]"))
    for label, value in rows:
        table.add_row(label, str(value))
    r = state["rates"]
    more = "≥ " if r["at_least"] else ""
    table.add_row("runs, last minute", f"{more}{r['runs']} ({more}{r['runs_per_second']}/s): "
                  f"{r['done']} done, {r['errors']} errors")
    if not state["streams"]:
        table.add_row("watch streams", "[red]none reported (no leader?)[/]")
    for kind, stream in state["streams"].items():
        table.add_row(f"watch {kind}", _stream(stream))
    return table


def _stream(stream: dict) -> str:
    if not stream["healthy"]:
        return f"[red]failing: {escape(stream['error'])}[/]"
    state = "[green]healthy[/]" if stream["listed"] else "[yellow]listing[/]"
    if stream["error"]:
        state += f" [yellow](retrying: {escape(stream['error'])})[/]"
    last = stream["last_event_at"]
    ago = f"last {time.time() - last:.0f}s ago" if last else "no event yet"
    return f"{state} · {stream['events']} events, {ago} · {stream['relists']} relists"


@app.command()
def status(
    ctx: typer.Context,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh every second")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    broker: BrokerOption = None, state_dir: StateDirOption = None,
) -> None:
    """Which system, then queue depth per queue, in flight, in backoff, failed, leader, last
    resync, Contrail."""
    from workers.context import Context

    loaded = engine_settings(ctx, broker=broker, state_dir=state_dir)
    system = system_line(ctx, loaded)
    context = Context(loaded.settings)

    def state() -> dict:
        return {"system": system, **collect(context)}
    if as_json:
        typer.echo(json.dumps(state(), indent=2))
        return
    out.print(system, highlight=False)
    if not watch:
        out.print(_table(state()))
        return
    with Live(_table(state()), console=out, refresh_per_second=2) as live:
        try:
            while True:
                time.sleep(1)
                live.update(_table(state()))
        except KeyboardInterrupt:
            pass

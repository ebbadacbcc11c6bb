"""`ckm reach`: is a connection allowed, judged from the live Contrail configuration.

SRC is a pod (`ns/name`); DST a pod (`ns/name`), a service (`svc:ns/name`) or an address.
The verdict follows the contract's reachability rules (tasks.reach) on what Contrail holds,
not on the Kubernetes objects, so it is how an operator checks what the vrouters will do.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ckm.cli import app, loaded_settings
from ckm.console import console

out = console()


class Cluster:
    """Pod and service lookups in one snapshot of the Contrail configuration."""

    def __init__(self, settings, client):
        from contrail.snapshot import load
        from tasks.reach import REACH_TYPES, Snapshot

        self.settings = settings
        self.snap = Snapshot(load(client, (*REACH_TYPES, "virtual-machine", "loadbalancer")))
        self.cluster_network = next(
            vn["uuid"] for vn in self.snap.of("virtual-network")
            if vn["fq_name"] == [settings.domain, f"{settings.cluster_name}-default",
                                 "cluster-network"])

    def pods(self, namespace: str) -> list[str]:
        prefix = f"{self.settings.cluster_name}__{namespace}__"
        return sorted(vm["fq_name"][0][len(prefix):] for vm in self.snap.of("virtual-machine")
                      if vm["fq_name"][0].startswith(prefix))

    def port(self, pod: str) -> str:
        namespace, _, name = pod.partition("/")
        wanted = f"{self.settings.cluster_name}__{namespace}__{name}"
        for vm in self.snap.of("virtual-machine"):
            if vm["fq_name"] == [wanted]:
                for vmi in self.snap.of("virtual-machine-interface"):
                    if vm["uuid"] in [r["uuid"] for r in vmi.get("virtual_machine_refs") or []]:
                        return vmi["uuid"]
        raise typer.BadParameter(f"no port for pod {pod} in Contrail")

    def address(self, target: str) -> str:
        if target.startswith("svc:"):
            namespace, _, name = target[4:].partition("/")
            project = [self.settings.domain, f"{self.settings.cluster_name}-{namespace}"]
            for lb in self.snap.of("loadbalancer"):
                if (lb["fq_name"][:2] == project and lb["fq_name"][-1].startswith(f"{name}__")
                        and lb.get("loadbalancer_provider") == "native"):
                    return lb["loadbalancer_properties"]["vip_address"]
            raise typer.BadParameter(f"no loadbalancer for service {target[4:]}")
        if "/" in target:
            port = self.port(target)
            for iip in self.snap.of("instance-ip"):
                if port in [r["uuid"] for r in iip.get("virtual_machine_interface_refs") or []]:
                    return iip["instance_ip_address"]
            raise typer.BadParameter(f"pod {target} has no address in Contrail")
        return target

    def reach(self, src: str, dst: str, port: int, protocol: str):
        from tasks.reach import evaluate

        return evaluate(self.snap, self.port(src), self.address(dst), port, protocol,
                        cluster_network=self.cluster_network)


@app.command()
def reach(
    ctx: typer.Context,
    src: Annotated[str | None, typer.Argument(help="Source pod: ns/name")] = None,
    dst: Annotated[str | None, typer.Argument(
        help="Destination: ns/name (pod), svc:ns/name (service) or an IP address")] = None,
    port: Annotated[int, typer.Option(help="Destination port")] = 80,
    protocol: Annotated[str, typer.Option(help="tcp, udp or sctp")] = "tcp",
    matrix: Annotated[list[str] | None, typer.Option(
        "--matrix", help="Pod x pod table of these namespaces (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Allowed or denied, and why: the network path and the matching rule, or what is missing."""
    from contrail.client import ContrailClient

    settings = loaded_settings(ctx).settings
    cluster = Cluster(settings, ContrailClient.from_settings(settings))
    if matrix:
        pods = [f"{ns}/{p}" for ns in matrix for p in cluster.pods(ns)]
        cells = {(a, b): cluster.reach(a, b, port, protocol).allowed
                 for a in pods for b in pods if a != b}
        if as_json:
            typer.echo(json.dumps({f"{a} -> {b}": ok for (a, b), ok in cells.items()},
                                  indent=2))
            return
        table = Table("from \\ to", *pods, title=f"reachability on {protocol}/{port}")
        for a in pods:
            table.add_row(a, *("-" if a == b else ("[green]yes[/]" if cells[(a, b)]
                                                    else "[red]no[/]") for b in pods))
        out.print(table)
        return
    if not (src and dst):
        raise typer.BadParameter("give SRC and DST, or --matrix NS")
    verdict = cluster.reach(src, dst, port, protocol)
    if as_json:
        typer.echo(json.dumps(verdict.__dict__, indent=2))
    else:
        word = "[green]allowed[/]" if verdict.allowed else "[red]denied[/]"
        out.print(f"{src} -> {dst} {protocol}/{port}: {word}")
        if verdict.allowed:
            out.print(f"  path: {verdict.path}\n  egress: {verdict.egress}\n"
                      f"  ingress: {verdict.ingress}", highlight=False)
        for reason in verdict.reasons:
            out.print(f"  {reason}", highlight=False)
    raise typer.Exit(0 if verdict.allowed else 1)

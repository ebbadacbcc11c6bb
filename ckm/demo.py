"""The design document's walkthrough on a running stack, checked from start to finish.

Default-mode pods, an isolated namespace (behaviours a-e), an app-isolated pair, a service and
its ECMP, an ingress and a network policy; pods shown as `kubectl get pods -o wide` would,
the virtual networks, and a ping matrix computed by `ckm reach` on the live Contrail config.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import kubernetes.client
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ckm.reach_cli import Cluster
from ckm.stack import StackInfo
from config.settings import Settings
from contrail.client import ContrailClient
from workers.context import Context
from workers.status import wait_idle

ISOLATED = "test-isolated-ns"
WEB = [{"name": "http", "containerPort": 80}]
PODS = {  # (namespace, name): labels
    ("default", "client-1"): {}, ("default", "client-2"): {"role": "frontend"},
    ("default", "example1"): {"app": "example"}, ("default", "example2"): {"app": "example"},
    (ISOLATED, "example3"): {"app": "isolated"}, (ISOLATED, "example4"): {},
    ("default", "app1-a"): {"opencontrail.org/name": "app1"},
    ("default", "app1-b"): {"opencontrail.org/name": "app1"},
    ("default", "db"): {"app": "db"},
}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


CONVERGE_SECONDS = 30.0  # how long an expectation may take to hold once ckm is idle
SERVICES = {("default", "example"): 2, (ISOLATED, "isolated"): 1}  # ready endpoints expected


def _wait(predicate, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # the API may not have the object yet
            pass
        time.sleep(0.2)
    return False


def _apply(create, *args) -> None:
    """Create, or keep what an earlier demo run made (the demo can run again on a stack)."""
    try:
        create(*args)
    except kubernetes.client.exceptions.ApiException as exc:
        if exc.status != 409:
            raise


def _create(core, net) -> None:
    _apply(core.create_namespace, {"metadata": {"name": ISOLATED, "annotations": {
        "opencontrail.kubernetes.isolated": "true"}}})
    for (ns, name), labels in PODS.items():
        _apply(core.create_namespaced_pod, ns, {
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": WEB}]}})
    for ns, name, selector in (("default", "example", {"app": "example"}),
                               (ISOLATED, "isolated", {"app": "isolated"})):
        _apply(core.create_namespaced_service, ns, {"metadata": {"name": name}, "spec": {
            "selector": selector, "ports": [{"name": "http", "port": 8080,
                                             "targetPort": "http"}]}})
    _apply(net.create_namespaced_ingress, "default", {"metadata": {"name": "example"}, "spec": {
        "defaultBackend": {"service": {"name": "example", "port": {"name": "http"}}}}})
    _apply(net.create_namespaced_network_policy, "default", {
        "metadata": {"name": "db-from-frontend"}, "spec": {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}]}})


def _endpoints_ready(discovery, ns: str, service: str, want: int) -> bool:
    slices = discovery.list_namespaced_endpoint_slice(
        ns, label_selector=f"kubernetes.io/service-name={service}").items
    return sum(1 for s in slices for e in s.endpoints or []
               if e.conditions is None or e.conditions.ready is not False) >= want


def _pods_table(core) -> Table:
    table = Table("NAMESPACE", "NAME", "READY", "STATUS", "IP", "NODE", box=None,
                  title="kubectl get pods -o wide")
    for ns in ("default", ISOLATED):
        for pod in core.list_namespaced_pod(ns).items:
            ready = "1/1" if pod.status.phase == "Running" else "0/1"
            table.add_row(ns, pod.metadata.name, ready, pod.status.phase,
                          pod.status.pod_ip or "<none>", pod.spec.node_name or "<none>")
    return table


def run_demo(info: StackInfo, out: Console) -> bool:
    api = kubernetes.config.new_client_from_config(config_file=info.kubeconfig) \
        if not info.kube_url else kubernetes.client.ApiClient(_conf(info.kube_url))
    core, net = kubernetes.client.CoreV1Api(api), kubernetes.client.NetworkingV1Api(api)
    settings = Settings(contrail_urls=[info.contrail_url], broker_url=info.broker_url)
    contrail = ContrailClient.from_settings(settings)
    started = time.monotonic()
    checks: list[Check] = []
    with Progress(console=out, transient=True) as progress:
        step = progress.add_task("cluster bootstrap (cluster-network)", total=4)
        checks.append(Check("cluster-network exists", _wait(lambda: contrail.fq_name_to_id(
            "virtual-network", ["default-domain", "k8s-default", "cluster-network"]))))
        progress.update(step, advance=1, description="creating pods, services, ingress, policy")
        _create(core, net)
        progress.update(step, advance=1, description="waiting for pods to get Contrail IPs")
        running = _wait(lambda: all(core.read_namespaced_pod(n, ns).status.phase == "Running"
                                    for ns, n in PODS), timeout=120)
        checks.append(Check("every pod Running with a Contrail IP", running))
        # the EndpointSlice controller fills the services after the pods are ready: ckm is
        # only settled once it has seen that too
        discovery = kubernetes.client.DiscoveryV1Api(api)
        _wait(lambda: all(_endpoints_ready(discovery, ns, name, want)
                          for (ns, name), want in SERVICES.items()), timeout=60)
        progress.update(step, advance=1, description="waiting for ckm to settle")
        checks.append(Check("ckm settled (nothing queued)",
                            wait_idle(Context(settings), 120) == 0))
        progress.update(step, advance=1)
    out.print(_pods_table(core))
    out.print(_networks(contrail))
    checks += _reachability(settings, contrail, core, out)
    checks += _objects(contrail, core, net)
    table = Table("check", "result", "detail", title="expectations of the design document")
    for check in checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAILED[/]",
                      check.detail)
    out.print(table)
    ok = all(c.ok for c in checks)
    elapsed = time.monotonic() - started
    out.print(f"[bold {'green' if ok else 'red'}]demo {'passed' if ok else 'FAILED'}[/] "
              f"in {elapsed:.1f}s ({sum(c.ok for c in checks)}/{len(checks)} checks)")
    return ok


def _conf(url: str) -> kubernetes.client.Configuration:
    conf = kubernetes.client.Configuration()
    conf.host = url
    return conf


def _networks(contrail: ContrailClient) -> Table:
    table = Table("virtual network", "subnets / IPAMs", box=None,
                  title="virtual networks in Contrail")
    for vn in contrail.list("virtual-network", detail=True):
        if vn["fq_name"][1].startswith("k8s-"):
            table.add_row(":".join(vn["fq_name"]), ", ".join(
                r["to"][-1] for r in vn.get("network_ipam_refs") or []))
    return table


def _expectations() -> list[tuple[str, str, str, int, bool]]:
    """(check, source pod, destination, port, allowed) from the design document."""
    iso3, iso4 = f"{ISOLATED}/example3", f"{ISOLATED}/example4"
    return [
        ("default mode: pods reach each other", "default/client-1", "default/example1", 80,
         True),
        ("(a) isolated pods reach each other", iso3, iso4, 80, True),
        ("(b) other namespaces cannot reach isolated pods", "default/client-1", iso3, 80, False),
        ("(c) isolated pods reach other namespaces", iso3, "default/client-1", 80, True),
        ("(d) isolated pods reach every service", iso4, "svc:default/example", 8080, True),
        ("(e) isolated pods are reached through their service IP", "default/client-1",
         f"svc:{ISOLATED}/isolated", 8080, True),
        ("app isolation: the app pair reach each other", "default/app1-a", "default/app1-b", 80,
         True),
        ("app isolation: others cannot reach the app pods", "default/client-1",
         "default/app1-a", 80, False),
        ("network policy: frontend reaches db", "default/client-2", "default/db", 80, True),
        ("network policy: others do not reach db", "default/client-1", "default/db", 80, False),
    ]


def _reachability(settings, contrail, core, out) -> list[Check]:
    """Judge every expectation on a fresh snapshot of Contrail until all hold (the system is
    eventually consistent) or CONVERGE_SECONDS pass; then show the ping matrix."""
    deadline = time.monotonic() + CONVERGE_SECONDS
    while True:
        cluster = Cluster(settings, contrail)
        checks = [Check(name, cluster.reach(src, dst, port, "tcp").allowed == want)
                  for name, src, dst, port, want in _expectations()]
        if all(c.ok for c in checks) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    pods = ["default/client-1", "default/example1", f"{ISOLATED}/example3",
            f"{ISOLATED}/example4", "default/app1-a", "default/app1-b"]
    table = Table("ping from \\ to", *[p.split("/")[1] for p in pods], box=None,
                  title="reachability (ckm reach, tcp/80)")
    for src in pods:
        table.add_row(src, *("-" if src == dst else (
            "[green]ok[/]" if cluster.reach(src, dst, 80, "tcp").allowed else "[red]no[/]")
            for dst in pods))
    out.print(table)
    return checks


def _objects(contrail, core, net) -> list[Check]:
    svc = core.read_namespaced_service("example", "default")

    def vip_is_cluster_ip() -> bool:
        lb = contrail.read("loadbalancer", svc.metadata.uid)
        return lb["loadbalancer_properties"]["vip_address"] == svc.spec.cluster_ip

    def ecmp_to_both() -> bool:
        backends = [f for f in contrail.list("floating-ip", detail=True)
                    if f.get("floating_ip_address") == svc.spec.cluster_ip]
        return bool(backends) and len(backends[0].get("virtual_machine_interface_refs")
                                      or []) == 2

    def ingress_addresses() -> list[str]:
        status = net.read_namespaced_ingress_status("example", "default").status
        return [i.ip for i in status.load_balancer.ingress or []]

    return [
        Check("service: loadbalancer VIP = clusterIP",
              _wait(vip_is_cluster_ip, CONVERGE_SECONDS), svc.spec.cluster_ip),
        Check("service: ECMP floating IP to both ready pods",
              _wait(ecmp_to_both, CONVERGE_SECONDS)),
        Check("ingress: haproxy loadbalancer, status written back",
              _wait(ingress_addresses, CONVERGE_SECONDS), ", ".join(ingress_addresses())),
    ]

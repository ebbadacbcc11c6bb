"""Server-side printing: `meta.k8s.io/v1` Table responses for `kubectl get`.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints the columns it
gets back; without Tables it would show only NAME and AGE. Columns and cell formats follow
the real server's printers (pkg/printers/internalversion) for our kinds, including the wide
(priority 1) columns `-o wide` shows, e.g. a Pod's IP and NODE.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from emulators.kube.resources import ResourceType

Obj = dict[str, Any]
Column = tuple[str, int, Callable[[Obj], Any]]  # name, priority, cell


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years, days = hours // 24 // 365, (hours // 24) % 365
    if hours < 24 * 365 * 8 and days:
        return f"{years}y{days}d"
    return f"{years}y"


def _since(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:  # any RFC 3339 time a client wrote (fractions, offsets), as metav1.Time reads it
        then = datetime.fromisoformat(timestamp)
    except ValueError:
        return "<invalid>"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return human_duration((datetime.now(UTC) - then).total_seconds())


def _age(obj: Obj) -> str:
    return _since(obj["metadata"].get("creationTimestamp"))


def _name(obj: Obj) -> str:
    return obj["metadata"]["name"]


def _labels(selector: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items())) or "<none>"


def _join_limited(values: list[str], unset: str) -> str:
    if not values:
        return unset
    shown = ",".join(values[:3])
    return shown + (f" + {len(values) - 3} more..." if len(values) > 3 else "")


# --- per-kind cells ---------------------------------------------------------------------

def _pod_ready(pod: Obj) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    return f"{ready}/{len((pod.get('spec') or {}).get('containers') or [])}"


def _pod_status(pod: Obj) -> str:
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_restarts(pod: Obj) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return str(sum(int(s.get("restartCount", 0)) for s in statuses))


def _node_status(node: Obj) -> str:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    text = "Ready" if ready and ready.get("status") == "True" else (
        "NotReady" if ready else "Unknown")
    return text + (",SchedulingDisabled" if (node.get("spec") or {}).get("unschedulable") else "")


def _node_roles(node: Obj) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix):] for k in node["metadata"].get("labels") or {}
                   if k.startswith(prefix))
    return ",".join(roles) or "<none>"


def _node_address(node: Obj, kind: str) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == kind:
            return address.get("address", "")
    return "<none>"


def _node_info(field: str) -> Callable[[Obj], str]:
    return lambda n: ((n.get("status") or {}).get("nodeInfo") or {}).get(field, "<unknown>")


def _service_external(svc: Obj) -> str:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return spec.get("externalName", "<none>")
    ips = list(spec.get("externalIPs") or [])
    for ingress in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        ips.append(ingress.get("ip") or ingress.get("hostname") or "")
    if ips:
        return ",".join(ips)
    return "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"


def _service_ports(svc: Obj) -> str:
    ports = []
    for port in (svc.get("spec") or {}).get("ports") or []:
        node_port = f":{port['nodePort']}" if port.get("nodePort") else ""
        ports.append(f"{port.get('port')}{node_port}/{port.get('protocol', 'TCP')}")
    return ",".join(ports) or "<none>"


def _endpoints(ep: Obj) -> str:
    values = []
    for subset in ep.get("subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for address in subset.get("addresses") or []:
            values += [f"{address['ip']}:{p}" if p else address["ip"] for p in ports]
    return _join_limited(values, "<none>")


def _slice_ports(es: Obj) -> str:
    ports = [str(p.get("port")) for p in es.get("ports") or [] if p.get("port") is not None]
    return ",".join(ports) or "<unset>"


def _slice_endpoints(es: Obj) -> str:
    return _join_limited([a for ep in es.get("endpoints") or [] for a in ep.get("addresses", [])],
                         "<unset>")


def _ingress_hosts(ing: Obj) -> str:
    hosts = [r.get("host") for r in (ing.get("spec") or {}).get("rules") or [] if r.get("host")]
    return ",".join(hosts) or "*"


def _ingress_address(ing: Obj) -> str:
    entries = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return ",".join(e.get("ip") or e.get("hostname") or "" for e in entries)


def _event_object(ev: Obj) -> str:
    involved = ev.get("involvedObject") or {}
    return f"{(involved.get('kind') or '').lower()}/{involved.get('name', '')}"


COLUMNS: dict[str, list[Column]] = {
    "Pod": [("Name", 0, _name), ("Ready", 0, _pod_ready), ("Status", 0, _pod_status),
            ("Restarts", 0, _pod_restarts), ("Age", 0, _age),
            ("IP", 1, lambda p: (p.get("status") or {}).get("podIP") or "<none>"),
            ("Node", 1, lambda p: (p.get("spec") or {}).get("nodeName") or "<none>"),
            ("Nominated Node", 1,
             lambda p: (p.get("status") or {}).get("nominatedNodeName") or "<none>"),
            ("Readiness Gates", 1, lambda p: "<none>")],
    "Namespace": [("Name", 0, _name),
                  ("Status", 0, lambda n: (n.get("status") or {}).get("phase", "")),
                  ("Age", 0, _age)],
    "Node": [("Name", 0, _name), ("Status", 0, _node_status), ("Roles", 0, _node_roles),
             ("Age", 0, _age), ("Version", 0, _node_info("kubeletVersion")),
             ("Internal-IP", 1, lambda n: _node_address(n, "InternalIP")),
             ("External-IP", 1, lambda n: _node_address(n, "ExternalIP")),
             ("OS-Image", 1, _node_info("osImage")),
             ("Kernel-Version", 1, _node_info("kernelVersion")),
             ("Container-Runtime", 1, _node_info("containerRuntimeVersion"))],
    "Service": [("Name", 0, _name),
                ("Type", 0, lambda s: (s.get("spec") or {}).get("type", "")),
                ("Cluster-IP", 0, lambda s: (s.get("spec") or {}).get("clusterIP") or "<none>"),
                ("External-IP", 0, _service_external), ("Port(s)", 0, _service_ports),
                ("Age", 0, _age),
                ("Selector", 1, lambda s: _labels((s.get("spec") or {}).get("selector")))],
    "Endpoints": [("Name", 0, _name), ("Endpoints", 0, _endpoints), ("Age", 0, _age)],
    "EndpointSlice": [("Name", 0, _name), ("AddressType", 0, lambda e: e.get("addressType")),
                      ("Ports", 0, _slice_ports), ("Endpoints", 0, _slice_endpoints),
                      ("Age", 0, _age)],
    "NetworkPolicy": [("Name", 0, _name),
                      ("Pod-Selector", 0, lambda n: _labels(((n.get("spec") or {}).get(
                          "podSelector") or {}).get("matchLabels"))),
                      ("Age", 0, _age)],
    "Ingress": [("Name", 0, _name),
                ("Class", 0, lambda i: (i.get("spec") or {}).get("ingressClassName") or "<none>"),
                ("Hosts", 0, _ingress_hosts), ("Address", 0, _ingress_address),
                ("Ports", 0, lambda i: "80, 443" if (i.get("spec") or {}).get("tls") else "80"),
                ("Age", 0, _age)],
    "IngressClass": [("Name", 0, _name),
                     ("Controller", 0, lambda c: (c.get("spec") or {}).get("controller", "")),
                     ("Parameters", 0, lambda c: "<none>"), ("Age", 0, _age)],
    "Lease": [("Name", 0, _name),
              ("Holder", 0, lambda lease: (lease.get("spec") or {}).get("holderIdentity", "")),
              ("Age", 0, _age)],
    "Event": [("Last Seen", 0, lambda e: _since(e.get("lastTimestamp") or e.get("eventTime")
                                                or e["metadata"].get("creationTimestamp"))),
              ("Type", 0, lambda e: e.get("type", "")),
              ("Reason", 0, lambda e: e.get("reason", "")),
              ("Object", 0, _event_object), ("Message", 0, lambda e: e.get("message", ""))],
}
_DEFAULT: list[Column] = [("Name", 0, _name), ("Age", 0, _age)]


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"]}


def table(rt: ResourceType, objects: list[Obj], *, include_object: str = "Metadata",
          list_meta: Obj | None = None) -> Obj:
    columns = COLUMNS.get(rt.kind, _DEFAULT)
    rows = []
    for obj in objects:
        row: Obj = {"cells": [cell(obj) for _, _, cell in columns]}
        partial = _row_object(obj, include_object)
        if partial is not None:
            row["object"] = partial
        rows.append(row)
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta or {},
        "columnDefinitions": [
            {"name": name, "type": "string", "format": "name" if name == "Name" else "",
             "description": "", "priority": priority} for name, priority, _ in columns],
        "rows": rows,
    }

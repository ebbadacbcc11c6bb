"""What of each Kubernetes object ckm keeps: the fields its reconcilers read, nothing else.

Pure functions from the API's JSON (dicts) to small JSON projections. Because status-only
changes, resourceVersion churn and unrelated annotations do not appear in a projection, an
update that changes none of these fields costs nothing downstream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Annotations reconcilers read; every other annotation is noise (kubectl's last-applied, ...).
RELEVANT_ANNOTATION_PREFIXES = ("opencontrail.", "kubernetes.io/ingress.class")


def _meta(obj: dict) -> dict:
    meta = obj.get("metadata") or {}
    return {"uid": meta.get("uid", ""), "labels": dict(meta.get("labels") or {})}


def _annotations(obj: dict) -> dict[str, str]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return {k: v for k, v in annotations.items() if k.startswith(RELEVANT_ANNOTATION_PREFIXES)}


def namespace(obj: dict) -> dict[str, Any]:
    return {**_meta(obj), "annotations": _annotations(obj)}


def _container_ports(spec: dict) -> list[dict]:
    ports = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            ports.append({"name": port.get("name"), "port": port.get("containerPort"),
                          "protocol": port.get("protocol") or "TCP"})
    return ports


def pod(obj: dict) -> dict[str, Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return {**_meta(obj), "annotations": _annotations(obj),
            "node": spec.get("nodeName") or "", "host_network": bool(spec.get("hostNetwork")),
            "ports": _container_ports(spec),
            # a finished pod keeps its name but no longer needs a port
            "finished": status.get("phase") in ("Succeeded", "Failed")}


def service(obj: dict) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    return {**_meta(obj), "annotations": _annotations(obj),
            "type": spec.get("type") or "ClusterIP", "cluster_ip": spec.get("clusterIP") or "",
            "external_ips": sorted(spec.get("externalIPs") or []),
            "selector": dict(spec.get("selector") or {}),
            "ports": [{"name": p.get("name") or "", "port": p.get("port"),
                       "protocol": p.get("protocol") or "TCP",
                       "target_port": p.get("targetPort", p.get("port"))}
                      for p in spec.get("ports") or []]}


def endpoint_slice(obj: dict) -> dict[str, Any]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    endpoints = []
    for ep in obj.get("endpoints") or []:
        ref = ep.get("targetRef") or {}
        endpoints.append({
            "addresses": sorted(ep.get("addresses") or []),
            "ready": (ep.get("conditions") or {}).get("ready") is not False,
            "pod": ref.get("name") if ref.get("kind") == "Pod" else None,
            "pod_uid": ref.get("uid") if ref.get("kind") == "Pod" else None})
    return {**_meta(obj), "service": labels.get("kubernetes.io/service-name", ""),
            "ports": [{"name": p.get("name") or "", "port": p.get("port"),
                       "protocol": p.get("protocol") or "TCP"} for p in obj.get("ports") or []],
            "endpoints": sorted(endpoints, key=lambda e: (e["pod"] or "", e["addresses"]))}


def network_policy(obj: dict) -> dict[str, Any]:
    return {**_meta(obj), "spec": obj.get("spec") or {}}


def ingress(obj: dict) -> dict[str, Any]:
    return {**_meta(obj), "annotations": _annotations(obj), "spec": obj.get("spec") or {}}


def node(obj: dict) -> dict[str, Any]:
    addresses = (obj.get("status") or {}).get("addresses") or []
    return {**_meta(obj), "addresses": {a.get("type"): a.get("address") for a in addresses}}


PROJECTIONS: dict[str, Callable[[dict], dict[str, Any]]] = {
    "Namespace": namespace, "Pod": pod, "Service": service, "EndpointSlice": endpoint_slice,
    "NetworkPolicy": network_policy, "Ingress": ingress, "Node": node,
}

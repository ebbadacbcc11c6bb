"""The EndpointSlice and Endpoints controllers, for Services with a selector.

Level-triggered: a pod or service change marks the affected services dirty, and a loop
recomputes each one's slices from the current pods and writes only differences. Pods count
when they match the selector, have a podIP and are not Succeeded/Failed; `conditions.ready`
(and `serving`) follow the pod's Ready condition. Named targetPorts are resolved per pod from
its container ports; pods that resolve to different port numbers go to different slices, as
the real controller does, at most 100 endpoints per slice. Slices are named
`<service>-<hash of the port set>[-<n>]` (the real controller uses generateName, and moves
fewer endpoints between slices when pods come and go). Services without a selector, and
their endpoints, are left alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

from emulators.kube.backend import Backend
from emulators.kube.errors import ApiError
from emulators.kube.resources import BY_KIND
from emulators.kube.store import Event, Obj

log = logging.getLogger(__name__)
PODS, SERVICES = BY_KIND["Pod"], BY_KIND["Service"]
SLICES, ENDPOINTS = BY_KIND["EndpointSlice"], BY_KIND["Endpoints"]
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"
ENDPOINTS_MANAGED_BY = "endpoints.kubernetes.io/managed-by"
MAX_ENDPOINTS_PER_SLICE = 100  # the real controller's --max-endpoints-per-slice default
SYNC_DELAY = 0.05  # seconds to collect changes before syncing (the real one batches ~1 s)


def _selects(selector: dict[str, str] | None, pod: Obj | None) -> bool:
    if not selector or pod is None:
        return False
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _resolve(target: Any, protocol: str, pod: Obj) -> int | None:
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return port.get("containerPort")
    return None


def pod_ports(service: Obj, pod: Obj) -> tuple[tuple[str, int, str], ...]:
    """(name, resolved port, protocol) for each service port this pod can serve."""
    ports = []
    for port in (service.get("spec") or {}).get("ports") or []:
        protocol = port.get("protocol", "TCP")
        number = _resolve(port.get("targetPort", port.get("port")), protocol, pod)
        if number is not None:
            ports.append((port.get("name", ""), number, protocol))
    return tuple(ports)


def _target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
            "uid": meta["uid"]}


def desired_slices(service: Obj, pods: list[Obj],
                   max_endpoints: int = MAX_ENDPOINTS_PER_SLICE) -> dict[str, Obj]:
    """Slice name → the slice's content (labels, addressType, endpoints, ports)."""
    groups: dict[tuple, list[Obj]] = {}
    for pod in pods:
        groups.setdefault(pod_ports(service, pod), []).append(pod)
    if not groups:
        groups[()] = []  # the placeholder slice of a service with no endpoints
    name = service["metadata"]["name"]
    labels = {**(service["metadata"].get("labels") or {}), SERVICE_NAME: name,
              MANAGED_BY: CONTROLLER}
    slices = {}
    for ports, members in groups.items():
        digest = hashlib.sha1(json.dumps(ports).encode()).hexdigest()[:5]
        chunks = [members[i:i + max_endpoints]
                  for i in range(0, len(members), max_endpoints)] or [[]]
        for index, chunk in enumerate(chunks):
            slice_name = f"{name}-{digest}" + (f"-{index}" if index else "")
            slices[slice_name] = {
                "metadata": {"labels": labels},
                "addressType": "IPv4",
                "endpoints": [{
                    "addresses": [p["status"]["podIP"]],
                    "conditions": {"ready": _ready(p), "serving": _ready(p),
                                   "terminating": False},
                    "nodeName": p["spec"].get("nodeName"), "targetRef": _target_ref(p)}
                    for p in chunk],
                "ports": [{"name": n, "port": port, "protocol": proto}
                          for n, port, proto in ports],
            }
    return slices


def desired_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    groups: dict[tuple, list[Obj]] = {}
    for pod in pods:
        ports = pod_ports(service, pod)
        if ports:
            groups.setdefault(ports, []).append(pod)
    subsets = []
    for ports, members in groups.items():
        def address(p: Obj) -> Obj:
            return {"ip": p["status"]["podIP"], "nodeName": p["spec"].get("nodeName"),
                    "targetRef": _target_ref(p)}
        subset: Obj = {}
        ready = [address(p) for p in members if _ready(p)]
        not_ready = [address(p) for p in members if not _ready(p)]
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        subset["ports"] = [{"name": n, "port": port, "protocol": proto}
                           for n, port, proto in ports]
        subsets.append(subset)
    return subsets


class EndpointSliceController:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.dirty: set[tuple[str, str]] = set()
        self.wake = asyncio.Event()

    def on_event(self, rt, event: Event) -> None:
        if rt is SERVICES:
            meta = event.obj["metadata"]
            self.dirty.add((meta["namespace"], meta["name"]))
        elif rt is PODS:
            namespace = event.obj["metadata"]["namespace"]
            for service in self.backend.store.objects(SERVICES, namespace):
                selector = (service.get("spec") or {}).get("selector")
                if _selects(selector, event.obj) or _selects(selector, event.old):
                    self.dirty.add((namespace, service["metadata"]["name"]))
        else:
            return
        self.wake.set()

    def rescan(self) -> None:
        for service in self.backend.store.objects(SERVICES):
            self.dirty.add((service["metadata"]["namespace"], service["metadata"]["name"]))
        self.wake.set()

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            # Coalesce bursts: a sync reads every pod of the namespace, so not once per event.
            await asyncio.sleep(SYNC_DELAY)
            self.wake.clear()
            batch, self.dirty = self.dirty, set()
            for namespace, name in sorted(batch):
                try:
                    self.sync(namespace, name)
                except Exception:
                    log.exception("endpoint sync of %s/%s failed", namespace, name)

    def sync(self, namespace: str, name: str) -> None:
        service = self.backend.store.get(SERVICES, namespace, name)
        selector = ((service or {}).get("spec") or {}).get("selector")
        if service is not None and not selector:
            return  # no selector: someone else manages its endpoints
        ours = {s["metadata"]["name"]: s for s in self.backend.store.objects(SLICES, namespace)
                if (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == name
                and (s["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER}
        if service is None or service["spec"].get("type") == "ExternalName":
            for slice_name in ours:
                self.backend.delete(SLICES, namespace, slice_name)
            self._delete_endpoints(namespace, name)
            return
        pods = [p for p in self.backend.store.objects(PODS, namespace)
                if _selects(selector, p) and (p.get("status") or {}).get("podIP")
                and p["status"].get("phase") not in ("Succeeded", "Failed")]
        owner = {"apiVersion": "v1", "kind": "Service", "name": name,
                 "uid": service["metadata"]["uid"], "controller": True,
                 "blockOwnerDeletion": True}
        wanted = desired_slices(service, pods)
        for slice_name, body in wanted.items():
            body["metadata"].update(name=slice_name, namespace=namespace,
                                    ownerReferences=[owner])
            self._put(SLICES, ours.get(slice_name), body)
        for slice_name in set(ours) - set(wanted):
            self.backend.delete(SLICES, namespace, slice_name)
        endpoints = {"metadata": {"name": name, "namespace": namespace, "labels": {
            **(service["metadata"].get("labels") or {}),
            ENDPOINTS_MANAGED_BY: "endpoint-controller"}}}
        subsets = desired_subsets(service, pods)
        if subsets:
            endpoints["subsets"] = subsets
        self._put(ENDPOINTS, self.backend.store.get(ENDPOINTS, namespace, name), endpoints)

    def _put(self, rt, current: Obj | None, body: Obj) -> None:
        if current is None:
            try:
                self.backend.create(rt, body["metadata"]["namespace"], body)
            except ApiError as e:  # the namespace is terminating or gone: nothing to keep
                log.debug("not creating %s: %s", body["metadata"]["name"], e.message)
            return
        merged = {**current, **{k: v for k, v in body.items() if k != "metadata"}}
        merged["metadata"] = {**current["metadata"], **body["metadata"]}
        if rt is ENDPOINTS and "subsets" not in body:
            merged.pop("subsets", None)
        self.backend.replace_internal(rt, merged)

    def _delete_endpoints(self, namespace: str, name: str) -> None:
        current = self.backend.store.get(ENDPOINTS, namespace, name)
        labels = ((current or {}).get("metadata") or {}).get("labels") or {}
        if labels.get(ENDPOINTS_MANAGED_BY) == "endpoint-controller":
            self.backend.delete(ENDPOINTS, namespace, name)

"""Node objects and the scheduler that binds pending pods to them.

Nodes are `node-1` ... `node-N`, Ready, with an InternalIP from the node CIDR. The scheduler
binds every unbound pod (any `schedulerName` of `default-scheduler`, honouring
`spec.nodeSelector`) to the next Ready, schedulable node, round-robin, through the same code
path as the `pods/binding` subresource.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from datetime import UTC, datetime

from emulators.kube.backend import Backend, now
from emulators.kube.resources import BY_KIND
from emulators.kube.routes import bind_pod
from emulators.kube.store import Event, Obj

log = logging.getLogger(__name__)
PODS, NODES, LEASES = BY_KIND["Pod"], BY_KIND["Node"], BY_KIND["Lease"]
NODE_LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.32.0"


def node_ips(count: int, cidr: str) -> dict[str, str]:
    """node-i → the (i+1)-th address of the CIDR (the first is left for a gateway)."""
    network = ipaddress.ip_network(cidr, strict=False)
    return {f"node-{i}": str(network.network_address + i + 1) for i in range(1, count + 1)}


def node_object(name: str, ip: str) -> Obj:
    condition = {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "kubelet is posting ready status", "lastHeartbeatTime": now(),
                 "lastTransitionTime": now()}
    return {
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64"}},
        "spec": {},
        "status": {
            "conditions": [condition],
            "addresses": [{"type": "InternalIP", "address": ip},
                          {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                         "osImage": "Ubuntu 24.04 LTS (ckm emulator)",
                         "kernelVersion": "6.8.0", "operatingSystem": "linux",
                         "architecture": "amd64",
                         "containerRuntimeVersion": "containerd://1.7.24",
                         "machineID": "", "systemUUID": "", "bootID": ""},
        },
    }


def ensure_nodes(backend: Backend, ips: dict[str, str]) -> None:
    """Create the Node objects and their heartbeat Leases (renewed once: nodes never die)."""
    for name, ip in ips.items():
        node = backend.store.get(NODES, "", name)
        if node is None:
            node = backend.create(NODES, None, node_object(name, ip))
        if backend.store.get(LEASES, NODE_LEASE_NAMESPACE, name) is None:
            owner = {"apiVersion": "v1", "kind": "Node", "name": name,
                     "uid": node["metadata"]["uid"]}
            renewed = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            backend.create(LEASES, NODE_LEASE_NAMESPACE, {
                "metadata": {"name": name, "ownerReferences": [owner]},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                         "renewTime": renewed}})


def _schedulable(node: Obj, selector: dict[str, str]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    labels = node["metadata"].get("labels") or {}
    matches = all(labels.get(k) == v for k, v in selector.items())
    return ready and matches and not (node.get("spec") or {}).get("unschedulable")


def needs_scheduling(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and not pod["metadata"].get("deletionTimestamp")
            and spec.get("schedulerName", "default-scheduler") == "default-scheduler")


class Scheduler:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.pending: set[tuple[str, str]] = set()
        self.wake = asyncio.Event()
        self._next = 0

    def on_event(self, rt, event: Event) -> None:
        if rt is NODES and event.type != "DELETED":
            self.rescan()  # a node became ready: pending pods may fit now
        elif rt is PODS and event.type != "DELETED" and needs_scheduling(event.obj):
            meta = event.obj["metadata"]
            self.pending.add((meta["namespace"], meta["name"]))
            self.wake.set()

    def rescan(self) -> None:
        for pod in self.backend.store.objects(PODS):
            if needs_scheduling(pod):
                self.pending.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        self.wake.set()

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.pending = self.pending, set()
            for namespace, name in sorted(batch):
                try:
                    self._schedule(namespace, name)
                except Exception:  # keep scheduling the others; a real scheduler would retry
                    log.exception("scheduling %s/%s failed", namespace, name)

    def _schedule(self, namespace: str, name: str) -> None:
        pod = self.backend.store.get(PODS, namespace, name)
        if pod is None or not needs_scheduling(pod):
            return
        selector = (pod.get("spec") or {}).get("nodeSelector") or {}
        nodes = [n for n in self.backend.store.objects(NODES) if _schedulable(n, selector)]
        if not nodes:
            return  # stays Pending until a node event rescans
        node = nodes[self._next % len(nodes)]
        self._next += 1
        bind_pod(self.backend, pod, node["metadata"]["name"])

"""The kubelets of all simulated nodes, with a CNI that waits for Contrail's port.

For every pod bound to one of our nodes and not yet started:

* hostNetwork pods start at once with the node's address;
* with a Contrail URL, the pod waits, like Contrail's CNI asking its vrouter, until the
  Contrail API has the pod's port (the interface of the virtual-machine whose uuid is the
  pod uid) and its instance-ip; then it starts with that address;
* without Contrail, it starts at once with the next address of `pod_cidr`.

Starting means what the real kubelet reports: phase Running, podIP/podIPs, hostIP/hostIPs,
startTime, the Ready/ContainersReady/Initialized/PodScheduled conditions and a running
status per container. Waiting pods are looked up together, two list calls per round (pods
due within the next 0.5 s join the round), and each pod backs off from `poll_interval` to
2 s while its port is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
from dataclasses import dataclass

import httpx

from emulators.kube.backend import Backend, now
from emulators.kube.resources import BY_KIND
from emulators.kube.store import Event, Obj

from .contrail import ContrailPorts

log = logging.getLogger(__name__)
PODS = BY_KIND["Pod"]
MAX_DELAY = 2.0
BATCH_WINDOW = 0.5


@dataclass
class Waiting:
    namespace: str
    name: str
    due: float = 0.0
    delay: float = 0.0


def _started(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return bool(status.get("podIP")) or status.get("phase") not in (None, "Pending")


def running_status(pod: Obj, pod_ip: str, host_ip: str) -> Obj:
    started = now()
    status = dict(pod.get("status") or {})
    conditions = {c["type"]: dict(c) for c in status.get("conditions") or []}  # never mutate
    for kind in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                 "PodScheduled"):
        conditions.setdefault(kind, {"type": kind, "status": "True", "lastProbeTime": None,
                                     "lastTransitionTime": started})
        conditions[kind]["status"] = "True"
    containers = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        digest = hashlib.sha256(f"{pod['metadata']['uid']}/{container['name']}".encode())
        containers.append({
            "name": container["name"], "image": container.get("image", ""),
            "imageID": f"{container.get('image', '')}@sha256:{digest.hexdigest()}",
            "containerID": f"containerd://{digest.hexdigest()}", "ready": True,
            "started": True, "restartCount": 0, "state": {"running": {"startedAt": started}}})
    status.update({"phase": "Running", "conditions": list(conditions.values()),
                   "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "podIP": pod_ip,
                   "podIPs": [{"ip": pod_ip}], "startTime": started,
                   "containerStatuses": containers})
    return status


class Kubelet:
    def __init__(self, backend: Backend, nodes: dict[str, str], ports: ContrailPorts | None,
                 *, pod_cidr: str, poll_interval: float) -> None:
        self.backend, self.nodes, self.ports = backend, nodes, ports
        self.poll_interval = poll_interval
        self.waiting: dict[str, Waiting] = {}
        self.wake = asyncio.Event()
        self._pod_hosts = ipaddress.ip_network(pod_cidr, strict=False).hosts()

    def on_event(self, rt, event: Event) -> None:
        if rt is not PODS:
            return
        uid = event.obj["metadata"]["uid"]
        if event.type == "DELETED":
            self.waiting.pop(uid, None)
        elif (event.obj.get("spec") or {}).get("nodeName") in self.nodes and not _started(
                event.obj) and uid not in self.waiting:
            meta = event.obj["metadata"]
            self.waiting[uid] = Waiting(meta["namespace"], meta["name"])
            self.wake.set()

    def rescan(self) -> None:
        taken = set()
        for pod in self.backend.store.objects(PODS):
            taken.add((pod.get("status") or {}).get("podIP"))
            self.on_event(PODS, Event(0, "ADDED", pod))
        # A restored cluster's running pods keep their addresses: never hand them out again.
        self._pod_hosts = (ip for ip in self._pod_hosts if str(ip) not in taken)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not any(w.due <= loop.time() for w in self.waiting.values()):
                soonest = min((w.due for w in self.waiting.values()), default=None)
                timeout = None if soonest is None else max(0.0, soonest - loop.time())
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout)
                continue
            # Take every pod due soon along, so that rounds coalesce instead of spreading out.
            horizon = loop.time() + BATCH_WINDOW
            due = [uid for uid, w in self.waiting.items() if w.due <= horizon]
            try:
                await self._round(due, loop.time())
            except Exception:
                log.exception("kubelet round failed")
                await asyncio.sleep(MAX_DELAY)

    async def _round(self, due: list[str], started: float) -> None:
        host_network = [u for u in due if self._host_network(u)]
        addresses = {u: self._node_ip(u) for u in host_network}
        others = [u for u in due if u not in addresses]
        if self.ports is None:
            addresses.update({u: str(next(self._pod_hosts)) for u in others})
        elif others:
            try:
                addresses.update(await self.ports.pod_addresses(others))
            except httpx.HTTPError as e:
                log.debug("contrail lookup failed: %s", e)
        for uid in due:
            waiting = self.waiting.get(uid)
            if waiting is None:
                continue  # deleted meanwhile
            if uid in addresses:
                self.waiting.pop(uid)
                self._start(uid, waiting, addresses[uid])
            else:
                waiting.delay = min(max(waiting.delay * 2, self.poll_interval), MAX_DELAY)
                waiting.due = started + waiting.delay

    def _pod(self, uid: str) -> Obj | None:
        waiting = self.waiting.get(uid)
        return waiting and self.backend.store.get(PODS, waiting.namespace, waiting.name)

    def _host_network(self, uid: str) -> bool:
        pod = self._pod(uid)
        return bool(pod and (pod.get("spec") or {}).get("hostNetwork"))

    def _node_ip(self, uid: str) -> str:
        pod = self._pod(uid) or {}
        return self.nodes.get((pod.get("spec") or {}).get("nodeName", ""), "")

    def _start(self, uid: str, waiting: Waiting, pod_ip: str) -> None:
        pod = self.backend.store.get(PODS, waiting.namespace, waiting.name)
        if pod is None or pod["metadata"]["uid"] != uid or _started(pod):
            return
        host_ip = self.nodes[pod["spec"]["nodeName"]]
        self.backend.replace_internal(PODS, {**pod, "status": running_status(pod, pod_ip,
                                                                              host_ip)})

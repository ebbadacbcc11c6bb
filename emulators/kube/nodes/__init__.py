"""The simulated node layer: nodes, scheduler, kubelets + CNI, vrouters, endpoint controllers.

All of it runs as tasks on the API server's own event loop and sees changes through the
store's listeners (synchronous callbacks that only mark work and wake a task), so it writes
through the same backend as clients do, with no locks and no HTTP round trip to itself.
Only the Contrail side goes over the network (`contrail.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from emulators.kube.backend import Backend
from emulators.kube.options import Options

from .cluster import Scheduler, ensure_nodes, node_ips
from .contrail import ContrailPorts
from .endpointslices import EndpointSliceController
from .kubelet import Kubelet

log = logging.getLogger(__name__)


class NodeLayer:
    def __init__(self, backend: Backend, options: Options) -> None:
        self.backend = backend
        self.nodes = node_ips(options.node_count, options.node_cidr)
        self.ports = ContrailPorts(options.contrail_url) if options.contrail_url else None
        self.scheduler = Scheduler(backend)
        self.kubelet = Kubelet(backend, self.nodes, self.ports, pod_cidr=options.pod_cidr,
                               poll_interval=options.cni_poll_interval)
        self.endpoints = EndpointSliceController(backend)
        self.vrouters_registered = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._parts = (self.scheduler, self.kubelet, self.endpoints)

    async def start(self) -> None:
        ensure_nodes(self.backend, self.nodes)
        for part in self._parts:
            self.backend.store.listeners.append(part.on_event)
            part.rescan()
            self._tasks.append(asyncio.create_task(part.run(), name=type(part).__name__))
        if self.ports is not None:
            self._tasks.append(asyncio.create_task(self._register_vrouters(), name="vrouters"))
        else:
            self.vrouters_registered.set()

    async def stop(self) -> None:
        for part in self._parts:
            with contextlib.suppress(ValueError):
                self.backend.store.listeners.remove(part.on_event)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.ports is not None:
            await self.ports.close()

    async def _register_vrouters(self) -> None:
        """One virtual-router per node, retried with backoff until Contrail answers."""
        pending, delay = dict(self.nodes), 0.2
        while pending:
            for name, ip in list(pending.items()):
                try:
                    await self.ports.register_vrouter(name, ip)
                    del pending[name]
                except httpx.HTTPError as e:
                    log.info("registering vrouter %s: %s (retrying)", name, e)
            if pending:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.vrouters_registered.set()

"""Optional state file so the emulated cluster survives a restart (as etcd does).

The objects and the resourceVersion counter are one JSON document, written whole to a temporary
file and renamed over the old one (a crash leaves the old or the new state, never half of
each). It is written at most every `flush_interval` seconds while something changed, and on
shutdown. On load the watch history starts empty at the saved resourceVersion, so a client
resuming an older watch gets 410 Expired and relists, as after a real API server restart with
a cold watch cache. Allocators (clusterIPs, nodePorts) are rebuilt from the Services.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

from emulators.kube.backend import Backend
from emulators.kube.ipam import AllocationError
from emulators.kube.resources import BY_KIND, RESOURCES

log = logging.getLogger(__name__)
VERSION = 1
CRASH_GAP = 1_000_000  # far more writes than a flush interval can lose


class StateFile:
    def __init__(self, path: str | Path, flush_interval: float = 0.5) -> None:
        self.path = Path(path)
        self.flush_interval = flush_interval
        self.dirty = False
        self._task: asyncio.Task | None = None

    def load_into(self, backend: Backend) -> bool:
        """Restore a saved cluster into an empty backend; False when there is none yet."""
        if not self.path.is_file():
            return False
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if data.get("version") != VERSION:
            raise ValueError(f"{self.path}: state file version {data.get('version')!r}, "
                             f"expected {VERSION}")
        store = backend.store
        by_key = {rt.key: rt for rt in RESOURCES}
        for key, objects in data["objects"].items():
            rt = by_key[key]
            for obj in objects:
                meta = obj["metadata"]
                store._objects.setdefault(rt.key, {}).setdefault(
                    meta.get("namespace", ""), {})[meta["name"]] = obj
        saved = int(data["resourceVersion"])
        store.rv = store.floor = saved if data.get("clean") else saved + CRASH_GAP
        self._reserve_allocations(backend)
        return True

    @staticmethod
    def _reserve_allocations(backend: Backend) -> None:
        for svc in backend.store.objects(BY_KIND["Service"]):
            spec = svc.get("spec") or {}
            for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
                if ip and ip != "None":
                    with contextlib.suppress(AllocationError):
                        backend.service_ips.reserve(ip)
            for port in spec.get("ports") or []:
                if port.get("nodePort"):
                    with contextlib.suppress(AllocationError):
                        backend.admission.node_ports.reserve(port["nodePort"])

    def attach(self, backend: Backend) -> None:
        self.backend = backend
        backend.store.listeners.append(lambda _rt, _event: self._changed())

    def _changed(self) -> None:
        self.dirty = True

    def _snapshot(self, clean: bool) -> dict:
        # stored objects are never mutated in place: a shallow copy of the lists is a
        # consistent snapshot, serialised off the event loop
        store = self.backend.store
        return {"version": VERSION, "resourceVersion": store.rv, "clean": clean,
                "objects": {rt.key: list(store.objects(rt)) for rt in RESOURCES
                            if store.count(rt)}}

    def _write(self, data: dict) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)

    def save(self, *, clean: bool = False) -> None:
        self.dirty = False
        try:
            self._write(self._snapshot(clean))
        except OSError:
            self.dirty = True  # try again at the next flush
            raise

    async def run(self) -> None:
        """Flush while the server runs; stopped (with a last, clean flush) by `stop`."""
        while True:
            await asyncio.sleep(self.flush_interval)
            if not self.dirty:
                continue
            self.dirty = False
            data = self._snapshot(clean=False)
            try:
                await asyncio.to_thread(self._write, data)
            except OSError as exc:  # a full disk must not stop the API server
                self.dirty = True
                log.warning("cannot save the emulator state to %s: %s", self.path, exc)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="state-file")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.save(clean=True)

"""The whole system in one test: Kubernetes emulator (with its node layer: scheduler, vrouters,
CNI, EndpointSlices) -> watcher thread -> Redis -> `ckm worker` processes -> Contrail emulator."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import kubernetes.client
import pytest

from tasks.fanout import APP_LABEL
from tests.helpers import wait_for  # noqa: F401  (re-exported for the e2e tests)
from watcher.main import Watcher
from workers.dispatch import enqueue
from workers.reconcilers import CLUSTER_KEY


@dataclass
class System:
    stack: object
    kube: object
    api: kubernetes.client.ApiClient
    watcher: Watcher
    watcher_thread: threading.Thread

    def stop_watcher(self) -> None:
        self.watcher.stop.set()
        self.watcher_thread.join(10)

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api)

    @property
    def net(self) -> kubernetes.client.NetworkingV1Api:
        return kubernetes.client.NetworkingV1Api(self.api)

    @property
    def contrail(self):
        return self.stack.context.contrail


@pytest.fixture
def make_system(celery_stack, kube_emulator_factory):
    started = []

    def make(*, nodes: int = 2, workers: int = 1, app_label: str = APP_LABEL,
             **worker_env) -> System:
        stack = celery_stack
        kube = kube_emulator_factory(contrail_url=stack.contrail_url, nodes=nodes)
        for _ in range(workers):
            stack.start_worker(CKM_KUBE_URL=kube.url, CKM_APP_LABEL=app_label, **worker_env)

        def push(keys, urgent):
            enqueue(stack.app, stack.context.queue, keys, urgent=urgent)

        watcher = Watcher(kube.api_client(), stack.context.store, push,
                          bootstrap_keys=[CLUSTER_KEY], lease_seconds=2, app_label=app_label)
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        started.append((watcher, thread))
        return System(stack, kube, kube.api_client(), watcher, thread)

    yield make
    for watcher, thread in started:
        watcher.stop.set()
        thread.join(10)


@pytest.fixture
def system(make_system) -> System:
    return make_system()

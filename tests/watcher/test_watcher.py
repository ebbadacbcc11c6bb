"""The watcher against the Kubernetes emulator through the official client: list, watch,
no-op filtering, 410 relists that turn vanished objects into deletes, and Lease failover."""

from __future__ import annotations

import threading
import time

import kubernetes.client
import pytest

from tests.helpers import wait_for
from watcher import metrics
from watcher.kubeapi import list_function
from watcher.main import Watcher
from watcher.reflector import Reflector
from watcher.store import DesiredStore

pytestmark = pytest.mark.integration




class Recorder:
    def __init__(self):
        self.calls: list[tuple[list[str], bool]] = []

    def __call__(self, keys, urgent):
        self.calls.append((list(keys), urgent))

    def sent(self, urgent=None):
        return [k for keys, u in self.calls if urgent in (None, u) for k in keys]


@pytest.fixture
def kube(kube_emulator_factory):
    handle = kube_emulator_factory()
    client = handle.api_client()
    yield handle, client
    client.close()


def namespace_body(name, annotations=None):
    return kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(
        name=name, annotations=annotations))


def start_reflector(client, store, recorder, kind="Namespace", **kw):
    reflector = Reflector(kind, list_function(client, kind), store, recorder, page_size=2, **kw)
    thread = threading.Thread(target=reflector.run, daemon=True)
    thread.start()
    return reflector, thread


def test_list_then_watch_fills_the_store_and_enqueues_keys(kube, redis_client):
    _, client = kube
    core = kubernetes.client.CoreV1Api(client)
    core.create_namespace(namespace_body("before"))
    store, recorder = DesiredStore(redis_client), Recorder()
    reflector, thread = start_reflector(client, store, recorder)
    try:
        wait_for(lambda: store.resource_version("Namespace"))
        # the initial list is paginated (page size 2) and complete
        assert {"/default", "/kube-system", "/before"} <= set(store.hashes("Namespace"))
        assert "namespace/before" in recorder.sent()
        core.create_namespace(namespace_body("after", {"opencontrail.org/isolation": "true"}))
        wait_for(lambda: store.get("Namespace", "", "after"))
        assert store.get("Namespace", "", "after")["annotations"] == {
            "opencontrail.org/isolation": "true"}
        count = len(recorder.calls)
        # an irrelevant change (a foreign annotation) enqueues nothing
        core.patch_namespace("after", {"metadata": {"annotations": {"team": "x"}}})
        core.patch_namespace("after", {"metadata": {"annotations": {
            "opencontrail.org/isolation": "false"}}})
        wait_for(lambda: len(recorder.calls) > count)  # (the store is written first)
        assert store.get("Namespace", "", "after")["annotations"] == {
            "opencontrail.org/isolation": "false"}
        assert recorder.calls[count:] == [(["namespace/after"], False)]
        core.delete_namespace("after")
        wait_for(lambda: recorder.calls[-1] == (["namespace/after"], True))  # urgent delete
        assert store.get("Namespace", "", "after") is None
        assert store.tombstone("Namespace", "", "after")["uid"]
    finally:
        reflector.close()
        thread.join(5)


def test_410_relist_turns_vanished_objects_into_deletes(kube, redis_client):
    handle, client = kube
    core = kubernetes.client.CoreV1Api(client)
    core.create_namespace(namespace_body("doomed"))
    store, recorder = DesiredStore(redis_client), Recorder()
    reflector, thread = start_reflector(client, store, recorder)
    wait_for(lambda: store.get("Namespace", "", "doomed"))
    reflector.close()
    thread.join(5)
    # while nobody watches: a delete, a create, and the history is compacted
    core.delete_namespace("doomed")
    core.create_namespace(namespace_body("newcomer"))
    wait_for(lambda: "doomed" not in [n.metadata.name for n in core.list_namespace().items])
    handle.admin("POST", "compact")
    gone_before = metrics.GONE.labels("Namespace")._value.get()
    recorder.calls.clear()
    reflector, thread = start_reflector(client, store, recorder)
    try:
        wait_for(lambda: store.get("Namespace", "", "newcomer"))
        wait_for(lambda: (["namespace/doomed"], True) in recorder.calls)
        assert store.get("Namespace", "", "doomed") is None
        assert metrics.GONE.labels("Namespace")._value.get() == gone_before + 1
        assert "namespace/newcomer" in recorder.sent(urgent=False)
    finally:
        reflector.close()
        thread.join(5)


def test_watch_reconnects_after_dropped_connections(kube, redis_client):
    handle, client = kube
    core = kubernetes.client.CoreV1Api(client)
    store, recorder = DesiredStore(redis_client), Recorder()
    reflector, thread = start_reflector(client, store, recorder)
    try:
        wait_for(lambda: store.resource_version("Namespace"))
        relists = metrics.RELISTS.labels("Namespace")._value.get()
        handle.admin("POST", "watches/drop")
        core.create_namespace(namespace_body("after-drop"))
        wait_for(lambda: store.get("Namespace", "", "after-drop"))
        assert metrics.RELISTS.labels("Namespace")._value.get() == relists  # resumed, no relist
    finally:
        reflector.close()
        thread.join(5)


def make_watcher(client, store, recorder, identity):
    return Watcher(client, store, recorder, bootstrap_keys=["cluster/bootstrap"],
                   identity=identity, lease_seconds=1, kinds=["Namespace"])


def test_a_standby_takes_over_the_lease_and_resumes(kube, redis_client):
    handle, client = kube
    core = kubernetes.client.CoreV1Api(client)
    store = DesiredStore(redis_client)
    first_rec, second_rec = Recorder(), Recorder()
    first = make_watcher(client, store, first_rec, "first")
    second = make_watcher(handle.api_client(), store, second_rec, "second")
    threads = [threading.Thread(target=w.run, daemon=True) for w in (first, second)]
    threads[0].start()
    wait_for(lambda: first.elector.leader and store.resource_version("Namespace"))
    threads[1].start()
    time.sleep(1.0)
    assert not second.elector.leader and second.ready()
    relists = metrics.RELISTS.labels("Namespace")._value.get()
    # the leader dies without releasing the lease
    first.elector.release = lambda: None
    first.stop.set()
    threads[0].join(5)
    wait_for(lambda: second.elector.leader, timeout=5)
    lease = kubernetes.client.CoordinationV1Api(client).read_namespaced_lease(
        "ckm-watcher", "kube-system")
    assert lease.spec.holder_identity == "second" and lease.spec.lease_transitions == 1
    core.create_namespace(namespace_body("under-new-leader"))
    wait_for(lambda: store.get("Namespace", "", "under-new-leader"))
    assert metrics.RELISTS.labels("Namespace")._value.get() == relists  # resumed, no relist
    assert second_rec.calls[0] == (["cluster/bootstrap"], True)
    second.stop.set()
    threads[1].join(5)

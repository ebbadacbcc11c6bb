"""The watcher under faults: a malformed object, replayed and reordered events, Redis losing
its data under a running watcher, a deposed leader that still writes, and Lease calls that
fail with errors other than API errors. Real emulator, real Redis."""

from __future__ import annotations

import threading

import kubernetes.client
import pytest
import urllib3

from tests.helpers import wait_for
from tests.watcher.test_watcher import Recorder, kube  # noqa: F401  (fixture)
from watcher import metrics
from watcher.kubeapi import list_function
from watcher.leader import LeaseElector
from watcher.main import Watcher
from watcher.reflector import Reflector
from watcher.store import CHANGED, STALE, DesiredStore, Fenced
from workers.gc import collect_garbage

pytestmark = pytest.mark.integration


def pod_body(name, labels=None):
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}


class BadObjects:
    def __init__(self):
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, kind, obj, exc):
        self.seen.append((kind, obj["metadata"]["name"], str(exc)))


def start(client, store, recorder, kind="Pod", **kw):
    reflector = Reflector(kind, list_function(client, kind), store, recorder, **kw)
    thread = threading.Thread(target=reflector.run, daemon=True)
    thread.start()
    return reflector, thread


def test_a_malformed_object_is_its_own_failure_and_the_stream_goes_on(kube, redis_client):  # noqa: F811
    """Issue 11, defect 0: a pod whose fan-out cannot be keyed (label `a/b`, which this
    emulator accepts) used to fail the whole Pod watch every 30 s and replay older states."""
    _, client = kube
    core = kubernetes.client.CoreV1Api(client)
    core.create_namespace({"metadata": {"name": "poison"}})
    store, recorder, bad = DesiredStore(redis_client), Recorder(), BadObjects()
    reflector, thread = start(client, store, recorder, on_bad_object=bad)
    try:
        wait_for(lambda: reflector.listed)
        relists = metrics.RELISTS.labels("Pod")._value.get()
        core.create_namespaced_pod("poison", pod_body("good-1"))
        core.create_namespaced_pod("poison", pod_body("bad", {"opencontrail.org/name": "a/b"}))
        # a key that is not a key: the object's failure, before anything is written (fed to
        # an idle reflector of its own: handle() belongs to one reflector thread)
        idle = Reflector("Pod", None, store, recorder, on_bad_object=bad)
        idle.handle({"type": "MODIFIED", "object": {
            "metadata": {"name": "x/y", "namespace": "poison", "resourceVersion": "1",
                         "uid": "u"}, "spec": {}}})
        core.create_namespaced_pod("poison", pod_body("good-2"))
        wait_for(lambda: store.get("Pod", "poison", "good-2"), what="the pod after the bad one")
        assert ("Pod", "x/y") in [(k, n) for k, n, _ in bad.seen]
        # the bad label is stored like any other: its port key reports the bad input
        assert store.get("Pod", "poison", "bad")["labels"] == {"opencontrail.org/name": "a/b"}
        assert "port/poison/bad" in recorder.sent()
        assert not any(k.startswith("appnet/poison/a") for k in recorder.sent())
        assert reflector.failing_since is None
        version = store.resource_version("Pod")
        core.delete_namespaced_pod("bad", "poison")
        wait_for(lambda: store.get("Pod", "poison", "bad") is None)
        assert int(store.resource_version("Pod")) > int(version)  # resumes past every event
        assert metrics.RELISTS.labels("Pod")._value.get() == relists  # no relist on the way
    finally:
        reflector.close()
        thread.join(5)


def test_the_store_refuses_an_older_state_of_an_object(redis_client):
    """Defects 0 and 8: a replayed event must never store an older projection."""
    store = DesiredStore(redis_client)
    writer = store.writer("Pod")
    writer.listed("100")
    assert writer.put("ns", "p", {"uid": "1", "node": "n1"}, object_rv="120",
                      resume_rv="120") == CHANGED
    assert writer.put("ns", "p", {"uid": "1", "node": ""}, object_rv="110",
                      resume_rv="110") == STALE
    assert store.get("Pod", "ns", "p")["node"] == "n1"
    assert store.resource_version("Pod") == "120"        # the resume point never goes back
    assert writer.delete("ns", "p", object_rv="130", resume_rv="130") == CHANGED
    assert writer.put("ns", "p", {"uid": "1", "node": "n1"}, object_rv="120") == STALE
    assert store.get("Pod", "ns", "p") is None
    store.forget_tombstone("Pod", "ns", "p")          # its cleanup ran: no per-object memory
    assert writer.put("ns", "q", {"uid": "2"}, object_rv="125", resume_rv="125") == STALE
    assert writer.put("ns", "p", {"uid": "1"}, object_rv="120", resume_rv="120") == STALE
    assert store.get("Pod", "ns", "p") is None        # a replay is refused by the resume point
    assert writer.put("ns", "q", {"uid": "2"}, object_rv="131", resume_rv="131") == CHANGED


def test_a_restarted_reflector_resumes_exactly_where_the_store_is(kube, redis_client):  # noqa: F811
    """Defect 8: the resume point is written with each event, so a restart replays nothing."""
    _, client = kube
    core = kubernetes.client.CoreV1Api(client)
    core.create_namespace({"metadata": {"name": "resume"}})
    store, recorder = DesiredStore(redis_client), Recorder()
    reflector, thread = start(client, store, recorder)
    wait_for(lambda: reflector.listed)
    for i in range(5):
        core.create_namespaced_pod("resume", pod_body(f"p{i}"))
    wait_for(lambda: store.get("Pod", "resume", "p4"))
    reflector.close()
    thread.join(5)
    recorder.calls.clear()
    again, thread = start(client, store, recorder)
    try:
        core.create_namespaced_pod("resume", pod_body("after"))
        wait_for(lambda: store.get("Pod", "resume", "after"))
        assert {k.split("/")[-1] for k in recorder.sent()} == {"after"}
    finally:
        again.close()
        thread.join(5)


def test_redis_losing_its_data_closes_gc_and_the_watcher_rebuilds_the_store(
        kube, redis_client, contrail_url, make_context):  # noqa: F811
    """Defect 1: after FLUSHALL (a restart without persistence) the running watcher relists,
    and until it has, the store is not complete: GC deletes nothing and no key runs."""
    _, client = kube
    core = kubernetes.client.CoreV1Api(client)
    core.create_namespace({"metadata": {"name": "flushed"}})
    core.create_namespaced_pod("flushed", pod_body("live"))
    context = make_context(contrail_url, complete=False)
    store = context.store
    watcher = Watcher(client, store, Recorder(), bootstrap_keys=[], lease_seconds=2)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: store.complete(), what="the first full list")
        assert store.get("Pod", "flushed", "live")
        # an owned VM of the live pod, that GC would delete if the store looked empty
        uid = core.read_namespaced_pod("live", "flushed").metadata.uid
        context.contrail.create("virtual-machine", {"uuid": uid, "fq_name": [f"vm-{uid}"],
                                                    "annotations": {"key_value_pair": [
            {"key": "owner", "value": "k8s"}, {"key": "cluster", "value": "k8s"},
            {"key": "kind", "value": "Pod"}, {"key": "namespace", "value": "flushed"},
            {"key": "name", "value": "live"}, {"key": "k8s_uid", "value": uid}]}})
        redis_client.flushdb()
        assert not store.complete()
        assert collect_garbage(context.contrail, store, "k8s", live_peers=set(),
                               hand_over=lambda *_: None) == []
        wait_for(lambda: store.complete() and store.get("Pod", "flushed", "live"),
                 timeout=20, what="the store rebuilt")
        assert collect_garbage(context.contrail, store, "k8s", live_peers=set(),
                               hand_over=lambda *_: None) == []
        assert context.contrail.read("virtual-machine", uid)
    finally:
        watcher.stop.set()
        thread.join(10)


def test_a_deposed_leader_cannot_write_over_the_new_one(redis_client):
    """Defect 5: writes carry the leader's term; a newer term fences the older writer."""
    store = DesiredStore(redis_client)
    old = store.writer("Pod", term=store.claim_term())
    old.listed("10")
    new = store.writer("Pod", term=store.claim_term(), generation=old.generation)
    assert new.put("ns", "p", {"uid": "2"}, object_rv="12", resume_rv="12") == CHANGED
    with pytest.raises(Fenced):
        old.put("ns", "p", {"uid": "1"}, object_rv="11", resume_rv="11")
    with pytest.raises(Fenced):
        old.advance("11")
    assert store.get("Pod", "ns", "p") == {"uid": "2"} and store.resource_version("Pod") == "12"


class FlakyLeases:
    """A Lease API whose calls fail with transport errors (not ApiException) on demand."""

    def __init__(self, api):
        self.api, self.broken = api, False

    def __getattr__(self, name):
        call = getattr(self.api, name)

        def guarded(*args, **kwargs):
            if self.broken:
                raise urllib3.exceptions.ProtocolError("connection reset")
            return call(*args, **kwargs)
        return guarded


def test_the_elector_survives_transport_errors_and_steps_down_in_time(kube):  # noqa: F811
    """Defect 5: errors other than ApiException escaped the leader loop and killed the
    process; now a leader keeps its lease through a blip and steps down before it expires."""
    _, client = kube
    api = FlakyLeases(kubernetes.client.CoordinationV1Api(client))
    elector = LeaseElector(api, namespace="default", name="flaky", identity="a",
                           lease_seconds=3)
    assert elector.step()
    api.broken = True
    assert elector.step()                           # a blip: still within the renew deadline
    wait_for(lambda: not elector.step(), timeout=5, what="stepping down")
    api.broken = False
    assert elector.step()


def test_a_store_that_went_back_in_time_is_relisted_and_not_complete(redis_client):
    """Review finding: after a failover to a lagging replica the generation keys exist but
    are older; the store must not be (re)marked complete and the kind must relist."""
    store = DesiredStore(redis_client)
    reflector = Reflector("Pod", None, store, Recorder())
    reflector.writer.listed("10")
    reflector.listed = True
    held = reflector.writer.generation
    assert store.mark_complete({"Pod": held}) and store.complete()
    redis_client.delete("ckm:store:complete")
    redis_client.set("ckm:gen:Pod", str(int(held) - 3))          # an older snapshot
    assert not store.mark_complete({"Pod": held}) and not store.complete()
    reflector.verify_store()
    assert not reflector.listed                                   # it relists


def test_only_tombstones_a_cleanup_reads_are_kept(redis_client):
    """EndpointSlice and Node tombstones had no reader and piled up with churn (and each
    resync re-enqueued them); a namespace's tombstone stays for its cleanup key."""
    store = DesiredStore(redis_client)
    store.put("EndpointSlice", "ns", "svc-abc", {"uid": "1", "labels": {}, "service": "svc",
                                                 "ports": [], "endpoints": []})
    store.put("Namespace", "", "ns", {"uid": "2", "labels": {}, "annotations": {}})
    for kind, namespace, name in (("EndpointSlice", "ns", "svc-abc"), ("Namespace", "", "ns")):
        Reflector(kind, None, store, Recorder()).remove(namespace, name, rv="7")
    assert store.tombstones("EndpointSlice") == []
    assert store.tombstones("Namespace") == [("", "ns")]
    assert redis_client.hlen("ckm:orv:EndpointSlice") == 0

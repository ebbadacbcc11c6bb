"""The engine under faults: lost messages, a watcher that died between its store write and
its enqueue, a run that lost its lease, dead workers' keys past max_attempts, the resync lock,
and huge attempt counts. Real Redis; real worker processes where a worker is involved."""

from __future__ import annotations

import json
import random
import time

import pytest

from tests.helpers import wait_for
from watcher.store import COMPLETE
from workers import (
    fencing,
    metrics,
    reconcilers,  # noqa: F401  (registers the syncs)
)
from workers.backoff import delay
from workers.engine import run_key
from workers.queue import KeyQueue
from workers.resync import LOCK, resync
from workers.sweeper import Sweeper
from workers.syncs import SYNCS, register

pytestmark = pytest.mark.integration


def ran(context, key) -> bool:
    return any(json.loads(e)["key"] == key and json.loads(e)["outcome"] == "done"
               for e in context.redis.lrange("ckm:runs", 0, -1))


def test_a_key_whose_message_was_lost_runs_within_seconds(celery_stack):
    """Defect 4a: a key marked queued whose Celery message never arrived absorbed every
    later enqueue for 30 minutes."""
    celery_stack.start_worker(CKM_RESEND_SECONDS="0.5")
    queue = KeyQueue(celery_stack.context.redis, resend_ms=500)  # the workers' setting
    assert queue.enqueue(["cluster/bootstrap"]) == ["cluster/bootstrap"]  # ... never sent
    assert celery_stack.enqueue(["cluster/bootstrap"]) == 0                # absorbed
    started = time.monotonic()
    wait_for(lambda: ran(celery_stack.context, "cluster/bootstrap"), timeout=20,
             what="the lost key's run")
    assert time.monotonic() - started < 15
    celery_stack.wait_idle()


def test_keys_a_watcher_stored_but_never_enqueued_are_sent_by_the_sweeper(celery_stack):
    """Defect 4b: the store write and the enqueue are one step; a watcher that dies after
    the write leaves its keys in the outbox, and the workers' sweeper sends them."""
    celery_stack.start_worker()
    store = celery_stack.context.store
    celery_stack.enqueue(["cluster/bootstrap"])
    celery_stack.wait_idle()
    writer = store.writer("Namespace")
    writer.put("", "orphaned", {"uid": "u-1", "labels": {}, "annotations": {}},
               keys=["namespace/orphaned"], check=False)  # ... and the watcher dies here
    wait_for(lambda: ran(celery_stack.context, "namespace/orphaned"), timeout=20,
             what="the outbox key's run")
    assert celery_stack.context.redis.zcard("ckm:q:outbox") == 0


@pytest.fixture
def slow_sync():
    """A key kind whose run pauses between two Contrail writes, long enough to lose its
    lease to another run in the middle."""
    state = {"pause": 0.0, "writes": []}

    @register("slowtest", "ckm.test_slow", "ckm.namespace")
    def reconcile(ctx, key):
        ctx.contrail.list("project")                 # a call under the lease
        time.sleep(state["pause"])
        state["writes"].append(key.name)
        ctx.contrail.create("project", {"fq_name": ["default-domain", f"slow-{key.name}"],
                                        "parent_type": "domain"})

    yield state
    SYNCS.pop("slowtest", None)


def test_a_run_that_lost_its_lease_stops_before_its_next_write(make_context, contrail_url,
                                                                 slow_sync):
    """Defect 3: a run whose lease was taken over kept writing, and its late `finish` was
    ignored; now it is fenced before its next Contrail call and its ending changes nothing."""
    context = make_context(contrail_url, lease_seconds=0.3)
    slow_sync["pause"] = 0.6
    key = "slowtest/x"
    context.queue.enqueue([key])
    stale = metrics.STALE_FINISHES._value.get()

    def take_over():  # another worker, after this one's lease "expired"
        time.sleep(0.15)
        context.redis.hset("ckm:q:processing", key, "someone-else")

    import threading
    thief = threading.Thread(target=take_over)
    thief.start()
    outcome = run_key(context, key, lambda *_: None)
    thief.join()
    assert outcome == "fenced"
    assert not context.contrail.list("project", filters={"display_name": "slow-x"})
    assert metrics.STALE_FINISHES._value.get() == stale + 1
    assert context.failures.get(key) is None and context.failures.attempts(key) == 0
    assert context.redis.hget("ckm:q:processing", key) == "someone-else"


def test_the_fence_stops_a_run_that_could_not_renew_for_most_of_its_lease():
    run = fencing.Run("k", "t", safe_seconds=0.05)
    fencing.enter(run)
    try:
        fencing.check()
        time.sleep(0.06)
        with pytest.raises(fencing.LeaseLost):
            fencing.check()
    finally:
        fencing.enter(None)


def test_a_key_past_max_attempts_through_worker_loss_keeps_retrying(make_context, contrail_url):
    """Defect 6: a key whose worker died on its last allowed attempt became a permanent
    ("bad input") failure and was never retried."""
    context = make_context(contrail_url, lease_seconds=0.05, max_attempts=2)
    sent = []
    sweeper = Sweeper(context, lambda keys, lane=None: sent.extend(keys))
    key = "namespace/crashy"
    context.failures.attempt(key)                    # one ordinary failure before
    context.queue.enqueue([key])
    assert context.queue.begin(key, "dead-worker") == 1
    time.sleep(0.1)
    sweeper.sweep()
    failure = context.failures.get(key)
    assert failure is not None and not failure.permanent and failure.attempts == 2
    assert key in context.queue.delayed()           # and it is retried
    wait_for(lambda: (sweeper.sweep(), key in sent)[1], timeout=10)


def test_backoff_survives_huge_attempt_counts():
    """Defect 6: 2**1025 overflowed a float and skipped `finish`."""
    assert delay(5000, base=0.05, cap=300, rng=random.Random(1)) <= 300


def test_a_resync_never_deletes_another_resyncs_lock(celery_stack):
    context = celery_stack.context
    context.redis.set(LOCK, "someone-else", ex=60)
    assert resync(context, celery_stack.app) == {}   # refused: another resync runs
    assert context.redis.get(LOCK) == "someone-else"
    context.redis.delete(LOCK)
    resync(context, celery_stack.app, kinds=["Namespace"])
    assert context.redis.get(LOCK) is None


def test_no_key_runs_before_the_store_is_complete(make_context, contrail_url):
    context = make_context(contrail_url, complete=False)
    context.queue.enqueue(["cluster/bootstrap"])
    assert run_key(context, "cluster/bootstrap", lambda *_: None) == "store-incomplete"
    context.redis.set(COMPLETE, "1")
    assert wait_for(lambda: context.queue.due().send, timeout=5) == ["cluster/bootstrap"]
    assert run_key(context, "cluster/bootstrap", lambda *_: None) == "done"


def test_gc_stops_when_redis_loses_the_store_in_the_middle_of_its_pass(context):
    """Review finding: GC checked the store once, then read "gone" for every live object if
    Redis lost its data while it walked Contrail."""
    from workers.apply import AppliedSet  # noqa: F401  (the key GC hands peer groups to)
    from workers.gc import KINDS, collect_garbage

    context.queue.enqueue(["cluster/bootstrap"])
    run_key(context, "cluster/bootstrap", lambda *_: None)
    for kind in KINDS:
        context.store.writer(kind).listed("1")
    context.store.put("Namespace", "", "alive", {"uid": "u", "labels": {}, "annotations": {}})
    context.queue.enqueue(["namespace/alive"])
    assert run_key(context, "namespace/alive", lambda *_: None) == "done"
    owner = [{"key": "owner", "value": "k8s"}, {"key": "cluster", "value": "k8s"}]
    context.contrail.create("security-group", {
        "fq_name": ["default-domain", "k8s-default", "k8s-peer-zzzz"], "parent_type": "project",
        "annotations": {"key_value_pair": [*owner, {"key": "kind", "value": "NetworkPolicyPeer"},
                                           {"key": "namespace", "value": ""},
                                           {"key": "name", "value": "zzzz"}]}})
    live = context.contrail.list("project", filters={"display_name": "k8s-alive"})[0]["uuid"]

    def flush_midway(key, address):  # called while GC walks the security groups
        context.redis.flushdb()

    deleted = collect_garbage(context.contrail, context.store, "k8s", live_peers=set(),
                              hand_over=flush_midway)
    assert deleted == []
    assert context.contrail.read("project", live)


def test_a_run_ends_well_on_a_redis_that_lost_its_scripts(context):
    """A run's ending is one pipeline ending in a bare EVALSHA of the queue's finish script;
    a Redis that lost its scripts (restarted, SCRIPT FLUSH) must still release the key."""
    from workers.engine import LAST_RUN, RUNS

    context.queue.enqueue(["cluster/bootstrap"])
    context.redis.script_flush()
    assert run_key(context, "cluster/bootstrap", lambda *_: None) == "done"
    assert context.queue.depths().idle                       # released, nothing left
    assert context.redis.exists(LAST_RUN + "cluster/bootstrap") and context.redis.llen(RUNS)

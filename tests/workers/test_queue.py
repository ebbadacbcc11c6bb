"""The keyed queue's promises, against a real Redis (the Lua scripts run there)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.helpers import wait_for
from watcher.store import COMPLETE, URGENT_OUTBOX, DesiredStore
from workers.limits import BUCKET, ContrailGate
from workers.queue import BUSY, DUPLICATE, NORMAL, RESYNC, RUN, STORE_INCOMPLETE, URGENT, KeyQueue

pytestmark = pytest.mark.integration


def make_queue(redis_client, **options) -> KeyQueue:
    redis_client.set(COMPLETE, "1")  # as if the watcher had listed every kind
    return KeyQueue(redis_client, **options)


@pytest.fixture
def queue(redis_client):
    return make_queue(redis_client)


def nothing_due(due) -> bool:
    return not (due.send or due.expired or due.resend or due.outbox or due.urgent_outbox)


def test_a_key_queued_many_times_is_sent_once(queue):
    sent = []
    for _ in range(1000):
        sent += queue.enqueue(["namespace/a"])
    assert sent == ["namespace/a"]
    assert queue.depths().queued == 1
    assert queue.enqueue(["namespace/a", "namespace/b", "namespace/b"]) == ["namespace/b"]


def test_one_run_at_a_time_and_a_change_during_the_run_runs_again(queue):
    queue.enqueue(["namespace/a"])
    assert queue.begin("namespace/a", "t1") == RUN
    assert queue.enqueue(["namespace/a"]) == []       # running: marked dirty, not sent
    assert queue.begin("namespace/a", "t2") == DUPLICATE  # a second message: not queued
    assert queue.finish("namespace/a", "t1") == 1     # dirty -> send again now
    assert queue.depths().queued == 1
    assert queue.begin("namespace/a", "t3") == RUN
    assert queue.finish("namespace/a", "t3") == 0
    assert queue.depths().idle


def test_a_duplicate_message_runs_nothing(queue):
    """A resent or redelivered message of a key that already ran is dropped."""
    queue.enqueue(["namespace/a"])
    assert queue.begin("namespace/a", "t1") == RUN
    assert queue.finish("namespace/a", "t1") == 0
    assert queue.begin("namespace/a", "t2") == DUPLICATE
    assert queue.depths().idle


def test_a_queued_key_whose_message_arrives_while_another_run_holds_it_is_dirty(queue):
    queue.enqueue(["namespace/a"])
    assert queue.begin("namespace/a", "t1") == RUN
    queue.redis.zadd("ckm:q:queued", {"namespace/a": 0})  # e.g. an operator's retry
    assert queue.begin("namespace/a", "t2") == BUSY
    assert queue.finish("namespace/a", "t1") == 1


def test_a_key_whose_message_was_lost_is_sent_again_within_seconds(redis_client):
    queue = make_queue(redis_client, resend_ms=200)
    assert queue.enqueue(["namespace/a"], URGENT) == ["namespace/a"]  # ... message lost
    assert queue.enqueue(["namespace/a"]) == []                       # absorbed
    due = wait_for(lambda: queue.due().resend)
    assert due == [("namespace/a", URGENT)]                           # on its own lane
    assert queue.due().resend == []                                   # not again at once
    assert queue.begin("namespace/a", "t1") == RUN                    # the resent message
    assert queue.finish("namespace/a", "t1") == 0
    assert queue.begin("namespace/a", "t2") == DUPLICATE              # the lost one, late


def test_a_change_to_a_key_waiting_in_the_resync_lane_is_sent_on_its_own_lane(queue):
    assert queue.enqueue(["port/a/p"], RESYNC) == ["port/a/p"]
    assert queue.enqueue(["port/a/p"], RESYNC) == []
    assert queue.enqueue(["port/a/p"], URGENT) == ["port/a/p"]       # a delete overtakes it
    assert queue.enqueue(["port/a/p"], NORMAL) == []
    assert queue.begin("port/a/p", "t1") == RUN                      # whichever comes first
    queue.finish("port/a/p", "t1")
    assert queue.begin("port/a/p", "t2") == DUPLICATE


def test_no_key_runs_while_the_store_is_incomplete(redis_client):
    queue = KeyQueue(redis_client)
    queue.enqueue(["namespace/a"])
    assert queue.begin("namespace/a", "t1") == STORE_INCOMPLETE
    assert queue.depths().delayed == 1                  # it comes back in a second
    redis_client.set(COMPLETE, "1")
    assert wait_for(lambda: queue.due().send, timeout=5) == ["namespace/a"]
    assert queue.begin("namespace/a", "t2") == RUN


def test_keys_a_watcher_stored_but_did_not_enqueue_are_drained_from_the_outbox(queue):
    store = DesiredStore(queue.redis)
    writer = store.writer("Pod")
    writer.delete("ns", "gone", keys=["port/ns/gone"], check=False)  # nothing stored: no-op
    store.put("Pod", "ns", "p", {"uid": "1"})
    writer.delete("ns", "p", keys=["port/ns/p"], check=False)        # ... watcher dies here
    assert queue.redis.zrange(URGENT_OUTBOX, 0, -1) == ["port/ns/p"]
    assert queue.due(outbox_age_ms=60_000).urgent_outbox == []       # young: the watcher's
    assert queue.due(outbox_age_ms=0).urgent_outbox == ["port/ns/p"]
    assert queue.enqueue(["port/ns/p"], URGENT) == ["port/ns/p"]    # and enqueue empties it
    assert queue.redis.zcard(URGENT_OUTBOX) == 0


def test_a_retry_waits_in_the_delayed_set_until_due(queue):
    queue.enqueue(["namespace/a"])
    queue.begin("namespace/a", "t1")
    assert queue.finish("namespace/a", "t1", retry_in=0.2) == 0
    assert nothing_due(queue.due())
    assert set(queue.delayed()) == {"namespace/a"}
    send = wait_for(lambda: queue.due().send)
    assert send == ["namespace/a"] and queue.depths().delayed == 0


def test_a_change_cuts_a_pending_backoff_short(queue):
    queue.enqueue(["namespace/a"])
    queue.begin("namespace/a", "t1")
    queue.finish("namespace/a", "t1", retry_in=300)
    assert queue.enqueue(["namespace/a"]) == ["namespace/a"]
    assert queue.depths().delayed == 0


def test_a_dead_workers_lease_expires_and_the_key_is_handed_out_again(redis_client):
    queue = make_queue(redis_client, lease_ms=50)
    queue.enqueue(["namespace/a"])
    assert queue.begin("namespace/a", "dead-worker") == RUN
    expired = wait_for(lambda: queue.due().expired)
    assert expired == ["namespace/a"]
    queue.enqueue(["namespace/a"])
    assert queue.begin("namespace/a", "new-worker") == RUN
    # the dead run cannot release what it no longer holds
    assert queue.finish("namespace/a", "dead-worker") == -1
    assert queue.finish("namespace/a", "new-worker") == 0


def test_renewing_keeps_the_lease(redis_client):
    queue = make_queue(redis_client, lease_ms=100)
    queue.enqueue(["namespace/a"])
    queue.begin("namespace/a", "t1")
    for _ in range(5):
        time.sleep(0.04)
        assert queue.renew("namespace/a", "t1")
    assert nothing_due(queue.due())


def test_gate_never_exceeds_the_cluster_wide_cap(redis_client):
    gate = ContrailGate(redis_client, max_inflight=3)
    inside, peak, lock = [0], [0], threading.Lock()

    def call():
        for _ in range(20):
            with gate():
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.002)
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 3 and gate.peak() == 3 and gate.in_flight() == 0


def test_token_bucket_makes_callers_wait_when_empty(redis_client):
    gate = ContrailGate(redis_client, max_inflight=10, rate=1.0)
    take = gate._take
    assert take(keys=[BUCKET], args=[1.0, 1.0]) == 0
    assert take(keys=[BUCKET], args=[1.0, 1.0]) > 0


def test_a_hot_key_settles_and_absorbs_enqueues_meanwhile(redis_client):
    queue = make_queue(redis_client, settle_ms=150)
    queue.enqueue(["namespace/a"])
    queue.begin("namespace/a", "t1")
    queue.enqueue(["namespace/a"])                     # changed while running
    assert queue.finish("namespace/a", "t1") == 0      # not sent now: settling
    assert queue.enqueue(["namespace/a"]) == []        # absorbed
    assert not queue.depths().idle
    assert wait_for(lambda: queue.due().send) == ["namespace/a"]

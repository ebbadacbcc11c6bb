"""The keyed queue's promises, against a real Redis (the Lua scripts run there)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.helpers import wait_for
from workers.limits import BUCKET, ContrailGate
from workers.queue import KeyQueue

pytestmark = pytest.mark.integration


@pytest.fixture
def queue(redis_client):
    return KeyQueue(redis_client)




def test_a_key_queued_many_times_is_sent_once(queue):
    sent = []
    for _ in range(1000):
        sent += queue.enqueue(["namespace/a"])
    assert sent == ["namespace/a"]
    assert queue.depths().queued == 1
    assert queue.enqueue(["namespace/a", "namespace/b", "namespace/b"]) == ["namespace/b"]


def test_one_run_at_a_time_and_a_change_during_the_run_runs_again(queue):
    queue.enqueue(["namespace/a"])
    assert queue.begin("namespace/a", "t1")
    assert queue.enqueue(["namespace/a"]) == []       # running: marked dirty, not sent
    assert not queue.begin("namespace/a", "t2")       # a duplicate message: busy
    assert queue.finish("namespace/a", "t1") == 1     # dirty -> send again now
    assert queue.depths().queued == 1
    assert queue.begin("namespace/a", "t3")
    assert queue.finish("namespace/a", "t3") == 0
    assert queue.depths().idle


def test_a_retry_waits_in_the_delayed_set_until_due(queue):
    queue.enqueue(["namespace/a"])
    queue.begin("namespace/a", "t1")
    assert queue.finish("namespace/a", "t1", retry_in=0.2) == 0
    assert queue.due() == ([], [])
    assert set(queue.delayed()) == {"namespace/a"}
    send = wait_for(lambda: queue.due()[0])
    assert send == ["namespace/a"] and queue.depths().delayed == 0


def test_a_change_cuts_a_pending_backoff_short(queue):
    queue.enqueue(["namespace/a"])
    queue.begin("namespace/a", "t1")
    queue.finish("namespace/a", "t1", retry_in=300)
    assert queue.enqueue(["namespace/a"]) == ["namespace/a"]
    assert queue.depths().delayed == 0


def test_a_dead_workers_lease_expires_and_the_key_is_handed_out_again(redis_client):
    queue = KeyQueue(redis_client, lease_ms=50)
    queue.enqueue(["namespace/a"])
    assert queue.begin("namespace/a", "dead-worker")
    expired = wait_for(lambda: queue.due()[1])
    assert expired == ["namespace/a"]
    assert queue.begin("namespace/a", "new-worker")
    # the dead run cannot release what it no longer holds
    assert queue.finish("namespace/a", "dead-worker") == -1
    assert queue.finish("namespace/a", "new-worker") == 0


def test_renewing_keeps_the_lease(redis_client):
    queue = KeyQueue(redis_client, lease_ms=100)
    queue.begin("namespace/a", "t1")
    for _ in range(5):
        time.sleep(0.04)
        assert queue.renew("namespace/a", "t1")
    assert queue.due() == ([], [])


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
    queue = KeyQueue(redis_client, settle_ms=150)
    queue.enqueue(["namespace/a"])
    queue.begin("namespace/a", "t1")
    queue.enqueue(["namespace/a"])                     # changed while running
    assert queue.finish("namespace/a", "t1") == 0      # not sent now: settling
    assert queue.enqueue(["namespace/a"]) == []        # absorbed
    assert not queue.depths().idle
    assert wait_for(lambda: queue.due()[0]) == ["namespace/a"]

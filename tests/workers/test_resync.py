"""The paced resync pass: keys handed out as the resync lane drains, skipped when a live run
verified them already, and a pass that outlives the worker whose sweeper was handing it out."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import wait_for
from workers.engine import run_key
from workers.queue import RESYNCING, RUN
from workers.resync import DONE, LAST, PASS, advance, progress, resync
from workers.syncs import CLUSTER_KEY

pytestmark = pytest.mark.integration


def add_namespaces(context, count: int, prefix: str = "ns") -> list[str]:
    names = [f"{prefix}-{i:04d}" for i in range(count)]
    for name in names:
        context.store.put("Namespace", "", name, {"uid": f"uid-{name}", "labels": {},
                                                 "annotations": {}})
    return [f"namespace/{n}" for n in names]


def take_all(context, keys: list[str]) -> None:
    """What workers do with the messages: take each key and finish it."""
    for key in keys:
        token = uuid.uuid4().hex
        if context.queue.begin(key, token) == RUN:
            context.queue.finish(key, token)


def test_a_pass_hands_keys_out_as_the_resync_lane_drains(celery_stack):
    """Review finding (issue 15): a full resync put every key into one Lua call and one burst
    of messages, so live changes queued behind it and its backlog was resent in storms."""
    context = celery_stack.context
    keys = add_namespaces(context, 600)  # past the size Redis scans in one reply
    assert resync(context, celery_stack.app, kinds=["Namespace"]) == {"objects": 600}
    assert context.queue.resync_lane() == 0          # started, nothing handed out yet
    sent: list[str] = []
    fills = []
    while progress(context) is not None:
        for _ in range(10):  # hand out until the lane is full (or the pass has ended)
            if not advance(context, lambda ks, lane: sent.extend(ks), page=50, lane_low=100):
                break
            fills.append(context.queue.resync_lane())
        take_all(context, sorted(context.redis.smembers(RESYNCING)))  # the workers drain it
    assert set(sent) == set(keys)
    assert max(fills) <= 100 + 2 * 50, max(fills)  # never the whole backlog at once
    assert len(fills) > 5
    assert context.redis.get(LAST) and not context.redis.exists(PASS)


def test_a_pass_refuses_to_start_over_a_running_one(celery_stack):
    context = celery_stack.context
    add_namespaces(context, 3)
    assert resync(context, celery_stack.app, kinds=["Namespace"])
    assert resync(context, celery_stack.app) == {}             # the first one still runs
    assert progress(context)["kinds"] == "Namespace"


def test_a_full_pass_skips_keys_that_verified_since_it_began(celery_stack):
    context = celery_stack.context
    keys = add_namespaces(context, 4)

    def run(key):
        context.queue.enqueue([key])
        return run_key(context, key, lambda *_: None)

    for key in [CLUSTER_KEY, *keys]:
        assert run(key) == "done"
    started = resync(context, celery_stack.app)     # a new epoch: every key verifies again
    assert started["objects"] == 4
    assert run(keys[0]) == "done"                     # a live change, during the pass
    sent: list[str] = []
    while progress(context) is not None:
        advance(context, lambda ks, lane: sent.extend(ks))
        take_all(context, sent)
    assert sorted(sent) == sorted([CLUSTER_KEY, *keys[1:]])   # keys[0] verified already
    assert progress(context, DONE)["skipped"] == "1"


def test_a_pass_outlives_the_worker_handing_it_out(celery_stack):
    """Fault: the worker whose sweeper hands the pass out is killed (SIGKILL) in the middle;
    the next worker's sweeper goes on from the cursor and every key runs."""
    context = celery_stack.context
    keys = add_namespaces(context, 600)
    celery_stack.enqueue([CLUSTER_KEY])
    small = {"CKM_RESYNC_PAGE": 5, "CKM_RESYNC_LANE": 5}  # many steps, to die between
    first = celery_stack.start_worker(concurrency=2, **small)
    celery_stack.wait_idle(60)
    assert resync(context, celery_stack.app, kinds=["Namespace"]) == {"objects": 600}
    wait_for(lambda: int((progress(context) or {}).get("sent", 0)) > 0, 30, "keys handed out")
    celery_stack.kill(first)
    state = progress(context)
    assert state is not None and int(state["scanned"]) < 600, state   # died mid-pass
    celery_stack.start_worker(concurrency=4, **small)
    wait_for(lambda: progress(context) is None, 120, "the pass finished")
    celery_stack.wait_idle(120)
    assert context.failures.all() == []
    projects = {p["fq_name"][-1] for p in context.contrail.list("project")}
    assert {f"k8s-{k.split('/')[1]}" for k in keys} <= projects
    assert context.queue.resync_lane() == 0


# --- review findings ----------------------------------------------------------------------

def test_a_counted_key_no_longer_queued_does_not_stall_the_pass(context):
    """Review finding: keys counted on the resync lane but taken by a worker whose script did
    not uncount them (an older version during a rolling upgrade, a partial restore) made the
    lane read full for ever: the pass never ended, and no later pass (nor GC) started."""
    keys = add_namespaces(context, 1000)
    assert resync(context, None, kinds=["Namespace"]) == {"objects": 1000}
    sent: list[str] = []
    advance(context, lambda ks, lane: sent.extend(ks), page=10, lane_low=10)
    context.redis.sadd(RESYNCING, *[f"namespace/ghost-{i}" for i in range(10)])  # leftovers
    take_all(context, sorted(context.redis.smembers(RESYNCING)))
    for _ in range(300):
        if progress(context) is None:
            break
        advance(context, lambda ks, lane: sent.extend(ks), page=10, lane_low=10)
        take_all(context, sorted(context.redis.smembers(RESYNCING)))
    assert progress(context) is None and set(sent) == set(keys)


def test_a_slow_sweeper_cannot_take_the_pass_back(context):
    """Review finding: two sweepers can both lead for a moment; the slower one saved the
    position it started from over the one the faster had reached."""
    for kind in ("Namespace", "Ingress", "Service"):
        for i in range(3):
            context.store.put(kind, "" if kind == "Namespace" else "default", f"o{i}",
                              {"uid": f"u-{kind}-{i}", "labels": {}, "annotations": {}})
    assert resync(context, None, kinds=["Namespace", "Ingress", "Service"])
    positions = []

    def slow_send(keys, lane):  # the other sweeper runs while this one publishes
        if not positions:
            advance(context, lambda *_: None, page=1000, lane_low=1000, steps=4)
            positions.append(int(progress(context)["at"]))

    advance(context, slow_send, page=1, lane_low=1000, steps=1)
    positions.append(int(progress(context)["at"]))
    assert positions[1] >= positions[0] > 0, positions


def test_a_full_pass_hands_out_the_cluster_key_even_if_its_starter_died(context):
    """Review finding: the cluster key was enqueued beside the pass, so a starter that died
    after the epoch bump left the bootstrap objects unverified in that epoch."""
    from workers.apply import EPOCH
    from workers.resync import _START

    add_namespaces(context, 5)
    context.redis.register_script(_START)(            # what resync() does first, then dies
        keys=[PASS, "ckm:epoch", "ckm:verified"], args=[1, "Namespace", 5, "1.0", "cluster"])
    sent: list[str] = []
    while progress(context) is not None:
        advance(context, lambda ks, lane: sent.extend(ks))
        take_all(context, sent)
    assert sent[0] == CLUSTER_KEY and len(sent) == 6
    assert progress(context, DONE)["epoch"] == context.redis.get(EPOCH) == "1"


def test_a_pass_reads_everything_across_a_redis_restart(tmp_path):
    """Review finding, with a real Redis restarted from its snapshot: an HSCAN cursor is a
    position in one server process's table; resumed in the next process it skipped objects."""
    import subprocess

    import redis as redis_lib

    from config.settings import Settings
    from tests.fixtures.redis import _free_port
    from workers.context import Context

    port = _free_port()

    def start():
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir",
             str(tmp_path), "--save", "", "--appendonly", "no", "--dbfilename", "d.rdb"],
            stdout=subprocess.DEVNULL)
        wait_for(lambda: _pings(port), 10, "redis-server")
        return proc

    def _pings(p):
        try:
            return redis_lib.Redis(port=p).ping()
        except redis_lib.ConnectionError:
            return False

    proc = start()
    try:
        url = f"redis://127.0.0.1:{port}/0"
        context = Context(Settings(broker_url=url, contrail_urls=["http://127.0.0.1:9"]))
        keys = add_namespaces(context, 5000)
        assert resync(context, None, kinds=["Namespace"])
        sent: list[str] = []
        for _ in range(10):                               # half way through
            advance(context, lambda ks, lane: sent.extend(ks), page=250, lane_low=10**6,
                    steps=1)
        assert 0 < int(progress(context)["scanned"]) < 5000
        context.redis.save()
        proc.terminate()
        proc.wait()
        proc = start()                                    # same data, a new process
        context = Context(Settings(broker_url=url, contrail_urls=["http://127.0.0.1:9"]))
        while progress(context) is not None:
            advance(context, lambda ks, lane: sent.extend(ks), page=250, lane_low=10**6)
        assert set(sent) == set(keys), len(set(keys) - set(sent))
    finally:
        proc.terminate()
        proc.wait()

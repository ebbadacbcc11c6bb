"""A worker that stops consuming is noticed (issue 11, defect 11): its own verdict, /healthz,
and `ckm status`."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from tests.helpers import wait_for
from workers.liveness import WORKERS, ConsumerWatch, workers_seen

pytestmark = pytest.mark.integration


def test_stuck_means_free_threads_and_waiting_work_but_nothing_taken(context):
    watch = ConsumerWatch(context, "w1", concurrency=2, stuck_after=0.05)
    assert watch.judge()                              # nothing waiting: idle is fine
    context.redis.lpush("ckm.pod", "a message")
    time.sleep(0.06)
    assert not watch.judge()                          # work waits, threads free, none taken
    assert workers_seen(context)["w1"]["consuming"] is False
    watch._taken()
    assert watch.judge()                              # it took one
    watch._taken()
    time.sleep(0.06)
    assert watch.judge()                              # both threads busy: not stuck
    watch._done()
    assert not watch.judge()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_running_worker_reports_that_it_consumes(celery_stack):
    port = free_port()
    celery_stack.start_worker(CKM_METRICS_PORT=str(port))
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    heard = wait_for(lambda: celery_stack.context.redis.hgetall(WORKERS), timeout=20)
    assert all(json.loads(v)["consuming"] for v in heard.values())

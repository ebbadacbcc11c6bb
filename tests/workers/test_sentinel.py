"""Redis Sentinel: ckm's state and its Celery broker both follow the sentinels' master."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from config.settings import Settings
from workers import context as contexts
from workers.redis_conn import connect, sentinel_hosts

pytestmark = pytest.mark.integration


def free_port():
    from emulators.server import free_port as pick

    return pick()


@pytest.fixture
def sentinel(tmp_path):
    binary = shutil.which("redis-server")
    if not binary:
        pytest.fail("redis-server is needed (it also runs in Sentinel mode)")
    master, watch = free_port(), free_port()
    procs = [subprocess.Popen([binary, "--port", str(master), "--bind", "127.0.0.1",
                               "--save", "", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL)]
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {watch}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor ckm 127.0.0.1 {master} 1\n")
    procs.append(subprocess.Popen([binary, str(conf), "--sentinel"],
                                  stdout=subprocess.DEVNULL))
    url = f"sentinel://127.0.0.1:{watch}/2"
    deadline = time.monotonic() + 15
    while True:
        try:
            if connect(url, master="ckm").ping():
                break
        except Exception:
            assert time.monotonic() < deadline, "sentinel did not come up"
            time.sleep(0.1)
    yield url
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def test_sentinel_urls_are_parsed():
    assert sentinel_hosts("sentinel://a:1;sentinel://b:2/5") == ([("a", 1), ("b", 2)], 5)


def test_state_and_broker_through_sentinel(sentinel, contrail_url, tmp_path):
    settings = Settings(broker_url=sentinel, redis_sentinel_master="ckm",
                        contrail_urls=[contrail_url])
    context = contexts.Context(settings)
    context.store.mark_complete()  # no watcher here: the store counts as listed
    from celery import Celery

    from config.celeryconfig import celery_options
    from workers.dispatch import enqueue
    from workers.reconcilers import CLUSTER_KEY

    # a sender of its own: the module's app may hold connections to another test's broker
    app = Celery("ckm-sentinel-test")
    app.conf.update(celery_options(settings))
    env = {**os.environ, "CKM_BROKER_URL": sentinel, "CKM_REDIS_SENTINEL_MASTER": "ckm",
           "CKM_CONTRAIL_URLS": contrail_url, "CKM_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen([sys.executable, "-m", "ckm", "worker", "--concurrency", "2"],
                              env=env, stdout=open(tmp_path / "w.log", "w"),  # noqa: SIM115
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        enqueue(app, context.queue, [CLUSTER_KEY])
        deadline = time.monotonic() + 60
        # its own run, in the sentinel's database (another test may have made the network
        # in the shared Contrail emulator already)
        while not (context.redis.lrange("ckm:runs", 0, -1) and context.contrail.list(
                "virtual-network", filters={"display_name": "cluster-network"})):
            assert worker.poll() is None, (tmp_path / "w.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "w.log").read_text()
            time.sleep(0.2)
        assert context.redis.lrange("ckm:runs", 0, -1)  # the run log is in the sentinel's db
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(20)

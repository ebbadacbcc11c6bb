"""Operator experience: `ckm up` starts and stops cleanly, `ckm status --json`, every metrics
endpoint exposes its named series, Flower answers, and `ckm demo` passes on the stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.integration

WATCHER_SERIES = ("ckm_watch_events_total", "ckm_watch_relists_total",
                  'ckm_watch_gone_total{kind="Pod"} 0.0',  # at 0, not absent, until a 410
                  'ckm_watch_stream_errors_total{kind="NetworkPolicy"}',
                  "ckm_watch_last_event_timestamp_seconds", "ckm_watcher_leader",
                  'ckm_build_info{celery=')
WORKER_SERIES = ("ckm_reconciles_total", "ckm_reconcile_seconds", "ckm_sync_latency_seconds",
                 "ckm_contrail_calls_total", "ckm_contrail_call_seconds", "ckm_failed_syncs",
                 "ckm_queue_depth", "ckm_failed_syncs_by_reason", "ckm_workers_up 1.0",
                 "ckm_workers_consuming 1.0", 'ckm_build_info{celery=')


def ckm(*args, state_dir, check=True):
    result = subprocess.run([sys.executable, "-m", "ckm", *args], capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "CKM_STATE_DIR": str(state_dir)})
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_up_status_metrics_flower_demo_and_clean_stop(tmp_path):
    state = tmp_path / "state"
    up = subprocess.Popen([sys.executable, "-m", "ckm", "up", "--state-dir", str(state),
                           "--workers", "1", "--flower-port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)
    try:
        stack = wait_for(lambda: (state / "stack.json").is_file() and json.loads(
            (state / "stack.json").read_text()), timeout=90, what="stack.json")
        for key in ("kube_url", "contrail_url", "broker_url", "flower_url", "kubeconfig",
                    "metrics_urls"):
            assert stack[key], key
        status = json.loads(ckm("status", "--json", state_dir=state).stdout)
        assert status["contrail_healthy"] and status["failed"] == 0
        wait_for(lambda: json.loads(ckm("status", "--json", state_dir=state).stdout)["leader"],
                 what="a watcher leader")
        demo = ckm("demo", "--state-dir", str(state), state_dir=state)
        assert "demo passed" in demo.stdout and "16/16 checks" in demo.stdout
        # the leading watcher reports its streams every renew period (5 s here)
        status = wait_for(lambda: (s := json.loads(ckm("status", "--json", state_dir=state)
                                                   .stdout))["streams"]["Pod"]["events"] and s,
                          timeout=20, what="the Pod stream's events reported")
        assert set(status["streams"]) == {"Namespace", "Pod", "Service", "EndpointSlice",
                                          "Ingress", "NetworkPolicy", "Node"}
        pods = status["streams"]["Pod"]
        assert pods["healthy"] and pods["listed"] and not pods["error"]
        assert status["rates"]["runs"] > 0 and status["rates"]["done"] > 0
        assert [w["consuming"] for w in status["workers"].values()] == [True]
        table = ckm("status", state_dir=state).stdout
        assert "watch Pod" in table and "healthy" in table and "runs, last minute" in table
        for name, url in stack["metrics_urls"].items():
            for series in WATCHER_SERIES if name == "watcher" else WORKER_SERIES:
                wait_for(lambda u=url, s=series: s in httpx.get(u).text, timeout=10,
                         what=f"{series} on {name}")
        assert httpx.get(stack["flower_url"] + "/healthcheck").text == "OK"
        check_flower_and_failed_syncs(stack)
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    assert "stopping" in output and not (state / "stack.json").exists()
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""


def check_flower_and_failed_syncs(stack: dict) -> None:
    """Flower under the auth `ckm up` made: the ckm queues on the Broker page, a failed sync
    red with its key as argument, the retry through the REST API; the worker's /failed."""
    import kubernetes.client as k8s
    from kubernetes import config

    flower, auth = stack["flower_url"], tuple(
        Path(stack["flower_auth_file"]).read_text().split(":", 1))
    broker = httpx.get(flower + "/broker", auth=auth)
    assert broker.status_code == 200
    for queue in ("ckm.urgent", "ckm.pod", "ckm.namespace", "ckm.policy", "ckm.resync"):
        assert queue in broker.text, queue

    core = k8s.CoreV1Api(config.new_client_from_config(stack["kubeconfig"]))
    core.create_namespace({"metadata": {"name": "oops", "annotations": {
        "opencontrail.org/isolation": "ture"}}})
    worker = stack["metrics_urls"]["worker-0"].replace("/metrics", "/failed")
    failed = wait_for(lambda: [f for f in httpx.get(worker).json()
                               if f["key"] == "namespace/oops"], what="/failed lists it")
    assert "isolation" in failed[0]["error"] and failed[0]["retrying"] is False

    def runs(state: str | None = None) -> list[dict]:
        tasks = httpx.get(flower + "/api/tasks", auth=auth, params={
            "taskname": "ckm.sync_namespace", **({"state": state} if state else {})}).json()
        return [t for t in tasks.values() if "namespace/oops" in t["args"]]

    red = wait_for(lambda: runs("FAILURE"), what="the failed sync red in Flower")
    assert "BadInput" in red[0]["exception"]
    before = len(runs())

    apply = flower + "/api/task/async-apply/ckm.retry"
    assert httpx.post(apply, json={"args": ["namespace/oops"]}).status_code == 401
    sent = httpx.post(apply, json={"args": ["namespace/oops"]}, auth=auth)
    assert sent.status_code == 200, sent.text
    info = f"{flower}/api/task/info/{sent.json()['task-id']}"
    done = wait_for(lambda: (task := httpx.get(info, auth=auth).json()).get(
        "state") == "SUCCESS" and task, what="ckm.retry done")
    assert "'queued': ['namespace/oops']" in done["result"]
    wait_for(lambda: len(runs()) > before, what="the key ran again")
    core.delete_namespace("oops")


def test_up_with_a_taken_port_fails_at_once_naming_it(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "ckm", "up", "--state-dir", str(tmp_path / "s"),
             "--flower-port", str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"port {port} for Flower is already in use" in done.stdout
    assert "--flower-port 0" in done.stdout and "ckm is up" not in done.stdout
    assert not (tmp_path / "s" / "stack.json").exists()
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "s")], capture_output=True,
                              text=True)
    assert leftover.stdout.strip() == ""  # it started nothing


def test_up_restarts_a_killed_child_and_the_emulated_cluster_keeps_its_state(tmp_path):
    import kubernetes.client as k8s
    from kubernetes import config

    state, log = tmp_path / "state", (tmp_path / "up.out").open("w")
    up = subprocess.Popen([sys.executable, "-m", "ckm", "up", "--state-dir", str(state),
                           "--workers", "1", "--flower-port", "0"], stdout=log,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def output() -> str:
        return (tmp_path / "up.out").read_text()

    def child(pattern: str) -> int:
        found = subprocess.run(["pgrep", "-P", str(up.pid), "-f", pattern],
                               capture_output=True, text=True).stdout.split()
        return int(found[0]) if len(found) == 1 else 0

    def synced(namespace: str) -> bool:
        projects = httpx.get(stack["contrail_url"] + "/projects").json()["projects"]
        return any(p["fq_name"][-1] == f"k8s-{namespace}" for p in projects)

    try:
        stack = wait_for(lambda: (state / "stack.json").is_file() and json.loads(
            (state / "stack.json").read_text()), timeout=90, what="stack.json")
        assert "ready watcher" in output() and "ready flower" in output()
        core = k8s.CoreV1Api(config.new_client_from_config(stack["kubeconfig"]))
        core.create_namespace({"metadata": {"name": "before"}})
        wait_for(lambda: synced("before"), what="namespace before synced")
        time.sleep(1)  # the emulator writes its state file at most every 0.5 s

        worker, kube = child("worker0@"), child("emulate kube")
        assert worker and kube
        os.kill(worker, signal.SIGKILL)
        os.kill(kube, signal.SIGKILL)
        wait_for(lambda: "worker-0 restarted" in output() and "kube-emulator restarted"
                 in output(), timeout=30, what="both restarted")
        assert "worker-0 exited with code -9" in output()
        assert up.poll() is None  # the rest of the stack kept running

        def names() -> list[str] | None:
            try:
                return [n.metadata.name for n in core.list_namespace().items]
            except Exception:
                return None

        names = wait_for(names, what="the restarted emulator")
        assert "before" in names  # the cluster kept its state
        core.create_namespace({"metadata": {"name": "after"}})
        wait_for(lambda: synced("after"), timeout=60, what="namespace after synced")
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(timeout=60)
    assert up.returncode == 0, output()

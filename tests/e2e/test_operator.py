"""Operator experience: `ckm up` starts and stops cleanly, `ckm status --json`, every metrics
endpoint exposes its named series, Flower answers, and `ckm demo` passes on the stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.integration

WATCHER_SERIES = ("ckm_watch_events_total", "ckm_watch_relists_total", "ckm_watch_gone_total",
                  "ckm_watch_last_event_timestamp_seconds", "ckm_watcher_leader")
WORKER_SERIES = ("ckm_reconciles_total", "ckm_reconcile_seconds", "ckm_sync_latency_seconds",
                 "ckm_contrail_calls_total", "ckm_contrail_call_seconds", "ckm_failed_syncs",
                 "ckm_queue_depth")


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
        for name, url in stack["metrics_urls"].items():
            text = httpx.get(url).text
            for series in WATCHER_SERIES if name == "watcher" else WORKER_SERIES:
                assert series in text, (name, series)
        assert httpx.get(stack["flower_url"] + "/healthcheck").text == "OK"
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    assert "stopping" in output and not (state / "stack.json").exists()
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""

"""The benchmarks the docs quote still run end to end, at a small size (their numbers are
measured by hand, never asserted): a change to the engine's rules once left `ckm bench
policy` and `ckm bench engine` unable to run any key."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def bench(*args: str) -> object:
    done = subprocess.run([sys.executable, "-m", "ckm", "bench", *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_bench_policy_runs_every_phase():
    report = bench("policy", "--pods", "60", "--policies", "6", "--namespaces", "3")
    assert report["recompute_all_sgs_calls"] == 60      # one PUT per pod
    assert "sgs/ns01/p00007" in report["label_change_keys"]
    assert report["pod_added_keys"] >= 1


def test_bench_engine_runs_cold_and_resync():
    phases = bench("engine", "--namespaces", "20", "--workers", "1", "--json")
    assert [p["phase"] for p in phases] == ["cold", "resync"]


def test_bench_mixed_runs_every_phase_and_its_bound_writes_the_same_state(tmp_path):
    report = bench("mixed", "--scale", "0.01", "--churn", "5", "--services-changed", "2",
                   "--burst-seconds", "0.5", "--burst-rate", "10", "--out", str(tmp_path),
                   "--json")
    cold = report["cold"]
    assert cold["converged"] and cold["failed_syncs"] == 0
    assert cold["contrail_seen"]["loadbalancer-member"] >= 2 * 5  # 2 services, 5 backends
    bound = report["api_bound"]
    assert bound["errors"] == 0 and bound["objects_differing"] == 0
    for phase, count in (("churn", 5), ("service", 2), ("burst", 5)):
        assert (report[phase]["count"], report[phase]["lost"]) == (count, 0), phase
    assert report["serial"]["measured"]["converged"]
    assert set(report["memory"]) >= {"watcher_mb", "worker0_mb", "worker1_mb"}
    assert json.loads((tmp_path / "mixed.json").read_text())["scale"] == 0.01
    assert (tmp_path / "mixed.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

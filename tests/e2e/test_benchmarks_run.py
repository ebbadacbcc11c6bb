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

"""`python -m emulators.kube` (what `ckm emulate kube` runs) as a real process."""

import signal
import subprocess
import sys

import httpx
import pytest

from emulators.server import free_port
from tests.emulators.kube.helpers import wait_for


@pytest.mark.usefixtures("require_kubectl")
def test_cli_serves_and_writes_a_kubeconfig(tmp_path):
    port, kubeconfig = free_port(), tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.kube", "--port", str(port), "--nodes", "2",
         "--kubeconfig", str(kubeconfig)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == f"kubeconfig: {kubeconfig}"

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=10)
        nodes = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir",
                                str(tmp_path / "cache"), "get", "nodes", "-o", "name"],
                               capture_output=True, text=True, check=True).stdout
        assert nodes.split() == ["node/node-1", "node/node-2"]
    finally:
        process.send_signal(signal.SIGINT)
        # uvicorn shuts down cleanly, then re-raises the signal: 130 is Ctrl-C's exit status.
        assert process.wait(timeout=10) in (0, 130, -signal.SIGINT)

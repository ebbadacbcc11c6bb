"""`python -m emulators.kube` (what `ckm emulate kube` runs) as a real process."""

import json
import signal
import subprocess
import sys

import httpx
import pytest

from emulators.server import free_port
from tests.emulators.kube.helpers import wait_for


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.usefixtures("require_kubectl")
def test_cli_serves_and_writes_a_kubeconfig(tmp_path):
    port, kubeconfig = free_port(), tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.kube", "--port", str(port), "--nodes", "2",
         "--kubeconfig", str(kubeconfig)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == f"kubeconfig: {kubeconfig}"
        wait_for(lambda: healthy(port), timeout=10)
        nodes = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir",
                                str(tmp_path / "cache"), "get", "nodes", "-o", "name"],
                               capture_output=True, text=True, check=True).stdout
        assert nodes.split() == ["node/node-1", "node/node-2"]
    finally:
        process.send_signal(signal.SIGINT)
        # uvicorn shuts down cleanly, then re-raises the signal: 130 is Ctrl-C's exit status.
        assert process.wait(timeout=10) in (0, 130, -signal.SIGINT)


def _start(port: int, tmp_path, *extra: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.kube", "--port", str(port), "--kubeconfig",
         str(tmp_path / "kubeconfig"), "--state", str(tmp_path / "kube.json"), *extra],
        stdout=subprocess.DEVNULL)
    wait_for(lambda: healthy(port), timeout=10)
    return process


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_state_file_keeps_the_cluster_across_a_restart(tmp_path, stop):
    """As etcd does: objects, uids and resourceVersions survive; an old watch gets 410; no
    clusterIP is handed out twice."""
    import time

    import kubernetes.client as k8s
    from kubernetes import config

    port = free_port()
    process = _start(port, tmp_path)
    try:
        api = config.new_client_from_config(str(tmp_path / "kubeconfig"))
        core = k8s.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": "shop"}})
        svc = core.create_namespaced_service("shop", {
            "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
        before = core.list_namespace().metadata.resource_version
        time.sleep(1.2)  # a flush (every 0.5 s) has written it; SIGKILL loses only later writes
        late = core.create_namespace({"metadata": {"name": "late"}}).metadata.resource_version
    finally:
        process.send_signal(stop)
        process.wait(timeout=10)
    process = _start(port, tmp_path)
    try:
        api = config.new_client_from_config(str(tmp_path / "kubeconfig"))
        core = k8s.CoreV1Api(api)
        again = core.read_namespaced_service("web", "shop")
        assert again.metadata.uid == svc.metadata.uid
        assert again.spec.cluster_ip == svc.spec.cluster_ip
        names = {n.metadata.name for n in core.list_namespace().items}
        assert names >= {"default", "kube-system", "kube-public", "kube-node-lease", "shop"}
        if stop == signal.SIGTERM:  # a clean stop writes everything (a crash may lose it)
            assert "late" in names
        assert int(core.list_namespace().metadata.resource_version) >= int(before)
        # no version a client has seen is handed out again, even one whose write was lost
        assert int(core.create_namespace({"metadata": {"name": "after"}})
                   .metadata.resource_version) > int(late)
        other = core.create_namespaced_service("shop", {
            "metadata": {"name": "api"}, "spec": {"ports": [{"port": 80}]}})
        assert other.spec.cluster_ip not in (svc.spec.cluster_ip, "10.96.0.1")
        # the watch cache starts empty: resuming from before the restart is 410, as the real
        # server says it on a watch (an ERROR event)
        stream = core.list_namespace(watch=True, resource_version="1", timeout_seconds=1,
                                     _preload_content=False)
        first = json.loads(stream.read().splitlines()[0])
        assert (first["type"], first["object"]["code"]) == ("ERROR", 410)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)

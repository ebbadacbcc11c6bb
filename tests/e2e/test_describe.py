"""`ckm describe` on a healthy, a pending and a failed object (issue 14): through the watcher,
the workers and both emulators, with the official Kubernetes client making the objects."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from typer.testing import CliRunner

from ckm.cli import app
from tests.e2e.conftest import wait_for
from tests.e2e.test_translation import pod_body, running_ip

pytestmark = pytest.mark.integration


def describe(system, kind, name, *, text=False):
    stack = system.stack
    result = CliRunner().invoke(
        app, ["describe", kind, name, "--broker", stack.context.settings.broker_url,
              *([] if text else ["--json"])],
        env={"CKM_CONTRAIL_URLS": stack.contrail_url, "CKM_KUBE_URL": system.kube.url})
    assert result.exit_code == 0, result.output
    return result.output if text else json.loads(result.stdout)


def test_describe_a_healthy_a_pending_and_a_failed_object(system, tmp_path):
    core, stack = system.core, system.stack
    core.create_namespace({"metadata": {"name": "shop"}})
    core.create_namespaced_pod("shop", pod_body("web"))
    address = wait_for(lambda: running_ip(system, "shop", "web"), what="web Running")
    stack.wait_idle()
    healthy = describe(system, "pod", "shop/web")
    assert healthy["object"]["stored"] and healthy["object"]["node"]
    states = {k["key"]: k["state"] for k in healthy["keys"]}
    assert states == {"port/shop/web": "done", "fip/shop/web": "done", "sgs/shop/web": "done"}
    port = next(k for k in healthy["keys"] if k["key"] == "port/shop/web")
    assert port["last_run"]["outcome"] == "done"
    made = {o["type"]: o for o in healthy["contrail"]}
    assert {"virtual-machine", "virtual-machine-interface", "instance-ip"} <= set(made)
    assert made["instance-ip"]["address"] == address
    text = describe(system, "po", "shop/web", text=True)
    assert "Pod shop/web" in text and address in text

    # failed: bad input, with the reason and the Event kubectl shows
    core.create_namespace({"metadata": {"name": "typo", "annotations": {
        "opencontrail.org/isolation": "ture"}}})
    wait_for(lambda: stack.context.failures.get("namespace/typo"), what="a failed sync")
    failed = wait_for(lambda: (d := describe(system, "namespace", "typo")).get("events") and d,
                      what="its Event")
    (key,) = failed["keys"]
    assert key["state"] == "failed" and "ture" in key["failure"]["error"]
    assert key["failure"]["retrying"] is False
    assert any(e["reason"] == "ContrailSyncFailed" and "ture" in e["message"]
               for e in failed["events"])

    # the Event is complete (uid, apiVersion, resourceVersion) and repeats aggregate
    uid = core.read_namespace("typo").metadata.uid
    core.patch_namespace("typo", {"metadata": {"annotations": {
        "opencontrail.org/isolation": "maybe"}}})

    def twice():
        items = [e for e in core.list_namespaced_event("default").items
                 if e.involved_object.name == "typo"]
        return len(items) == 1 and items[0].count == 2 and items[0]
    event = wait_for(twice, what="one Event counted twice")
    assert event.involved_object.uid == uid and event.involved_object.api_version == "v1"
    assert event.involved_object.resource_version and "maybe" in event.message
    # and kubectl lists it (its table reads the times ckm wrote)
    shown = subprocess.run(["kubectl", "--server", system.kube.url, "--cache-dir",
                            str(tmp_path / "kube-cache"), "get", "events", "-n", "default"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "ContrailSyncFailed" in shown.stdout and "namespace/typo" in shown.stdout

    # pending: Contrail is down, so the new pod's port waits for its next attempt
    httpx.put(f"{stack.contrail_url}/_emulator/faults", json={"outage_seconds": 60})
    core.create_namespaced_pod("shop", pod_body("late"))

    def backoff():
        found = describe(system, "pod", "shop/late")
        port = next(k for k in found["keys"] if k["key"] == "port/shop/late")
        return port["state"] == "backoff" and port.get("last_run", {}).get(
            "outcome") == "error" and found
    pending = wait_for(backoff, timeout=30, what="the port key in backoff")
    port = next(k for k in pending["keys"] if k["key"] == "port/shop/late")
    assert port["next_attempt_in_seconds"] >= 0
    assert not pending["contrail"]  # nothing made yet
    httpx.put(f"{stack.contrail_url}/_emulator/faults", json={"outage_seconds": 0})

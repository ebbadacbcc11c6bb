"""The Kubernetes manifests (rendered by kubectl's kustomize) and the Grafana dashboard,
checked against the code: real commands, real settings, probes on declared ports, RBAC that
covers what ckm does, KEDA on real queues, dashboard queries on series ckm exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from prometheus_client import REGISTRY

import watcher.metrics  # noqa: F401  (registers the watcher's series)
import workers.metrics
from config.settings import Settings
from contrail import transport  # noqa: F401
from tests.unit.test_deployment import resolve
from workers import reconcilers  # noqa: F401  (registers every queue)
from workers.syncs import queues

ROOT = Path(__file__).resolve().parents[2]


def render(path: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is needed to render deploy/kubernetes (kustomize)")
    rendered = subprocess.run([kubectl, "kustomize", str(ROOT / path)],
                              capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(rendered) if d]


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    """The base: what `kubectl apply -k deploy/kubernetes` applies (no CRDs needed)."""
    return render("deploy/kubernetes")


@pytest.fixture(scope="module")
def keda_docs() -> list[dict]:
    return render("deploy/kubernetes/overlays/keda")


def of(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def test_every_document_is_well_formed(docs):
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == "ckm", doc["metadata"]["name"]


KUBERNETES = "1.32"  # the version kubectl and the emulator speak here
CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication"}  # KEDA CRDs: checked below


def test_every_document_validates_strictly_against_the_kubernetes_schema(docs, keda_docs):
    """The API's published JSON schema, with unknown fields rejected (a typo such as
    `periodSecond` in a probe is an error, as the API server would report it)."""
    errors = []
    for doc in docs + keda_docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: "
                          f"{str(exc).splitlines()[0]}")
    assert not errors, "\n".join(errors)
    assert {d["kind"] for d in docs} - CUSTOM_KINDS >= {
        "Deployment", "StatefulSet", "ClusterRole", "PodDisruptionBudget", "ConfigMap"}
    assert not {d["kind"] for d in docs} & CUSTOM_KINDS  # the base needs no CRD


def test_every_ckm_pod_runs_on_the_host_network_probed_bounded_and_locked_down(docs):
    """Issue 14: ckm gives pods their addresses, so its own pods (and its Redis) cannot wait
    for one; each container is probed, requests resources and runs unprivileged."""
    problems = []
    for workload in of(docs, "Deployment") + of(docs, "StatefulSet"):
        name, spec = workload["metadata"]["name"], workload["spec"]["template"]["spec"]
        if not spec.get("hostNetwork") or spec.get("dnsPolicy") != "ClusterFirstWithHostNet":
            problems.append(f"{name}: not on the host network (with cluster DNS)")
        pod = spec.get("securityContext") or {}
        if not pod.get("runAsNonRoot") or (pod.get("seccompProfile") or {}).get(
                "type") != "RuntimeDefault":
            problems.append(f"{name}: pod securityContext not non-root with RuntimeDefault")
        for container in spec["containers"]:
            where = f"{name}/{container['name']}"
            if not container.get("livenessProbe") and not container.get("readinessProbe"):
                problems.append(f"{where}: no probe")
            if not (container.get("resources") or {}).get("requests"):
                problems.append(f"{where}: no resource requests")
            locked = container.get("securityContext") or {}
            if (locked.get("allowPrivilegeEscalation") is not False
                    or locked.get("readOnlyRootFilesystem") is not True
                    or (locked.get("capabilities") or {}).get("drop") != ["ALL"]):
                problems.append(f"{where}: securityContext not locked down")
    workers = next(d for d in of(docs, "Deployment") if d["metadata"]["name"] == "ckm-worker")
    worker = workers["spec"]["template"]["spec"]["containers"][0]
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert not problems, "\n".join(problems)


def test_redis_has_a_password_every_component_uses_and_flower_needs_auth(docs):
    redis_spec = of(docs, "StatefulSet")[0]["spec"]["template"]["spec"]["containers"][0]
    assert "--requirepass" in " ".join(redis_spec["command"])
    config = of(docs, "ConfigMap")[0]["data"]
    assert "CKM_BROKER_URL" not in config  # set per container, with the password
    assert "ckm" in config["CKM_UNMANAGED_NAMESPACES"].split(",")
    for workload in of(docs, "Deployment"):
        container = workload["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container.get("env") or []}
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "REDIS_PASSWORD"
        assert env["CKM_BROKER_URL"]["value"].startswith("redis://:$(REDIS_PASSWORD)@")
        assert container["image"] == "ckm:latest"  # kustomize `images:` sets it
    flower = next(d for d in of(docs, "Deployment") if d["metadata"]["name"] == "ckm-flower")
    container = flower["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert "optional" not in env["CKM_FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]
    assert container["command"][container["command"].index("--address") + 1] == "127.0.0.1"
    assert not [s for s in of(docs, "Service") if s["spec"].get("type") in (
        "NodePort", "LoadBalancer")]


def test_workloads_run_real_commands_with_real_settings(docs):
    config = of(docs, "ConfigMap")[0]["data"]
    assert all(k[4:].lower() in Settings.model_fields for k in config)
    Settings(**{k[4:].lower(): v for k, v in config.items()})  # values are valid
    for workload in of(docs, "Deployment") + of(docs, "StatefulSet"):
        spec = workload["spec"]["template"]["spec"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for container in spec["containers"]:
            ports = {p["name"] for p in container.get("ports") or []}
            for probe in ("livenessProbe", "readinessProbe"):
                target = (container.get(probe) or {}).get("httpGet")
                if target:
                    assert target["port"] in ports
            if container["image"].startswith("ckm"):
                assert container["command"][0] == "ckm"
                resolve(container["command"][1:])
                for env in container.get("env") or []:
                    if env["name"] == "REDIS_PASSWORD":  # only expanded into the broker URL
                        continue
                    assert env["name"][4:].lower() in Settings.model_fields


def test_watchers_are_two_behind_a_lease_with_probes_and_budgets(docs):
    watcher = next(d for d in of(docs, "Deployment") if d["metadata"]["name"] == "ckm-watcher")
    assert watcher["spec"]["replicas"] == 2
    container = watcher["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    budgets = {d["metadata"]["name"] for d in of(docs, "PodDisruptionBudget")}
    assert budgets == {"ckm-watcher", "ckm-worker"}


def test_rbac_allows_what_ckm_does_and_no_more(docs):
    rules = of(docs, "ClusterRole")[0]["rules"]
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"]
               for r in rule["resources"] for v in rule["verbs"]}
    for group, resource in (("", "namespaces"), ("", "pods"), ("", "services"), ("", "nodes"),
                            ("discovery.k8s.io", "endpointslices"),
                            ("networking.k8s.io", "networkpolicies"),
                            ("networking.k8s.io", "ingresses")):
        assert {(group, resource, v) for v in ("list", "watch")} <= granted
    assert ("", "services/status", "patch") in granted
    assert ("networking.k8s.io", "ingresses/status", "patch") in granted
    assert ("", "events", "create") in granted
    assert not [g for g in granted if g[2] in ("delete", "deletecollection", "*")]
    lease = of(docs, "Role")[0]["rules"][0]
    assert lease["resources"] == ["leases"] and set(lease["verbs"]) == {"get", "create",
                                                                        "update"}


def test_keda_scales_the_workers_on_real_queues(keda_docs):
    scaled = of(keda_docs, "ScaledObject")[0]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "ckm-worker"
    auth = of(keda_docs, "TriggerAuthentication")[0]["metadata"]["name"]
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["metadata"]["listName"] in queues()
        assert trigger["authenticationRef"]["name"] == auth


def exported() -> set[str]:
    """Every series name ckm exports (the cluster-wide ones as their sweeper exports them)."""
    import watcher.health  # noqa: F401  (ckm_build_info)

    workers.metrics.CLUSTER.update(depths={"queued": 0}, failed_by_reason={"BadInput": 1},
                                   workers_up=1, workers_consuming=1)
    return {name for metric in REGISTRY.collect() for name in (
        metric.name, f"{metric.name}_total", f"{metric.name}_bucket", f"{metric.name}_info")}


def test_dashboard_queries_series_that_ckm_exports():
    dashboard = json.loads((ROOT / "deploy/grafana/ckm-dashboard.json").read_text())
    exported_names = exported()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\bckm_[a-z_]+", target["expr"]):
                assert name in exported_names, (panel["title"], name)


def test_alert_rules_watch_what_an_operator_must_know_on_real_series():
    rules = of(render("deploy/kubernetes/overlays/monitoring"), "PrometheusRule")[0]
    alerts = {rule["alert"]: rule for group in rules["spec"]["groups"]
              for rule in group["rules"]}
    assert set(alerts) >= {"CkmFailedSyncsGrowing", "CkmNoWorkerConsuming",
                           "CkmWatchStreamDown", "CkmSyncLatencyHigh"}
    names = exported()
    for name, rule in alerts.items():
        assert rule["for"] and rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        for series in re.findall(r"\bckm_[a-z_]+", rule["expr"]):
            assert series in names, (name, series)

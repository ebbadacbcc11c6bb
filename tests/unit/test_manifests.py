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
import workers.metrics  # noqa: F401
from config.settings import Settings
from contrail import transport  # noqa: F401
from tests.unit.test_deployment import resolve
from workers import reconcilers  # noqa: F401  (registers every queue)
from workers.syncs import queues

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is needed to render deploy/kubernetes (kustomize)")
    rendered = subprocess.run([kubectl, "kustomize", str(ROOT / "deploy/kubernetes")],
                              capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(rendered) if d]


def of(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def test_every_document_is_well_formed(docs):
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == "ckm", doc["metadata"]["name"]


KUBERNETES = "1.32"  # the version kubectl and the emulator speak here
CUSTOM_KINDS = {"ScaledObject"}  # KEDA's CRD: checked against the code below, not a schema


def test_every_document_validates_strictly_against_the_kubernetes_schema(docs):
    """The API's published JSON schema, with unknown fields rejected (a typo such as
    `periodSecond` in a probe is an error, as the API server would report it)."""
    errors = []
    for doc in docs:
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


def test_keda_scales_the_workers_on_real_queues(docs):
    scaled = of(docs, "ScaledObject")[0]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "ckm-worker"
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["metadata"]["listName"] in queues()


def test_dashboard_queries_series_that_ckm_exports():
    dashboard = json.loads((ROOT / "deploy/grafana/ckm-dashboard.json").read_text())
    exported = {name for metric in REGISTRY.collect() for name in (
        metric.name, f"{metric.name}_total", f"{metric.name}_bucket")}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\bckm_[a-z_]+", target["expr"]):
                assert name in exported, (panel["title"], name)

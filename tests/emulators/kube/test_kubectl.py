"""The real kubectl (v1.32) against the emulator, with default validation."""

import json
import re
import subprocess
import textwrap

import pytest

pytestmark = pytest.mark.usefixtures("require_kubectl")

MANIFEST = textwrap.dedent("""\
    apiVersion: v1
    kind: Namespace
    metadata:
      name: demo
      labels: {team: a}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: web-1, namespace: demo, labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{name: http, containerPort: 80}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: web-2, namespace: demo, labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{name: http, containerPort: 80}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: demo}
    spec:
      selector: {app: web}
      ports: [{name: http, port: 80, targetPort: http}]
    ---
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web-egress, namespace: demo}
    spec:
      podSelector: {matchLabels: {app: web}}
      egress: [{}]
    ---
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: web, namespace: demo}
    spec:
      rules:
      - host: web.example.com
        http:
          paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: web, port: {number: 80}}}
    """)


@pytest.fixture
def kubectl(kube_emulator, tmp_path):
    def run(*args: str, stdin: str | None = None) -> str:
        command = ["kubectl", "--kubeconfig", str(kube_emulator.kubeconfig),
                   "--cache-dir", str(tmp_path / "cache"), *args]
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
        return done.stdout
    return run


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()[1:]]


def test_apply_multi_document_yaml_twice(kubectl, tmp_path):
    manifest = tmp_path / "demo.yaml"
    manifest.write_text(MANIFEST)
    out = kubectl("apply", "-f", str(manifest))
    assert out.splitlines() == [
        "namespace/demo created", "pod/web-1 created", "pod/web-2 created",
        "service/web created", "networkpolicy.networking.k8s.io/web-egress created",
        "ingress.networking.k8s.io/web created"]
    assert "unchanged" in kubectl("apply", "-f", str(manifest)).splitlines()[1]
    # A changed manifest goes out as a three-way strategic merge patch.
    manifest.write_text(MANIFEST.replace("nginx:1.27", "nginx:1.28").replace(
        "{app: web}}\nspec:\n  containers", "{app: web, tier: front}}\nspec:\n  containers", 1))
    out = kubectl("apply", "-f", str(manifest))
    assert "pod/web-1 configured" in out and "pod/web-2 configured" in out
    pod = json.loads(kubectl("get", "pod", "web-1", "-n", "demo", "-o", "json"))
    assert pod["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert pod["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in pod["metadata"]["annotations"]
    policy = json.loads(kubectl("get", "netpol", "web-egress", "-n", "demo", "-o", "json"))
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_get_label_annotate_describe_delete(kubectl, tmp_path):
    kubectl("apply", "-f", "-", stdin=MANIFEST)
    wide = rows(kubectl("get", "pods", "-n", "demo", "-o", "wide"))
    assert [r[:3] for r in wide] == [["web-1", "0/1", "Pending"], ["web-2", "0/1", "Pending"]]
    assert wide[0][5:7] == ["<none>", "<none>"]  # IP, NODE
    namespaces = {r[0]: r[1] for r in rows(kubectl("get", "ns"))}
    assert namespaces["demo"] == "Active" and "kube-system" in namespaces
    services = rows(kubectl("get", "svc", "-A"))
    assert ["demo", "web", "ClusterIP", "10.96.0.2", "<none>", "80/TCP"] in [
        r[:6] for r in services]
    assert kubectl("label", "pod", "web-1", "-n", "demo", "color=blue").strip() == (
        "pod/web-1 labeled")
    assert kubectl("annotate", "pod", "web-1", "-n", "demo", "note=hello").strip() == (
        "pod/web-1 annotated")
    labelled = rows(kubectl("get", "pods", "-n", "demo", "-l", "color=blue", "--show-labels"))
    assert labelled[0][0] == "web-1" and "color=blue" in labelled[0][-1]
    described = kubectl("describe", "pod", "web-1", "-n", "demo")
    assert re.search(r"^Name:\s+web-1$", described, re.M)
    assert re.search(r"^Annotations:\s+note: hello$", described, re.M)
    assert re.search(r"^Status:\s+Pending$", described, re.M)
    assert "pod \"web-2\" deleted" in kubectl("delete", "pod", "web-2", "-n", "demo")
    assert [r[0] for r in rows(kubectl("get", "pods", "-n", "demo"))] == ["web-1"]
    kubectl("patch", "svc", "web", "-n", "demo", "-p", '{"spec":{"ports":[{"port":80,'
            '"name":"web"}]}}')
    assert "namespace \"demo\" deleted" in kubectl("delete", "ns", "demo")
    assert "demo" not in {r[0] for r in rows(kubectl("get", "ns"))}


def test_get_other_kinds(kubectl):
    kubectl("apply", "-f", "-", stdin=MANIFEST)
    assert rows(kubectl("get", "netpol", "-n", "demo"))[0][:2] == ["web-egress", "app=web"]
    assert rows(kubectl("get", "ing", "-n", "demo"))[0][:3] == ["web", "<none>",
                                                               "web.example.com"]
    assert rows(kubectl("get", "svc", "web", "-n", "demo", "-o", "wide"))[0][-1] == "app=web"
    assert kubectl("get", "nodes,leases,endpointslices,ingressclasses", "-A") == ""
    assert json.loads(kubectl("get", "pods", "-A", "-o", "json"))["kind"] == "List"

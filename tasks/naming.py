"""Deterministic names, uuids and owner annotations (contrail-model.md).

Every uuid is uuid5 of (cluster, Kubernetes kind, Kubernetes uid, role), so a retry, a second
worker or a restarted ckm finds the object it made before instead of making a twin, and a
delete can name every object a Kubernetes object could own without listing anything.
"""

from __future__ import annotations

import hashlib
import uuid

NAMESPACE = uuid.UUID("6f1d3c1e-9a0b-5a43-8f5e-2c6b7d0e4a11")  # ckm's own uuid5 namespace


def object_uuid(cluster: str, kind: str, k8s_uid: str, role: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{cluster}/{kind}/{k8s_uid}/{role}"))


def cluster_uuid(cluster: str, role: str) -> str:
    """For cluster-wide objects that no Kubernetes object owns (IPAMs, cluster-network)."""
    return str(uuid.uuid5(NAMESPACE, f"{cluster}/Cluster/{role}"))


def short_hash(text: str) -> str:
    """8 hex digits naming something whose natural name is too free-form (an ingress path)."""
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def project_name(cluster: str, namespace: str) -> str:
    return f"{cluster}-{namespace}"


def owner(cluster: str, kind: str, namespace: str = "", name: str = "",
          k8s_uid: str = "") -> dict[str, str]:
    """The annotations every object ckm creates carries; GC relies on them."""
    out = {"owner": "k8s", "cluster": cluster, "kind": kind, "namespace": namespace,
           "name": name}
    if k8s_uid:
        out["k8s_uid"] = k8s_uid
    return out

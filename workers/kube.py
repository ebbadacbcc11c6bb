"""What workers write back to Kubernetes: Events on objects that failed for bad input, and
`status.loadBalancer.ingress` of Services and Ingresses. Best effort: a Kubernetes API hiccup
must never fail a Contrail sync, and each write is skipped when nothing changed."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime

import kubernetes.client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("ckm.kube")

# key kind -> (Kubernetes kind, API version) of the object the key is about
KEY_OBJECTS = {
    "namespace": ("Namespace", "v1"), "port": ("Pod", "v1"), "fip": ("Pod", "v1"),
    "sgs": ("Pod", "v1"), "service": ("Service", "v1"), "members": ("Service", "v1"),
    "ingress": ("Ingress", "networking.k8s.io/v1"),
    "policy": ("NetworkPolicy", "networking.k8s.io/v1"),
}


def post_event(client: kubernetes.client.ApiClient, key_kind: str, namespace: str, name: str,
               message: str, *, reason: str = "ContrailSyncFailed", uid: str = "",
               resource_version: str = "") -> None:
    """A Warning Event on the object, complete enough for `kubectl describe` to list it (kind,
    apiVersion, uid, resourceVersion). Repeats are one Event whose count grows, as kubelet's
    recorder does: its name is derived from the object and the reason."""
    target = KEY_OBJECTS.get(key_kind)
    if target is None:
        return
    kind, version = target
    event_ns = namespace or "default"
    now = datetime.now(UTC).replace(microsecond=0)  # metav1.Time has whole seconds
    event_name = f"{name}.ckm-{hashlib.sha1(f'{kind}/{uid}/{reason}'.encode()).hexdigest()[:10]}"
    api = kubernetes.client.CoreV1Api(client)
    body = kubernetes.client.CoreV1Event(
        metadata=kubernetes.client.V1ObjectMeta(name=event_name, namespace=event_ns),
        involved_object=kubernetes.client.V1ObjectReference(
            kind=kind, api_version=version, name=name, namespace=namespace or None,
            uid=uid or None, resource_version=resource_version or None),
        reason=reason, message=message[:1024], type="Warning", count=1,
        first_timestamp=now, last_timestamp=now,
        source=kubernetes.client.V1EventSource(component="ckm"),
        reporting_component="ckm", reporting_instance="ckm")
    try:
        try:
            api.create_namespaced_event(event_ns, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            seen = api.read_namespaced_event(event_name, event_ns)
            api.patch_namespaced_event(event_name, event_ns, {
                "count": (seen.count or 1) + 1, "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "message": message[:1024],
                "involvedObject": {"resourceVersion": resource_version or None}})
    except ApiException as exc:
        log.info("could not post an event on %s %s/%s: %s", kind, namespace, name, exc.reason)


def write_lb_status(client: kubernetes.client.ApiClient, redis_client, kind: str,
                    namespace: str, name: str, addresses: list[str]) -> None:
    """Set status.loadBalancer.ingress to the addresses, unless already written."""
    memo = f"ckm:status:{kind}/{namespace}/{name}"
    wanted = json.dumps(sorted(addresses))
    if redis_client.get(memo) == wanted:
        return
    body = {"status": {"loadBalancer": {"ingress": [{"ip": a} for a in sorted(addresses)]}}}
    try:
        if kind == "Service":
            kubernetes.client.CoreV1Api(client).patch_namespaced_service_status(
                name, namespace, body)
        else:
            kubernetes.client.NetworkingV1Api(client).patch_namespaced_ingress_status(
                name, namespace, body)
    except ApiException as exc:
        if exc.status != 404:
            log.info("could not write the status of %s %s/%s: %s", kind, namespace, name,
                     exc.reason)
        return
    redis_client.set(memo, wanted, ex=86400)

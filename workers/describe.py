"""One Kubernetes object's sync, as `ckm describe` shows it: what ckm stored of it, each of its
keys' state (queued, running, backoff with the next attempt, failed with the reason, done),
each key's last run, the Contrail objects the keys made, and the Events about it."""

from __future__ import annotations

import json
from typing import Any

from tasks.fanout import own_keys, store_coordinates
from workers import queue as q
from workers.apply import AppliedSet
from workers.context import Context
from workers.engine import LAST_RUN

# what an operator types -> the Kubernetes kind
KINDS = {
    "pod": "Pod", "pods": "Pod", "po": "Pod",
    "service": "Service", "services": "Service", "svc": "Service",
    "namespace": "Namespace", "namespaces": "Namespace", "ns": "Namespace",
    "ingress": "Ingress", "ingresses": "Ingress", "ing": "Ingress",
    "networkpolicy": "NetworkPolicy", "networkpolicies": "NetworkPolicy",
    "netpol": "NetworkPolicy", "np": "NetworkPolicy",
}
LANES = {q.URGENT: "urgent", q.NORMAL: "normal", q.RESYNC: "resync"}


def key_state(context: Context, key: str) -> dict[str, Any]:
    """Where one key stands now, and how its last run ended."""
    r, now = context.redis, _now(context)
    pipe = r.pipeline(transaction=False)
    pipe.hget(q.PROCESSING, key).zscore(q.LEASES, key).zscore(q.QUEUED, key)
    pipe.hget(q.LANES, key).zscore(q.DELAYED, key).zscore(q.SETTLING, key)
    pipe.sismember(q.DIRTY, key).get(LAST_RUN + key)
    running, lease, queued, lane, delayed, settling, dirty, last = pipe.execute()
    failure = context.failures.get(key)
    out: dict[str, Any] = {"key": key}
    if running:
        out["state"] = "running"
        out["lease_left_seconds"] = round(max(0.0, (float(lease or 0) - now) / 1000), 1)
        out["again_after"] = bool(dirty)  # changed while running: runs again after
    elif queued is not None:
        out["state"] = "queued"
        out["lane"] = LANES.get(int(lane or q.NORMAL), str(lane))
    elif delayed is not None or settling is not None:
        out["state"] = "failed" if failure else "backoff"
        out["next_attempt_in_seconds"] = round(
            max(0.0, (float(delayed if delayed is not None else settling) - now) / 1000), 1)
    else:  # idle: nothing pending, and no run recorded in the last week
        out["state"] = "failed" if failure else "done" if last else "idle"
    if failure:
        out["failure"] = {"error": failure.error, "attempts": failure.attempts,
                          "since": failure.first_failed, "last": failure.last_failed,
                          "retrying": not failure.permanent}
    if last:
        out["last_run"] = json.loads(last)
    return out


def _now(context: Context) -> float:
    seconds, micros = context.redis.time()  # the queue's clock
    return seconds * 1000 + micros / 1000


def contrail_objects(context: Context, keys: list[str]) -> list[dict[str, Any]]:
    """The objects each key made (its memory of them), with their fq_name and, for an
    instance-ip, its address, read from Contrail."""
    out = []
    for key in keys:
        for (type_, uuid), _ in sorted(AppliedSet(context.redis, key).entries().items()):
            entry: dict[str, Any] = {"key": key, "type": type_, "uuid": uuid}
            try:
                obj = context.contrail.read(type_, uuid)
                entry["fq_name"] = ":".join(obj.get("fq_name") or [])
                if type_ == "instance-ip":
                    entry["address"] = obj.get("instance_ip_address")
            except Exception as exc:  # gone meanwhile, or Contrail unreachable: say so
                entry["error"] = f"{type(exc).__name__}: {exc}"[:200]
            out.append(entry)
    return out


def events(api_client, kind: str, namespace: str, name: str) -> list[dict[str, Any]]:
    """The Kubernetes Events about the object (as `kubectl describe` lists them)."""
    import kubernetes.client

    core = kubernetes.client.CoreV1Api(api_client)
    listed = core.list_namespaced_event(
        namespace or "default", field_selector=f"involvedObject.name={name}",
        _request_timeout=5).items
    return [{"type": e.type, "reason": e.reason, "count": e.count or 1,
             "last": (e.last_timestamp or e.event_time or e.first_timestamp).isoformat()
             if (e.last_timestamp or e.event_time or e.first_timestamp) else None,
             "message": e.message}
            for e in listed if (e.involved_object.kind or kind) == kind]


def describe(context: Context, kind: str, namespace: str, name: str, *,
             api_client=None) -> dict[str, Any]:
    kind, namespace, name = store_coordinates(kind, namespace, name)
    projection = context.store.get(kind, namespace, name)
    keys = own_keys(kind, namespace, name, projection, app_label=context.settings.app_label)
    out: dict[str, Any] = {
        "object": {"kind": kind, "namespace": namespace, "name": name,
                   "stored": projection is not None},
        "keys": [key_state(context, key) for key in keys],
        "contrail": contrail_objects(context, keys),
    }
    if projection is not None:
        out["object"].update({k: projection[k] for k in ("uid", "node", "labels")
                              if projection.get(k) not in (None, "", {})})
    if api_client is not None:
        try:
            out["events"] = events(api_client, kind, namespace, name)
        except Exception as exc:  # Kubernetes unreachable: the rest still helps
            out["events_error"] = f"{type(exc).__name__}: {exc}"[:200]
    return out

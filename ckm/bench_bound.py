"""The API bound of a benchmark: the same final Contrail state, written by a minimal client.

`copy_state` reads every object of one Contrail API server and writes the ones another lacks,
one create per object with its refs inline (parents and ref targets first, each level at
full concurrency), then one update per existing object whose refs differ. It makes only the
calls the state needs, with nothing to decide: no Kubernetes, no queue, no reads. Its time at
the server's concurrency cap is the floor for writing that state on this machine.
"""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import httpx

from contrail.client import ContrailClient
from contrail.errors import Conflict, NotFound
from contrail.transport import Transport

# Server-made fields: a create does not send them
SERVER_FIELDS = {"uuid", "href", "parent_href", "parent_uuid", "id_perms", "perms2", "name",
                 "security_group_id", "virtual_network_network_id",
                 "subnet_uuid"}  # the server makes subnet uuids: the address names the subnet


def resource_types(url: str) -> list[str]:
    """The resource types the server's home page lists."""
    links = httpx.get(url.rstrip("/") + "/", timeout=30).json()["links"]
    return sorted(link["link"]["name"] for link in links
                  if link["link"]["rel"] == "resource-base")


def _refs(obj: dict) -> dict[str, list[dict]]:
    return {k: v for k, v in obj.items() if k.endswith("_refs") and not k.endswith("_back_refs")}


def _body(obj: dict) -> dict:
    body = {k: v for k, v in obj.items() if k not in SERVER_FIELDS and not k.endswith("_refs")}
    body["uuid"] = obj["uuid"]  # ckm's uuids are deterministic: keep them
    for field, refs in _refs(obj).items():  # by name: the other server's uuids differ
        body[field] = [{"to": r["to"], **({"attr": r["attr"]} if r.get("attr") else {})}
                       for r in refs]
    return body


def _ref_names(obj: dict) -> dict[str, list]:
    return {f: sorted(tuple(r["to"]) for r in refs) for f, refs in _refs(obj).items()}


def read_state(client: ContrailClient, types: list[str]) -> dict[tuple[str, tuple], dict]:
    """Every object, by (type, fq_name)."""
    state = {}
    for type_ in types:
        try:
            objects = client.list(type_, detail=True)
        except NotFound:  # a type the server names but does not serve
            continue
        for obj in objects:
            state[(type_, tuple(obj["fq_name"]))] = obj
    return state


def _levels(missing: dict[tuple[str, tuple], dict]) -> tuple[list[list], set]:
    """Creation order: an object after its parent and the objects its refs name. A ref that
    closes a cycle (a project naming the IPAM it is the parent of) is deferred: returned as
    (object, target) pairs, to be set by an update once both exist."""
    by_name = defaultdict(list)
    for entry in missing:
        by_name[entry[1]].append(entry)
    depth: dict[tuple[str, tuple], int] = {}
    deferred: set[tuple] = set()
    on_path: set[tuple] = set()

    def parents(entry) -> list:
        return [e for e in by_name.get(entry[1][:-1], []) if e != entry] \
            if missing[entry].get("parent_type") else []

    def targets(entry) -> list:
        out = []
        for target in _ref_entries(missing[entry]):
            if target not in missing or target == entry:
                continue
            if target[1][:len(entry[1])] == entry[1]:  # its own descendant: after it
                deferred.add((entry, target))
            else:
                out.append(target)
        return out

    def level(entry) -> int:
        if entry in depth:
            return depth[entry]
        on_path.add(entry)
        needed = [level(p) for p in parents(entry) if p not in on_path]
        for target in targets(entry):
            if target in on_path:  # a cycle of refs: this one waits for the update
                deferred.add((entry, target))
            else:
                needed.append(level(target))
        on_path.discard(entry)
        depth[entry] = 1 + max(needed, default=-1)
        return depth[entry]

    for entry in missing:
        level(entry)
    grouped: dict[int, list] = defaultdict(list)
    for entry, d in depth.items():
        grouped[d].append(entry)
    return [grouped[d] for d in sorted(grouped)], deferred


def _ref_entries(obj: dict) -> list[tuple[str, tuple]]:
    return [(field.removesuffix("_refs").replace("_", "-"), tuple(r["to"]))
            for field, refs in _refs(obj).items() for r in refs]


def copy_state(source: dict[tuple[str, tuple], dict], target_url: str, *, threads: int,
               types: list[str]) -> dict:
    """Write `source`'s objects that the target lacks; returns calls, seconds, errors."""
    client = ContrailClient(Transport([target_url], retry_seconds=120))
    existing = read_state(client, types)
    missing = {k: v for k, v in source.items() if k not in existing}
    changed = [(k, v) for k, v in source.items()
               if k in existing and _ref_names(v) != _ref_names(existing[k])]
    errors: list[str] = []
    levels, deferred = _levels(missing)
    later = {entry for entry, _ in deferred}
    changed += [(entry, missing[entry]) for entry in later]

    def create(entry) -> None:
        type_, _ = entry
        body = _body(missing[entry])
        for field in [f for f in _refs(missing[entry]) if entry in later]:
            body.pop(field)  # all of its refs with the update, once their targets exist
        try:
            client.create(type_, body)
        except Conflict:
            pass  # made by the server itself (a default) meanwhile: already there
        except Exception as exc:  # reported, not fatal: the bound is a measurement
            errors.append(f"create {type_} {'/'.join(entry[1])}: {exc}")

    def update(item) -> None:
        (type_, _), obj = item
        fields = {f: _body(obj)[f] for f in _refs(obj)}
        try:
            client.update(type_, obj["uuid"] if item[0] in missing else
                          existing[item[0]]["uuid"], fields)
        except Exception as exc:
            errors.append(f"update {type_}: {exc}")

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for level in levels:
            list(pool.map(create, level))
        list(pool.map(update, changed))
    seconds = time.perf_counter() - started
    copied = read_state(client, types)  # the same objects and refs as the source?
    differ = sum(1 for k, v in source.items()
                 if k not in copied or _ref_names(v) != _ref_names(copied[k]))
    client.close()
    return {"seconds": round(seconds, 2), "calls": len(missing) + len(changed),
            "deferred_refs": len(deferred), "objects_differing": differ,
            "creates": len(missing), "updates": len(changed), "errors": len(errors),
            "first_errors": errors[:5]}

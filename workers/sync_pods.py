"""Pod keys: `port/ns/pod` (VM, VMI, instance-ip, vrouter link), `fip/ns/pod` (egress floating
IP) and `appnet/ns/app` (the app network, made with its first pod, removed with its last)."""

from __future__ import annotations

import contextlib

from contrail.ensure import Conflict, Taken, annotations_of, delete_if_exists
from contrail.errors import NotFound
from tasks import pod
from tasks.keys import Key
from tasks.outcomes import BadInput, NotReady
from workers import sync_policy  # attribute access at call time: the modules import each other
from workers.allocation import AllocationLock, MoveAbandoned
from workers.apply import Applied, AppliedSet, apply
from workers.context import Context
from workers.reconcilers import release_waiters, require, require_project
from workers.syncs import register
from workers.vrouters import unlink_vrouters

VROUTERS = "ckm:vrouters"  # node name -> virtual-router uuid (they never change)
PLACED = "ckm:placed"  # ns/pod -> the kind of network its port is on (app, isolated, cluster)
NEEDS_FIP = ("app", "isolated")


class AddressCannotMove(BadInput):
    """The pod's address cannot live on its new network: the pod stays where it is."""


class AddressLost(BadInput):
    """The address was taken during a move by an allocation outside ckm."""


def _pod(ctx: Context, key: Key) -> dict | None:
    projection = ctx.store.get("Pod", key.namespace, key.name)
    return projection if pod.managed(ctx.settings, key.namespace, projection) else None


def _placement(ctx: Context, key: Key, projection: dict) -> pod.Placement:
    ns = ctx.store.get("Namespace", "", key.namespace)
    if ns is None:
        raise NotReady(f"namespace {key.namespace!r} not seen yet")
    place = pod.placement(ctx.settings, key.namespace, projection, ns)
    require_project(ctx, key.namespace)
    if place.kind == "app":
        require(ctx, f"appnet/{key.namespace}/{place.app}", place.network,
                f"app network {place.app}-vn")
    elif place.kind == "isolated":
        require(ctx, f"namespace/{key.namespace}", place.network,
                f"isolated network {key.namespace}-vn")
    return place


@register("port", "ckm.sync_pod_port", "ckm.pod")
def sync_pod_port(ctx: Context, key: Key) -> None:
    """Create/update the pod's port: VM (uuid = pod uid), VMI, instance-ip, vrouter link."""
    projection = _pod(ctx, key)
    applied = AppliedSet(ctx.redis, str(key))
    link = f"ckm:vrlink:{key}"
    if projection is None:
        _unlink_vrouter(ctx, link)
        tomb = ctx.store.tombstone("Pod", key.namespace, key.name)
        if tomb and tomb.get("uid"):
            # found in Contrail, not in this key's memory, which may be incomplete (Redis
            # lost it, or a run died between making any one object and recording it)
            for address in _purge_incarnation(ctx, key, tomb["uid"]):
                applied.remove(address)
        _release_old_ports(ctx, key, applied, keep=None)  # older incarnations it knows
        apply(ctx.contrail, [], applied)
        AllocationLock(ctx.redis).end_move(str(key))  # a move it left unfinished
        ctx.redis.hdel(PLACED, f"{key.namespace}/{key.name}")
        ctx.store.forget_tombstone("Pod", key.namespace, key.name)
        return
    place = _placement(ctx, key, projection)
    groups, complete = sync_policy.pod_group_state(ctx, key.namespace, projection,
                                                   only_existing=True)
    objs = pod.port_objects(ctx.settings, key.namespace, key.name, projection, place, groups)
    if ctx.redis.get(link) and not ctx.redis.get(link).endswith(projection["uid"]):
        _unlink_vrouter(ctx, link)  # a new pod under the same name: its old VM goes
    port = next(o for o in objs if o.type == "virtual-machine-interface")
    _release_old_ports(ctx, key, applied, keep=port.uuid)
    fresh = port.address not in applied
    if fresh:
        # the groups it is born with, recorded before it exists: its sgs key, which waits
        # for the port, then never rewrites the same list
        sync_policy.remember(ctx, key.namespace, key.name, groups)
    result = _apply_port(ctx, key, projection, place, objs, port.uuid, applied,
                         moved_port=not fresh)
    placed = ctx.redis.hget(PLACED, f"{key.namespace}/{key.name}")
    if placed != place.kind:  # its egress floating IP follows where the port is
        ctx.redis.hset(PLACED, f"{key.namespace}/{key.name}", place.kind)
    if (placed != place.kind and (place.needs_fip or placed in NEEDS_FIP)) or (
            result.created and place.needs_fip):  # moved, or (re-)created
        ctx.enqueue([f"fip/{key.namespace}/{key.name}"])
    if fresh and port.uuid not in result.created:
        # it existed already (Redis lost this key's memory, or a run died between making it
        # and recording it): its groups are create-only, so unknown; its sgs key writes them
        sync_policy.forget(ctx, key.namespace, key.name)
        ctx.enqueue([f"sgs/{key.namespace}/{key.name}"])
    if port.uuid in result.created and not complete:
        ctx.enqueue([f"sgs/{key.namespace}/{key.name}"])  # the rest, once they are made
    release_waiters(ctx, str(key))  # its sgs key may have found the port missing
    _link_vrouter(ctx, link, projection["node"], projection["uid"])


def _apply_port(ctx: Context, key: Key, projection: dict, place: pod.Placement,
                objs: list, port_uuid: str, applied: AppliedSet, *, moved_port: bool):
    """Write the port. A new instance-ip on a port that holds one is a move to another
    network: it keeps the pod's address (Kubernetes fixed it for the pod's life), under the
    cluster-wide allocation lock, so no other allocation takes the address between the
    delete of the old instance-ip and the create of the new one. Any other new instance-ip
    takes a fresh address, sharing the lock."""
    iip, uid, lock = objs[-1], projection["uid"], AllocationLock(ctx.redis)
    kept = lock.kept(str(key), uid)
    if iip.address in applied:
        if kept:  # a run that died after finishing its move, before letting go
            lock.end_move(str(key))
        return _write(ctx, key, objs, applied)
    done = Applied()
    keep = kept.address if kept else None
    if keep is None and not moved_port:
        # a new port, or one whose memory Redis lost: the VM and port first (no address);
        # a port that existed may hold an address on another network
        done = _write(ctx, key, objs[:-1], applied)
        moved_port = port_uuid not in done.created
    old = _other_addresses(ctx, port_uuid, iip.uuid) if moved_port or keep else []
    if keep is None and old:
        keep = old[0][1]
    if keep is None:
        with lock.shared():
            return done.merge(_write(ctx, key, objs, applied))
    if why := pod.why_address_cannot_move(ctx.settings, keep, place):
        lock.end_move(str(key))
        raise AddressCannotMove(f"pod {key.namespace}/{key.name} stays on its network: {why}; "
                                "recreate the pod to move it")
    objs = [*objs[:-1], pod.instance_ip(ctx.settings, key.namespace, key.name, uid,
                                        place.network, keep)]
    try:
        lock.claim_move(str(key), uid, keep)
        for old_uuid, _ in old:  # found in Contrail: this key's memory may not know them
            delete_if_exists(ctx.contrail, "instance-ip", old_uuid)
            applied.remove(("instance-ip", old_uuid))
        result = done.merge(_write(ctx, key, objs, applied))
    except (Conflict, MoveAbandoned) as exc:  # the address was taken outside the lock
        lock.end_move(str(key))
        raise AddressLost(f"pod {key.namespace}/{key.name} lost its address {keep} moving to "
                          f"{place.network.fq_name[-1]}: {exc}; recreate the pod") from exc
    except BadInput:
        lock.end_move(str(key))
        raise
    lock.end_move(str(key))  # not on other errors: the retry finishes the move
    return result


def _write(ctx: Context, key: Key, objs: list, applied: AppliedSet):
    try:
        return apply(ctx.contrail, objs, applied)
    except Taken as exc:
        _purge_previous_pod(ctx, key, exc)
        return apply(ctx.contrail, objs, applied)


def _other_addresses(ctx: Context, port_uuid: str, new_iip: str) -> list[tuple[str, str]]:
    """(uuid, address) of the instance-ips the port holds on other networks; none when the
    new one is made already (the move is done)."""
    iips = ctx.contrail.list("instance-ip", back_ref_id=port_uuid,
                             fields=["instance_ip_address"])
    if any(i["uuid"] == new_iip for i in iips):
        return []
    return [(i["uuid"], i["instance_ip_address"]) for i in iips
            if i.get("instance_ip_address")]


def _link_vrouter(ctx: Context, link: str, node: str, vm_uuid: str) -> None:
    """virtual-router -> virtual-machine ref, once the node's vrouter has registered."""
    if ctx.redis.get(link) == f"{node}:{vm_uuid}":
        return
    vrouter = ctx.redis.hget(VROUTERS, node)
    if vrouter is None:
        try:
            vrouter = ctx.contrail.fq_name_to_id(
                "virtual-router", ["default-global-system-config", node])
        except NotFound:
            raise NotReady(f"the vrouter of node {node!r} has not registered yet") from None
        ctx.redis.hset(VROUTERS, node, vrouter)
    ctx.contrail.ref_update("virtual-router", vrouter, "virtual-machine", vm_uuid, "ADD")
    ctx.redis.set(link, f"{node}:{vm_uuid}")


def _unlink_vrouter(ctx: Context, link: str) -> None:
    """The ref must go before the VM can be deleted."""
    recorded = ctx.redis.get(link)
    if not recorded:
        return
    node, _, vm_uuid = recorded.partition(":")
    vrouter = ctx.redis.hget(VROUTERS, node)
    if vrouter:
        with contextlib.suppress(NotFound):
            ctx.contrail.ref_update("virtual-router", vrouter, "virtual-machine", vm_uuid,
                                    "DELETE")
    ctx.redis.delete(link)


def _release_old_ports(ctx: Context, key: Key, applied: AppliedSet, *,
                       keep: str | None) -> None:
    known = applied.entries()
    _release_ports(ctx, key, [uuid for type_, uuid in known
                              if type_ == "virtual-machine-interface" and uuid != keep])
    machine = None if keep is None else next(
        (uuid for type_, uuid in known if type_ == "virtual-machine"
         and pod.vmi_uuid(ctx.settings, uuid) == keep), None)
    for type_, uuid in known:
        if type_ == "virtual-machine" and uuid != machine:
            # read from the VM, not from the link memo: a run may have died between
            # linking it and writing the memo, and a linked VM cannot be deleted
            with contextlib.suppress(NotFound):
                unlink_vrouters(ctx.contrail, uuid)


def _release_ports(ctx: Context, key: Key, old: list[str]) -> None:
    """Before this key deletes a port it made (its pod is gone, or was re-created under the
    same name), it removes what other keys' objects refer to it by, itself: the old pod's
    egress floating IP goes (the fip key owns it, but waits for the *new* port: waiting on
    each other would deadlock) and a service's ECMP floating IP lets go of it (its members
    key no longer wants it; its memo of the refs is kept true, and it is enqueued to add the
    new port). Deletion order across keys is decided here, not discovered."""
    if not old:
        return
    fip_key = AppliedSet(ctx.redis, f"fip/{key.namespace}/{key.name}")
    for fip in ctx.contrail.list("floating-ip", back_ref_id=old, fields=["annotations"]):
        notes = annotations_of(fip)
        if (notes.get("owner"), notes.get("kind"), notes.get("namespace"),
                notes.get("name")) == ("k8s", "Pod", key.namespace, key.name):
            delete_if_exists(ctx.contrail, "floating-ip", fip["uuid"])
            fip_key.remove(("floating-ip", fip["uuid"]))
            continue
        for port in old:
            with contextlib.suppress(NotFound):
                ctx.contrail.ref_update("floating-ip", fip["uuid"],
                                        "virtual-machine-interface", port, "DELETE")
        # the members key diffs its ECMP refs against this memo: keep it true
        ctx.redis.srem(f"ckm:ecmp:{fip['uuid']}", *old)
        if notes.get("kind") == "Service":
            ctx.enqueue([f"members/{notes.get('namespace')}/{notes.get('name')}"])


def _purge_previous_pod(ctx: Context, key: Key, exc: Taken) -> None:
    """The pod was re-created under the same name while ckm was down: the old incarnation's
    objects (found by its VM's annotations) go, so the new ones can take their names."""
    notes = annotations_of(ctx.contrail.read("virtual-machine", exc.holder["uuid"]))
    if (notes.get("owner"), notes.get("cluster"), notes.get("kind"), notes.get("namespace"),
            notes.get("name")) != ("k8s", ctx.settings.cluster_name, "Pod", key.namespace,
                                   key.name):
        raise exc  # not ours: never delete somebody else's object
    _purge_incarnation(ctx, key, exc.holder["uuid"])


def _purge_incarnation(ctx: Context, key: Key, uid: str) -> list[tuple[str, str]]:
    """Delete the port objects of the pod incarnation `uid`, found by their deterministic
    uuids and back refs (no memory of this key needed), in dependency order; return their
    addresses."""
    port = pod.vmi_uuid(ctx.settings, uid)
    _release_ports(ctx, key, [port])
    gone = [("instance-ip", iip["uuid"])
            for iip in ctx.contrail.list("instance-ip", back_ref_id=port)]
    with contextlib.suppress(NotFound):  # no VM: nothing links to it
        unlink_vrouters(ctx.contrail, uid)
    gone += [("virtual-machine-interface", port), ("virtual-machine", uid)]
    for type_, uuid in gone:
        delete_if_exists(ctx.contrail, type_, uuid)
    return gone


@register("fip", "ckm.attach_fip", "ckm.pod")
def attach_fip(ctx: Context, key: Key) -> None:
    """The egress floating IP of a pod on an app or isolated network."""
    projection = _pod(ctx, key)
    applied = AppliedSet(ctx.redis, str(key))
    wanted = []
    if projection is not None:
        place = pod.placement(ctx.settings, key.namespace, projection,
                              ctx.store.get("Namespace", "", key.namespace))
        # where the port is, once its key has said so, not where it should be: a pod whose
        # move was refused keeps its floating IP
        if (ctx.redis.hget(PLACED, f"{key.namespace}/{key.name}") or place.kind) in NEEDS_FIP:
            port = pod.vmi(ctx.settings, key.namespace, key.name, projection["uid"],
                           place.network, ())
            require(ctx, f"port/{key.namespace}/{key.name}", port, "the pod's port")
            wanted = [pod.egress_fip(ctx.settings, key.namespace, key.name,
                                     projection["uid"])]
    if any(obj.address not in applied for obj in wanted):
        with AllocationLock(ctx.redis).shared():  # it takes an address from the pod IPAM
            apply(ctx.contrail, wanted, applied)
    else:
        apply(ctx.contrail, wanted, applied)


@register("appnet", "ckm.sync_app_network", "ckm.pod")
def sync_app_network(ctx: Context, key: Key) -> None:
    """`<app>-vn`: exists while some managed pod of the namespace carries the app label."""
    ns, app = key.namespace, key.name
    label = ctx.settings.app_label
    users = [name for name, p in ctx.store.in_namespace("Pod", ns)
             if (p.get("labels") or {}).get(label) == app
             and pod.managed(ctx.settings, ns, p)]
    wanted = [pod.app_network(ctx.settings, ns, app)] if users else []
    if wanted:
        pod.app_name(ctx.settings, {"labels": {label: app}})  # bad names fail here too
        require_project(ctx, ns)
    result = apply(ctx.contrail, wanted, AppliedSet(ctx.redis, str(key)))
    if result.created:
        ctx.enqueue([f"port/{ns}/{name}" for name in users])

"""Service keys: `service/ns/s` (loadbalancer, VIP, listeners, pools, public FIPs),
`members/ns/s` (pool members and the ECMP floating IP's backend refs) and `ingress/ns/i`."""

from __future__ import annotations

import ipaddress
import time

from contrail.ensure import annotations_of
from contrail.errors import NotFound
from tasks import ingress, members, service
from tasks.keys import Key
from tasks.outcomes import BadInput, NotReady
from workers.allocation import AllocationLock
from workers.apply import AppliedSet, apply
from workers.context import Context
from workers.kube import write_lb_status
from workers.reconcilers import require, require_project
from workers.syncs import register

_public_subnets: tuple[float, list] = (0.0, [])


def _public_networks(ctx: Context) -> list[ipaddress.IPv4Network]:
    """Subnets of the public pool's network (cached for a minute per process)."""
    global _public_subnets
    stamp, cached = _public_subnets
    if time.monotonic() - stamp < 60 and cached:
        return cached
    vn_fq = ctx.settings.public_fip_pool_fq_name[:-1]
    vn = ctx.contrail.read("virtual-network", ctx.contrail.fq_name_to_id("virtual-network",
                                                                          vn_fq))
    subnets = []
    for ref in vn.get("network_ipam_refs") or []:
        for entry in (ref.get("attr") or {}).get("ipam_subnets") or []:
            prefix = entry.get("subnet") or {}
            if prefix.get("ip_prefix"):
                subnets.append(ipaddress.IPv4Network(
                    f"{prefix['ip_prefix']}/{prefix['ip_prefix_len']}"))
        if not (ref.get("attr") or {}).get("ipam_subnets") or all(
                "subnet" not in e for e in ref["attr"]["ipam_subnets"]):
            ipam = ctx.contrail.read("network-ipam", ref["uuid"])
            for entry in (ipam.get("ipam_subnets") or {}).get("subnets") or []:
                prefix = entry["subnet"]
                subnets.append(ipaddress.IPv4Network(
                    f"{prefix['ip_prefix']}/{prefix['ip_prefix_len']}"))
    _public_subnets = (time.monotonic(), subnets)
    return subnets


def _check_external_ips(ctx: Context, svc: dict) -> None:
    if not svc.get("external_ips"):
        return
    networks = _public_networks(ctx)
    for address in svc["external_ips"]:
        if not any(ipaddress.IPv4Address(address) in net for net in networks):
            raise BadInput(f"externalIP {address} is outside the public pool "
                           f"{ctx.settings.public_fip_pool} "
                           f"({', '.join(map(str, networks)) or 'no subnets'})")


@register("service", "ckm.sync_service", "ckm.service")
def sync_service(ctx: Context, key: Key) -> None:
    ns, name = key.namespace, key.name
    svc = ctx.store.get("Service", ns, name)
    if service.balanced(svc):
        require_project(ctx, ns)
        service.validate(ctx.settings, svc)
        _check_external_ips(ctx, svc)
    objs = service.desired(ctx.settings, ns, name, svc)
    result = apply(ctx.contrail, objs, AppliedSet(ctx.redis, str(key)))
    if svc is None:
        ctx.store.forget_tombstone("Service", ns, name)
        return
    if result.created or result.deleted:
        ctx.enqueue([f"members/{ns}/{name}"] + [
            f"ingress/{ns}/{i}" for i, ing in ctx.store.in_namespace("Ingress", ns)
            if name in ingress.backend_services(ing)])
    fips = [o for o in objs if o.type == "floating-ip"]
    if fips and ctx.kube is not None:
        addresses = [o.props.get("floating_ip_address") or ctx.contrail.read(
            "floating-ip", o.uuid, fields=["floating_ip_address"])["floating_ip_address"]
            for o in fips]
        write_lb_status(ctx.kube, ctx.redis, "Service", ns, name, addresses)


@register("members", "ckm.update_lb_members", "ckm.service")
def update_lb_members(ctx: Context, key: Key) -> None:
    """Pool members and ECMP backend refs: one call per changed endpoint, never per member."""
    ns, name = key.namespace, key.name
    svc = ctx.store.get("Service", ns, name)
    applied = AppliedSet(ctx.redis, str(key))
    if not service.balanced(svc):
        apply(ctx.contrail, [], applied)
        return
    for port in svc.get("ports") or []:
        require(ctx, f"service/{ns}/{name}", service.pool(ctx.settings, ns, name, svc, port),
                f"pool of port {port['port']}")
    require(ctx, f"service/{ns}/{name}", service.vip_iip(ctx.settings, ns, name, svc),
            "the service VIP")
    slices = [p for _, p in ctx.store.in_namespace("EndpointSlice", ns)
              if p.get("service") == name]
    ready = members.backends(slices)
    fip = members.ecmp_fip(ctx.settings, ns, name, svc, ready)
    if not applied.entries():
        _adopt_members(ctx, ns, name, svc, applied)
    result = apply(ctx.contrail, [fip, *members.member_objects(ctx.settings, ns, name, svc,
                                                                 ready)], applied)
    _sync_backend_refs(ctx, fip.uuid, [r.uuid for r in members.backend_ports(
        ctx.settings, ns, ready)], created=fip.uuid in result.created)


def _adopt_members(ctx: Context, ns: str, name: str, svc: dict, applied: AppliedSet) -> None:
    """This key remembers nothing (its first run, or Redis lost its memory): the members its
    pools already hold become its own, so those no longer wanted are deleted (GC keeps them:
    their service lives)."""
    pools = [service.pool(ctx.settings, ns, name, svc, port).uuid
             for port in svc.get("ports") or []]
    for item in ctx.contrail.list("loadbalancer-member", parent_id=pools,
                                  fields=["annotations"]):
        notes = annotations_of(item)
        if notes.get("owner") == "k8s" and notes.get("cluster") == ctx.settings.cluster_name:
            applied.record(("loadbalancer-member", item["uuid"]), "adopted")


def _sync_backend_refs(ctx: Context, fip_uuid: str, wanted: list[str], *, created: bool) -> None:
    """ECMP FIP -> backend VMI refs, diffed against what was last written (kept in Redis);
    without that memory (Redis lost it), against what the FIP holds."""
    memo = f"ckm:ecmp:{fip_uuid}"
    if created:
        have = set()
    elif ctx.redis.exists(memo):
        have = set(ctx.redis.smembers(memo))
    else:
        held = ctx.contrail.read("floating-ip", fip_uuid,
                                 fields=["virtual_machine_interface_refs"])
        have = {r["uuid"] for r in held.get("virtual_machine_interface_refs") or []}
        if have:  # the whole memory back, or the next addition would stand for all of it
            ctx.redis.sadd(memo, *have)
    if created:
        ctx.redis.delete(memo)
        have = set(wanted)  # the create body carried them
        if wanted:
            ctx.redis.sadd(memo, *wanted)
    for vmi in sorted(set(wanted) - have):
        try:
            ctx.contrail.ref_update("floating-ip", fip_uuid, "virtual-machine-interface", vmi,
                                    "ADD")
        except NotFound:
            raise NotReady(f"backend port {vmi} does not exist yet") from None
        ctx.redis.sadd(memo, vmi)
    for vmi in sorted(have - set(wanted)):
        ctx.contrail.ref_update("floating-ip", fip_uuid, "virtual-machine-interface", vmi,
                                "DELETE")
        ctx.redis.srem(memo, vmi)


@register("ingress", "ckm.sync_ingress", "ckm.ingress")
def sync_ingress(ctx: Context, key: Key) -> None:
    ns, name = key.namespace, key.name
    ing = ctx.store.get("Ingress", ns, name)
    applied = AppliedSet(ctx.redis, str(key))
    if not ingress.ours(ctx.settings, ing):
        apply(ctx.contrail, [], applied)
        if ing is None:
            ctx.store.forget_tombstone("Ingress", ns, name)
        return
    require_project(ctx, ns)
    services = {s: ctx.store.get("Service", ns, s) for s in ingress.backend_services(ing)}
    objs = ingress.desired(ctx.settings, ns, name, ing,
                           ctx.store.get("Namespace", "", ns), services)
    if any(o.type == "instance-ip" and o.address not in applied for o in objs):
        with AllocationLock(ctx.redis).shared():  # its VIP takes an address from the pod IPAM
            apply(ctx.contrail, objs, applied)
    else:
        apply(ctx.contrail, objs, applied)
    if ctx.kube is not None:
        vip = next(o for o in objs if o.type == "instance-ip")
        addresses = [ctx.contrail.read("instance-ip", vip.uuid, fields=[
            "instance_ip_address"])["instance_ip_address"]]
        addresses += [ctx.contrail.read("floating-ip", o.uuid, fields=[
            "floating_ip_address"])["floating_ip_address"]
            for o in objs if o.type == "floating-ip"]
        write_lb_status(ctx.kube, ctx.redis, "Ingress", ns, name, addresses)

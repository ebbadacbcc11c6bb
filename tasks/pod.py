"""Pod -> virtual-machine, port (VMI), instance-ip, egress floating-ip (contrail-model.md).

The pod network, first match wins: its app VN (label `opencontrail.org/name=<app>`), its
namespace's isolated VN, `cluster-network`. A pod on an app or isolated VN also gets an egress
floating IP on cluster-network, so it reaches the cluster while nobody outside its VN
reaches its own address.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from config.settings import Settings
from tasks import cluster, naming
from tasks.model import Obj, Ref
from tasks.namespace import is_isolated, isolated_network, pod_ipam_ref, project
from tasks.outcomes import BadInput

KIND = "Pod"
APP_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,59}[A-Za-z0-9])?$")


def managed(settings: Settings, namespace: str, pod: dict | None) -> bool:
    """Pods ckm makes ports for: scheduled, not hostNetwork, not finished, managed namespace."""
    return bool(pod) and namespace not in settings.unmanaged_namespaces and bool(
        pod.get("node")) and not pod.get("host_network") and not pod.get("finished")


def app_name(settings: Settings, pod: dict) -> str | None:
    """The pod's app (app isolation) or None; a value Contrail cannot name is bad input."""
    app = (pod.get("labels") or {}).get(settings.app_label)
    if app is None:
        return None
    if not APP_NAME.match(app):
        raise BadInput(f"label {settings.app_label}={app!r} is not a usable network name "
                       "(letters, digits, '-', '_', '.'; at most 61 characters)")
    return app


def app_network(settings: Settings, namespace: str, app: str) -> Obj:
    proj = project(settings, namespace)
    return Obj("virtual-network",
               naming.object_uuid(settings.cluster_name, "App", f"{namespace}/{app}", "vn"),
               (*proj.fq_name, f"{app}-vn"), "project",
               props={"virtual_network_properties": {"forwarding_mode": "l3"},
                      "address_allocation_mode": "flat-subnet-only"},
               refs={"network_ipam_refs": (pod_ipam_ref(settings),)},
               annotations=naming.owner(settings.cluster_name, "App", namespace, app))


@dataclass(frozen=True)
class Placement:
    """Where a pod's port goes: its network object and whether it needs an egress FIP."""

    network: Obj
    kind: str  # "app", "isolated" or "cluster"
    app: str | None = None

    @property
    def needs_fip(self) -> bool:
        return self.kind != "cluster"


def placement(settings: Settings, namespace: str, pod: dict, ns: dict | None) -> Placement:
    app = app_name(settings, pod)
    if app:
        return Placement(app_network(settings, namespace, app), "app", app)
    if ns is not None and is_isolated(ns.get("annotations") or {}, settings):
        return Placement(isolated_network(settings, namespace, ns.get("uid", "")), "isolated")
    return Placement(cluster.cluster_network(settings), "cluster")


def vm(settings: Settings, namespace: str, name: str, uid: str) -> Obj:
    # uuid = the pod uid: the vrouter CNI finds the pod's port through it.
    return Obj("virtual-machine", uid, (f"{settings.cluster_name}__{namespace}__{name}",),
               props={"server_type": "container"},
               annotations=naming.owner(settings.cluster_name, KIND, namespace, name, uid),
               adopt=False)


def vmi_uuid(settings: Settings, uid: str) -> str:
    return naming.object_uuid(settings.cluster_name, KIND, uid, "vmi")


def vmi(settings: Settings, namespace: str, name: str, uid: str, network: Obj,
        security_groups: tuple[Ref, ...]) -> Obj:
    machine = vm(settings, namespace, name, uid)
    return Obj("virtual-machine-interface", vmi_uuid(settings, uid),
               (*project(settings, namespace).fq_name, f"{name}__{uid}"), "project",
               refs={"virtual_network_refs": (Ref(network.fq_name, network.uuid),),
                     "virtual_machine_refs": (Ref(machine.fq_name, machine.uuid),)},
               annotations=naming.owner(settings.cluster_name, KIND, namespace, name, uid),
               create_only={"security_group_refs": [r.wire(with_attr=False)
                                                    for r in security_groups]})


def instance_ip(settings: Settings, namespace: str, name: str, uid: str, network: Obj,
                address: str | None = None) -> Obj:
    """One instance-ip per (pod, network): moving networks replaces it. A move asks for the
    address the pod has (`address`): a pod keeps its IP for life. Asked for at creation only,
    so the recorded body is the same whether or not it was a move."""
    port = vmi(settings, namespace, name, uid, network, ())
    return Obj("instance-ip",
               naming.object_uuid(settings.cluster_name, KIND, uid, f"iip:{network.uuid}"),
               (f"{settings.cluster_name}__{namespace}__{name}__{uid}__{network.fq_name[-1]}",),
               refs={"virtual_network_refs": (Ref(network.fq_name, network.uuid),),
                     "virtual_machine_interface_refs": (Ref(port.fq_name, port.uuid),)},
               annotations=naming.owner(settings.cluster_name, KIND, namespace, name, uid),
               create_only={"instance_ip_address": address} if address else {})


def why_address_cannot_move(settings: Settings, address: str, place: Placement) -> str | None:
    """Every pod network refers to the one pod IPAM, so an address moves with its pod unless
    it lies outside the IPAM's subnets now (pod_subnets changed since the pod started)."""
    ip = ipaddress.ip_address(address)
    if any(ip in subnet for subnet in settings.pod_subnets):
        return None
    return (f"its address {address} is outside pod_subnets "
            f"({', '.join(str(s) for s in settings.pod_subnets)}), so "
            f"{place.network.fq_name[-1]} cannot hold it")


def port_objects(settings: Settings, namespace: str, name: str, pod: dict,
                 place: Placement, security_groups: tuple[Ref, ...]) -> list[Obj]:
    uid = pod["uid"]
    return [vm(settings, namespace, name, uid),
            vmi(settings, namespace, name, uid, place.network, security_groups),
            instance_ip(settings, namespace, name, uid, place.network)]


def egress_fip(settings: Settings, namespace: str, name: str, uid: str) -> Obj:
    pool = cluster.fip_pool(settings)
    port_uuid = vmi_uuid(settings, uid)
    port_fq = (*project(settings, namespace).fq_name, f"{name}__{uid}")
    return Obj("floating-ip", naming.object_uuid(settings.cluster_name, KIND, uid, "egress-fip"),
               (*pool.fq_name, f"{namespace}__{name}__{uid}"), "floating-ip-pool",
               props={"floating_ip_traffic_direction": "egress"},
               refs={"virtual_machine_interface_refs": (Ref(port_fq, port_uuid),),
                     "project_refs": (Ref(project(settings, namespace).fq_name,
                                          project(settings, namespace).uuid),)},
               annotations=naming.owner(settings.cluster_name, KIND, namespace, name, uid))

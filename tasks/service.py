"""Service -> loadbalancer with its VIP port and address, a listener and a pool per port.

The VIP is the clusterIP, on `cluster-network` (from the service IPAM), so every pod, isolated
or not, reaches it. Pool members and the ECMP floating IP follow the endpoints: see
`tasks.members`. Headless and ExternalName services have no loadbalancer.
"""

from __future__ import annotations

import ipaddress

from config.settings import Settings
from tasks import cluster, naming
from tasks.model import Obj, Ref
from tasks.namespace import project
from tasks.outcomes import BadInput

KIND = "Service"
PROTOCOLS = ("TCP", "UDP", "SCTP")


def balanced(service: dict | None) -> bool:
    """Does this service get a loadbalancer? (not headless, not ExternalName)"""
    return bool(service) and service.get("type") != "ExternalName" and service.get(
        "cluster_ip") not in ("", "None", None)


def _base(settings: Settings, namespace: str, name: str, service: dict) -> tuple:
    return (*project(settings, namespace).fq_name, f"{name}__{service['uid']}")


def _owner(settings: Settings, namespace: str, name: str, service: dict) -> dict:
    return naming.owner(settings.cluster_name, KIND, namespace, name, service["uid"])


def _uuid(settings: Settings, service: dict, role: str) -> str:
    return naming.object_uuid(settings.cluster_name, KIND, service["uid"], role)


def port_id(port: dict) -> str:
    return f"{port['port']}-{port['protocol'].lower()}"


def vip_vmi(settings: Settings, namespace: str, name: str, service: dict) -> Obj:
    network = cluster.cluster_network(settings)
    return Obj("virtual-machine-interface", _uuid(settings, service, "vip-vmi"),
               (*_base(settings, namespace, name, service)[:-1],
                f"{name}__{service['uid']}__vip"), "project",
               props={"virtual_machine_interface_device_owner": "K8S:LOADBALANCER"},
               refs={"virtual_network_refs": (Ref(network.fq_name, network.uuid),)},
               annotations=_owner(settings, namespace, name, service))


def vip_iip(settings: Settings, namespace: str, name: str, service: dict) -> Obj:
    network = cluster.cluster_network(settings)
    port = vip_vmi(settings, namespace, name, service)
    address = service["cluster_ip"]
    # A changed clusterIP means a new address object (addresses are immutable in Contrail).
    return Obj("instance-ip", _uuid(settings, service, f"vip-iip:{address}"),
               (f"{settings.cluster_name}__{namespace}__{name}__{service['uid']}__vip",),
               props={"instance_ip_address": address},
               refs={"virtual_network_refs": (Ref(network.fq_name, network.uuid),),
                     "virtual_machine_interface_refs": (Ref(port.fq_name, port.uuid),)},
               annotations=_owner(settings, namespace, name, service))


def loadbalancer(settings: Settings, namespace: str, name: str, service: dict) -> Obj:
    port = vip_vmi(settings, namespace, name, service)
    return Obj("loadbalancer", service["uid"], _base(settings, namespace, name, service),
               "project",
               props={"loadbalancer_provider": "native",
                      "loadbalancer_properties": {"vip_address": service["cluster_ip"],
                                                  "admin_state": True}},
               refs={"virtual_machine_interface_refs": (Ref(port.fq_name, port.uuid),)},
               annotations=_owner(settings, namespace, name, service))


def listener(settings: Settings, namespace: str, name: str, service: dict, port: dict) -> Obj:
    lb = loadbalancer(settings, namespace, name, service)
    return Obj("loadbalancer-listener", _uuid(settings, service, f"listener:{port_id(port)}"),
               (*lb.fq_name[:-1], f"{lb.fq_name[-1]}__{port_id(port)}"), "project",
               props={"loadbalancer_listener_properties": {
                   "protocol": port["protocol"], "protocol_port": port["port"],
                   "admin_state": True}},
               refs={"loadbalancer_refs": (Ref(lb.fq_name, lb.uuid),)},
               annotations=_owner(settings, namespace, name, service))


def pool(settings: Settings, namespace: str, name: str, service: dict, port: dict) -> Obj:
    front = listener(settings, namespace, name, service, port)
    return Obj("loadbalancer-pool", _uuid(settings, service, f"pool:{port_id(port)}"),
               (*front.fq_name[:-1], f"{front.fq_name[-1]}__pool"), "project",
               props={"loadbalancer_pool_properties": {
                   "protocol": port["protocol"], "loadbalancer_method": "ROUND_ROBIN",
                   "admin_state": True}},
               refs={"loadbalancer_listener_refs": (Ref(front.fq_name, front.uuid),)},
               annotations=_owner(settings, namespace, name, service))


def validate(settings: Settings, service: dict) -> None:
    for port in service.get("ports") or []:
        if port["protocol"] not in PROTOCOLS:
            raise BadInput(f"port {port['port']}: protocol {port['protocol']!r} is not one of "
                           f"{', '.join(PROTOCOLS)}")
    for address in service.get("external_ips") or []:
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise BadInput(f"externalIPs: {address!r} is not an IPv4 address") from None
    if service.get("external_ips") and not settings.public_fip_pool:
        raise BadInput("externalIPs are set but ckm has no public_fip_pool configured")


def public_fips(settings: Settings, namespace: str, name: str, service: dict) -> list[Obj]:
    """Floating IPs from the public pool on the VIP port: one per externalIP, or one
    allocated for a LoadBalancer service without externalIPs."""
    if not settings.public_fip_pool_fq_name:
        return []
    wanted = list(service.get("external_ips") or [])
    if not wanted and service.get("type") == "LoadBalancer":
        wanted = [None]
    port = vip_vmi(settings, namespace, name, service)
    out = []
    for address in wanted:
        props = {"floating_ip_address": address} if address else {}
        out.append(Obj(
            "floating-ip", _uuid(settings, service, f"public-fip:{address or 'auto'}"),
            (*settings.public_fip_pool_fq_name, f"{namespace}__{name}__{address or 'lb'}"),
            "floating-ip-pool", props=props,
            refs={"virtual_machine_interface_refs": (Ref(port.fq_name, port.uuid),),
                  "project_refs": (Ref(project(settings, namespace).fq_name,
                                       project(settings, namespace).uuid),)},
            annotations=_owner(settings, namespace, name, service)))
    return out


def desired(settings: Settings, namespace: str, name: str, service: dict | None) -> list[Obj]:
    if not balanced(service):
        return []
    validate(settings, service)
    objs = [vip_vmi(settings, namespace, name, service), vip_iip(settings, namespace, name,
                                                                  service),
            loadbalancer(settings, namespace, name, service)]
    for port in service.get("ports") or []:
        objs += [listener(settings, namespace, name, service, port),
                 pool(settings, namespace, name, service, port)]
    return objs + public_fips(settings, namespace, name, service)

"""EndpointSlices -> pool members, and the ECMP floating IP that spreads the service IP.

Members are the ready endpoints of every slice of the service; a named targetPort is already
resolved per pod by the EndpointSlice controller (each slice carries its own port numbers), so
pods that resolve a name differently get different member ports. The ECMP floating IP is a
child of the VIP instance-ip with the same address and one port mapping per service port; its
VMI refs (the ready backend pods' ports, in any namespace or network) are kept separately,
so a changed endpoint costs one ref update, not a rewrite.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from tasks import naming
from tasks.model import Obj, Ref
from tasks.namespace import project
from tasks.pod import vmi_uuid
from tasks.service import KIND, pool, vip_iip


@dataclass(frozen=True)
class Backend:
    address: str
    pod: str | None
    pod_uid: str | None
    ports: dict[str, int]  # service port name -> target port number


def backends(slices: list[dict]) -> list[Backend]:
    """Ready endpoints of all slices of one service (duplicates across slices merged)."""
    seen: dict[str, Backend] = {}
    for piece in slices:
        ports = {p["name"]: p["port"] for p in piece.get("ports") or [] if p.get("port")}
        for endpoint in piece.get("endpoints") or []:
            if not endpoint.get("ready"):
                continue
            for address in endpoint.get("addresses") or []:
                seen.setdefault(address, Backend(address, endpoint.get("pod"),
                                                 endpoint.get("pod_uid"), ports))
    return sorted(seen.values(), key=lambda b: b.address)


def member_objects(settings: Settings, namespace: str, name: str, service: dict,
                   ready: list[Backend]) -> list[Obj]:
    out = []
    for port in service.get("ports") or []:
        parent = pool(settings, namespace, name, service, port)
        for backend in ready:
            target = backend.ports.get(port["name"])
            if target is None:
                continue  # this endpoint does not serve this port
            ident = backend.pod_uid or backend.address
            out.append(Obj(
                "loadbalancer-member",
                naming.object_uuid(settings.cluster_name, KIND, service["uid"],
                                   f"member:{port['name']}:{port['port']}:{ident}:{target}"),
                (*parent.fq_name, f"{backend.pod or backend.address}__{target}"),
                "loadbalancer-pool",
                props={"loadbalancer_member_properties": {
                    "address": backend.address, "protocol_port": target, "weight": 1,
                    "admin_state": True}},
                annotations=naming.owner(settings.cluster_name, KIND, namespace, name,
                                         service["uid"])))
    return out


def port_mappings(service: dict, ready: list[Backend]) -> list[dict]:
    """service port -> target port; a name resolved differently per pod maps to the first."""
    out = []
    for port in service.get("ports") or []:
        target = next((b.ports[port["name"]] for b in ready if port["name"] in b.ports), None)
        if target is None and isinstance(port.get("target_port"), int):
            target = port["target_port"]
        out.append({"protocol": port["protocol"].lower(), "src_port": port["port"],
                    "dst_port": target or port["port"]})
    return out


def ecmp_fip(settings: Settings, namespace: str, name: str, service: dict,
             ready: list[Backend]) -> Obj:
    address = vip_iip(settings, namespace, name, service)
    return Obj(
        "floating-ip",
        naming.object_uuid(settings.cluster_name, KIND, service["uid"],
                           f"ecmp:{service['cluster_ip']}"),
        (*address.fq_name, f"{name}__{service['uid']}__ecmp"), "instance-ip",
        props={"floating_ip_address": service["cluster_ip"],
               "floating_ip_traffic_direction": "ingress",
               "floating_ip_port_mappings_enable": True,
               "floating_ip_port_mappings": {"port_mappings": port_mappings(service, ready)}},
        annotations=naming.owner(settings.cluster_name, KIND, namespace, name, service["uid"]),
        create_only={"virtual_machine_interface_refs": [
            r.wire(with_attr=False) for r in backend_ports(settings, namespace, ready)]})


def backend_ports(settings: Settings, namespace: str, ready: list[Backend]) -> list[Ref]:
    """Refs to the ports (VMIs) of the ready backend pods, from their names and uids."""
    proj = project(settings, namespace).fq_name
    refs = {vmi_uuid(settings, b.pod_uid): Ref((*proj, f"{b.pod}__{b.pod_uid}"),
                                               vmi_uuid(settings, b.pod_uid))
            for b in ready if b.pod_uid and b.pod}
    return [refs[k] for k in sorted(refs)]

"""Ingress -> an haproxy loadbalancer (provider `opencontrail`) on the namespace's pod network.

Listener HTTP:80 (and TERMINATED_HTTPS:443 with `spec.tls`); one pool per (host, path) rule and
one for the default backend; each pool's member is the backend service's clusterIP and port
(a named service port resolved through the Service). Only ingresses whose class is absent or
ckm's own are handled.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from tasks import cluster, naming
from tasks.model import Obj, Ref
from tasks.namespace import is_isolated, isolated_network, project
from tasks.outcomes import BadInput, NotReady

KIND = "Ingress"
LEGACY_CLASS = "kubernetes.io/ingress.class"


@dataclass(frozen=True)
class Route:
    host: str
    path: str
    service: str
    port: int | str


def ours(settings: Settings, ingress: dict | None) -> bool:
    if not ingress:
        return False
    spec = ingress.get("spec") or {}
    cls = spec.get("ingressClassName") or (ingress.get("annotations") or {}).get(LEGACY_CLASS)
    return cls in (None, "", settings.ingress_class)


def _backend(backend: dict | None, where: str) -> tuple[str, int | str]:
    service = (backend or {}).get("service") or {}
    port = service.get("port") or {}
    value = port.get("number") if port.get("number") is not None else port.get("name")
    if not service.get("name") or value in (None, ""):
        raise BadInput(f"{where}: backend needs service.name and service.port")
    return service["name"], value


def routes(ingress: dict) -> list[Route]:
    spec = ingress.get("spec") or {}
    out = []
    if spec.get("defaultBackend"):
        out.append(Route("", "", *_backend(spec["defaultBackend"], "defaultBackend")))
    for i, rule in enumerate(spec.get("rules") or []):
        for j, path in enumerate((rule.get("http") or {}).get("paths") or []):
            out.append(Route(rule.get("host") or "", path.get("path") or "/",
                             *_backend(path.get("backend"), f"rules[{i}].paths[{j}]")))
    if not out:
        raise BadInput("the ingress has neither rules nor a defaultBackend")
    return out


def resolve(route: Route, services: dict[str, dict | None]) -> tuple[str, int]:
    """(clusterIP, port number) of a route's backend; NotReady until the service exists."""
    service = services.get(route.service)
    if not service or service.get("cluster_ip") in ("", "None", None):
        raise NotReady(f"backend service {route.service!r} does not exist (or has no clusterIP)")
    for port in service.get("ports") or []:
        if route.port in (port["port"], port["name"]):
            return service["cluster_ip"], port["port"]
    raise NotReady(f"service {route.service!r} has no port {route.port!r}")


def network(settings: Settings, namespace: str, ns: dict | None) -> Obj:
    if ns is not None and is_isolated(ns.get("annotations") or {}, settings):
        return isolated_network(settings, namespace, ns.get("uid", ""))
    return cluster.cluster_network(settings)


def desired(settings: Settings, namespace: str, name: str, ingress: dict | None,
            ns: dict | None, services: dict[str, dict | None]) -> list[Obj]:
    if not ours(settings, ingress):
        return []
    uid, proj = ingress["uid"], project(settings, namespace)
    base = f"{name}__{uid}"
    owner = naming.owner(settings.cluster_name, KIND, namespace, name, uid)

    def uuid(role: str) -> str:
        return naming.object_uuid(settings.cluster_name, KIND, uid, role)

    net = network(settings, namespace, ns)
    vmi = Obj("virtual-machine-interface", uuid("vip-vmi"), (*proj.fq_name, f"{base}__vip"),
              "project", props={"virtual_machine_interface_device_owner": "K8S:LOADBALANCER"},
              refs={"virtual_network_refs": (Ref(net.fq_name, net.uuid),)}, annotations=owner)
    iip = Obj("instance-ip", uuid(f"vip-iip:{net.uuid}"),
              (f"{settings.cluster_name}__{namespace}__{base}__vip",),
              refs={"virtual_network_refs": (Ref(net.fq_name, net.uuid),),
                    "virtual_machine_interface_refs": (Ref(vmi.fq_name, vmi.uuid),)},
              annotations=owner)
    lb = Obj("loadbalancer", uid, (*proj.fq_name, base), "project",
             props={"loadbalancer_provider": "opencontrail",
                    "loadbalancer_properties": {"admin_state": True}},
             refs={"virtual_machine_interface_refs": (Ref(vmi.fq_name, vmi.uuid),)},
             annotations=owner)
    listeners = [("http", "HTTP", 80, {})]
    tls = (ingress.get("spec") or {}).get("tls") or []
    if tls:
        secret = tls[0].get("secretName") or ""
        listeners.append(("https", "TERMINATED_HTTPS", 443,
                          {"default_tls_container": f"{namespace}__{secret}"}))
    objs = [vmi, iip, lb]
    fronts = []
    for role, protocol, port, extra in listeners:
        front = Obj("loadbalancer-listener", uuid(f"listener:{role}"),
                    (*proj.fq_name, f"{base}__{role}"), "project",
                    props={"loadbalancer_listener_properties": {
                        "protocol": protocol, "protocol_port": port, "admin_state": True,
                        **extra}},
                    refs={"loadbalancer_refs": (Ref(lb.fq_name, lb.uuid),)}, annotations=owner)
        objs.append(front)
        fronts.append(Ref(front.fq_name, front.uuid))
    for route in routes(ingress):
        address, port = resolve(route, services)
        ident = f"{route.host or '*'}{route.path or ''}"
        pool = Obj("loadbalancer-pool", uuid(f"pool:{ident}"),
                   (*proj.fq_name, f"{base}__pool-{naming.short_hash(ident)}"), "project",
                   props={"loadbalancer_pool_properties": {
                       "protocol": "HTTP", "loadbalancer_method": "ROUND_ROBIN",
                       "admin_state": True},
                       "loadbalancer_pool_custom_attributes": {"key_value_pair": [
                           {"key": "host", "value": route.host},
                           {"key": "path", "value": route.path}]}},
                   refs={"loadbalancer_listener_refs": tuple(fronts)}, annotations=owner)
        member = Obj("loadbalancer-member", uuid(f"member:{ident}:{address}:{port}"),
                     (*pool.fq_name, f"{route.service}__{port}"), "loadbalancer-pool",
                     props={"loadbalancer_member_properties": {
                         "address": address, "protocol_port": port, "weight": 1,
                         "admin_state": True}}, annotations=owner)
        objs += [pool, member]
    if settings.public_fip_pool_fq_name:
        # the public address, as for a LoadBalancer service
        objs.append(Obj("floating-ip", uuid("public-fip"),
                        (*settings.public_fip_pool_fq_name, f"{namespace}__{name}__ingress"),
                        "floating-ip-pool",
                        refs={"virtual_machine_interface_refs": (Ref(vmi.fq_name, vmi.uuid),),
                              "project_refs": (Ref(proj.fq_name, proj.uuid),)},
                        annotations=owner))
    return objs


def backend_services(ingress: dict | None) -> set[str]:
    """Names of the services an ingress sends to (for fan-out), tolerant of bad input."""
    try:
        return {r.service for r in routes(ingress)} if ingress else set()
    except BadInput:
        return set()

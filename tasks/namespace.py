"""Namespace -> project, and for an isolated namespace its `<ns>-vn` (contrail-model.md)."""

from __future__ import annotations

from config.settings import Settings
from tasks import naming
from tasks.model import Obj, Ref
from tasks.outcomes import BadInput

KIND = "Namespace"


def is_isolated(annotations: dict[str, str], settings: Settings) -> bool:
    """True/false from the isolation annotations; any other value is bad input."""
    isolated = False
    for key in settings.isolation_annotations:
        value = annotations.get(key)
        if value is None:
            continue
        if value.strip().lower() not in ("true", "false"):
            raise BadInput(f"annotation {key}={value!r}: expected \"true\" or \"false\"")
        isolated = isolated or value.strip().lower() == "true"
    return isolated


def project(settings: Settings, namespace: str) -> Obj:
    # The project's uuid follows the namespace *name*: the default namespace's project is
    # also made by the cluster bootstrap, and both must name the same object.
    name = naming.project_name(settings.cluster_name, namespace)
    return Obj("project", naming.object_uuid(settings.cluster_name, KIND, namespace, "project"),
               (settings.domain, name), "domain",
               annotations=naming.owner(settings.cluster_name, KIND, namespace, namespace))


def pod_ipam_ref(settings: Settings) -> Ref:
    fq = (settings.domain, naming.project_name(settings.cluster_name, "default"),
          f"{settings.cluster_name}-pod-ipam")
    return Ref(fq, attr={"ipam_subnets": [], "host_routes": None})


def isolated_network(settings: Settings, namespace: str, uid: str) -> Obj:
    proj = project(settings, namespace)
    return Obj(
        "virtual-network",
        naming.object_uuid(settings.cluster_name, KIND, namespace, "isolated-vn"),
        (*proj.fq_name, f"{namespace}-vn"), "project",
        props={"virtual_network_properties": {"forwarding_mode": "l3"},
               "address_allocation_mode": "flat-subnet-only"},
        refs={"network_ipam_refs": (pod_ipam_ref(settings),)},
        annotations=naming.owner(settings.cluster_name, KIND, namespace, namespace, uid))


def desired(settings: Settings, name: str, projection: dict | None) -> list[Obj]:
    """The objects namespace `name` should have; [] once it is deleted."""
    if projection is None:
        return []
    objs = [project(settings, name)]
    if is_isolated(projection.get("annotations") or {}, settings):
        objs.append(isolated_network(settings, name, projection.get("uid", "")))
    return objs

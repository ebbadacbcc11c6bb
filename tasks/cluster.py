"""Cluster bootstrap: the default project, pod and service IPAMs, `cluster-network`, its FIP pool.

Idempotent: applied at start and on every resync, it also repairs what is missing or wrong
(an IPAM without subnets, a missing ref), as upstream's restart never did.
"""

from __future__ import annotations

from config.settings import Network, Settings
from tasks import naming
from tasks.model import Obj, Ref
from tasks.namespace import project

KIND = "Cluster"


def _owner(settings: Settings, name: str) -> dict[str, str]:
    return naming.owner(settings.cluster_name, KIND, "", name)


def _ipam(settings: Settings, role: str, subnets: list[Network]) -> Obj:
    parent = project(settings, "default")
    return Obj("network-ipam", naming.cluster_uuid(settings.cluster_name, role),
               (*parent.fq_name, f"{settings.cluster_name}-{role}"), "project",
               props={"ipam_subnet_method": "flat-subnet",
                      "ipam_subnets": {"subnets": [
                          {"subnet": {"ip_prefix": str(n.network_address),
                                      "ip_prefix_len": n.prefixlen}} for n in subnets]}},
               annotations=_owner(settings, role))


def pod_ipam(settings: Settings) -> Obj:
    return _ipam(settings, "pod-ipam", settings.pod_subnets)


def service_ipam(settings: Settings) -> Obj:
    return _ipam(settings, "service-ipam", settings.service_subnets)


def cluster_network(settings: Settings) -> Obj:
    parent = project(settings, "default")
    flat = {"ipam_subnets": [], "host_routes": None}
    return Obj("virtual-network", naming.cluster_uuid(settings.cluster_name, "cluster-network"),
               (*parent.fq_name, "cluster-network"), "project",
               props={"virtual_network_properties": {"forwarding_mode": "l3"},
                      "address_allocation_mode": "flat-subnet-only"},
               refs={"network_ipam_refs": (Ref(pod_ipam(settings).fq_name, attr=flat),
                                           Ref(service_ipam(settings).fq_name, attr=flat))},
               annotations=_owner(settings, "cluster-network"))


def fip_pool(settings: Settings) -> Obj:
    network = cluster_network(settings)
    return Obj("floating-ip-pool", naming.cluster_uuid(settings.cluster_name, "fip-pool"),
               (*network.fq_name, "cluster-network-fip-pool"), "virtual-network",
               annotations=_owner(settings, "cluster-network-fip-pool"))


def desired(settings: Settings) -> list[Obj]:
    from tasks.security import allow_all_egress, allow_all_ingress

    return [project(settings, "default"), pod_ipam(settings), service_ipam(settings),
            cluster_network(settings), fip_pool(settings), allow_all_ingress(settings),
            allow_all_egress(settings)]

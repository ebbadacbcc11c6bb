"""The objects a fresh api-server has (vnc-rest.md 5.1), created through the normal backend path.

Order matters for the ids the hooks hand out: the four default VNs take network ids 1-4 and
`__no_rule__` takes security group id 8000001, so the first user objects get the ids a real
fresh server would give them.
"""

from __future__ import annotations

from emulators.contrail.backend import Backend

DP = ["default-domain", "default-project"]
GLOBAL_ACCESS_RX = {"global_access": 5}
PREDEFINED_TAG_TYPES = ("label", "application", "tier", "deployment", "site", "neutron_fwaas")


def _vn(b: Backend, name: str, **props) -> None:
    vn = b.create("virtual-network", {"fq_name": [*DP, name], "parent_type": "project", **props})
    if name == "ip-fabric":
        # ip-fabric has a second RI `__default__` next to its default one.
        b.create("routing-instance", {"fq_name": [*vn.fq_name, "__default__"],
                                      "parent_type": "virtual-network"})


def install(b: Backend) -> None:
    b.create("global-system-config", {"fq_name": ["default-global-system-config"],
                                      "autonomous_system": 64512})
    gvc = b.create("global-vrouter-config", {
        "fq_name": ["default-global-system-config", "default-global-vrouter-config"],
        "parent_type": "global-system-config"})
    b.create("domain", {"fq_name": ["default-domain"]})
    b.create("project", {"fq_name": DP, "parent_type": "domain"})
    b.create("namespace", {"fq_name": ["default-domain", "default-namespace"],
                           "parent_type": "domain"})
    b.create("network-ipam", {"fq_name": [*DP, "default-network-ipam"], "parent_type": "project",
                              "perms2": GLOBAL_ACCESS_RX})
    _vn(b, "default-virtual-network")
    _vn(b, "ip-fabric", is_provider_network=True)
    _vn(b, "__link_local__")
    _vn(b, "dci-network")
    b.create("network-ipam", {
        "fq_name": [*DP, "service-chain-flat-ipam"], "parent_type": "project",
        "ipam_subnet_method": "flat-subnet",
        "ipam_subnets": {"subnets": [{"subnet": {"ip_prefix": "0.0.0.0", "ip_prefix_len": 8}}]}})
    pm = b.create("policy-management", {"fq_name": ["default-policy-management"]})
    b.create("application-policy-set", {
        "fq_name": [*pm.fq_name, "default-application-policy-set"],
        "parent_type": "policy-management", "all_applications": True,
        "global_vrouter_config_refs": [{"to": list(gvc.fq_name)}]})
    b.create("security-group", {
        "fq_name": [*DP, "__no_rule__"], "parent_type": "project", "perms2": GLOBAL_ACCESS_RX,
        "security_group_entries": {"policy_rule": []}})
    for name in PREDEFINED_TAG_TYPES:
        b.create("tag-type", {"fq_name": [name], "id_perms": {"user_visible": False}})


def fresh_backend() -> Backend:
    backend = Backend()
    install(backend)
    return backend

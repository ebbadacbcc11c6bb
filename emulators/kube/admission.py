"""Per-kind defaulting and validation, the part of the real server's REST strategies we need.

`Admission.create/update` mutate the (already copied) incoming object or raise `ApiError`;
`deleted` releases what the object held. Only what ckm, kubectl and the Python client
observe is emulated: Pod defaults and status reset, the namespace name label, Service
clusterIP/nodePort allocation and immutability, NetworkPolicy `policyTypes` defaulting,
the object name rules. Anything else is stored as given.
"""

from __future__ import annotations

import re
from typing import Any

from emulators.kube.errors import ApiError, invalid
from emulators.kube.ipam import AllocationError, NodePorts, ServiceIPs
from emulators.kube.resources import ResourceType

Obj = dict[str, Any]
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_NAME_RULES = {
    "Namespace": (_LABEL, 63, "a lowercase RFC 1123 label must consist of lower case "
                  "alphanumeric characters or '-', and must start and end with an alphanumeric "
                  "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
                  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
    "Service": (_LABEL_1035, 63, "a DNS-1035 label must consist of lower case alphanumeric "
                "characters or '-', start with an alphabetic character, and end with an "
                "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
                "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"),
}
_SUBDOMAIN_RULE = (_SUBDOMAIN, 253, "a lowercase RFC 1123 subdomain must consist of lower case "
                   "alphanumeric characters, '-' or '.', and must start and end with an "
                   "alphanumeric character (e.g. 'example.com', regex used for validation is "
                   r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def validate_name(rt: ResourceType, name: str) -> None:
    if not name:
        raise invalid(rt.kind, "", rt.group, [("metadata.name", "FieldValueRequired",
                      "Required value: name or generateName is required")])
    pattern, limit, explanation = _NAME_RULES.get(rt.kind, _SUBDOMAIN_RULE)
    if len(name) > limit or not pattern.match(name):
        raise invalid(rt.kind, name, rt.group, [("metadata.name", "FieldValueInvalid",
                      f'Invalid value: "{name}": {explanation}')])


def _image_pull_policy(image: str) -> str:
    name = image.split("@", 1)[0]
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
    return "Always" if tag in ("", "latest") and "@" not in image else "IfNotPresent"


def _default_container(container: Obj) -> None:
    container.setdefault("imagePullPolicy", _image_pull_policy(container.get("image", "")))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")


class Admission:
    def __init__(self, service_ips: ServiceIPs, node_ports: NodePorts) -> None:
        self.service_ips = service_ips
        self.node_ports = node_ports

    def create(self, rt: ResourceType, obj: Obj) -> None:
        hook = getattr(self, f"_create_{rt.kind.lower()}", None)
        if hook:
            hook(rt, obj)

    def update(self, rt: ResourceType, new: Obj, old: Obj) -> None:
        hook = getattr(self, f"_update_{rt.kind.lower()}", None)
        if hook:
            hook(rt, new, old)

    def deleted(self, rt: ResourceType, obj: Obj) -> None:
        if rt.kind == "Service":
            self._release_service(obj)

    # --- Namespace -----------------------------------------------------------------------

    def _create_namespace(self, rt: ResourceType, obj: Obj) -> None:
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
        self._update_namespace(rt, obj, obj)

    def _update_namespace(self, rt: ResourceType, new: Obj, old: Obj) -> None:
        meta = new["metadata"]
        meta["labels"] = {**(meta.get("labels") or {}), NAMESPACE_NAME_LABEL: meta["name"]}

    # --- Pod -----------------------------------------------------------------------------

    def _create_pod(self, rt: ResourceType, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        containers = spec.get("containers")
        if not containers:
            raise invalid(rt.kind, obj["metadata"]["name"], "",
                          [("spec.containers", "FieldValueRequired", "Required value")])
        for container in containers + (spec.get("initContainers") or []):
            _default_container(container)
        for key, value in (("restartPolicy", "Always"), ("dnsPolicy", "ClusterFirst"),
                           ("schedulerName", "default-scheduler"),
                           ("terminationGracePeriodSeconds", 30), ("securityContext", {}),
                           ("enableServiceLinks", True), ("priority", 0),
                           ("preemptionPolicy", "PreemptLowerPriority")):
            spec.setdefault(key, value)
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}

    def _update_pod(self, rt: ResourceType, new: Obj, old: Obj) -> None:
        # Pod specs are immutable but for images and a few scheduling fields.
        def mutable_stripped(spec: Obj) -> Obj:
            spec = dict(spec)
            for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
                spec.pop(key, None)
            for key in ("containers", "initContainers"):
                spec[key] = [{k: v for k, v in c.items() if k != "image"}
                             for c in spec.get(key) or []]
            return spec
        for container in (new.get("spec") or {}).get("containers") or []:
            _default_container(container)
        if mutable_stripped(new.get("spec") or {}) != mutable_stripped(old.get("spec") or {}):
            raise invalid(rt.kind, new["metadata"]["name"], "", [(
                "spec", "FieldValueForbidden",
                "Forbidden: pod updates may not change fields other than `spec.containers[*]."
                "image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                "`spec.tolerations` (only additions to existing tolerations),"
                "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                "previously negative)")])

    # --- Service -------------------------------------------------------------------------

    def _create_service(self, rt: ResourceType, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        self._default_service(spec)
        name = obj["metadata"]["name"]
        if spec["type"] == "ExternalName":
            if not spec.get("externalName"):
                raise invalid(rt.kind, name, "", [("spec.externalName", "FieldValueRequired",
                                                   "Required value")])
        elif spec.get("clusterIP") not in (None, "", "None"):
            self._reserve_ip(name, spec["clusterIP"])
        elif spec.get("clusterIP") != "None":
            spec["clusterIP"] = self.service_ips.allocate()
        if spec["type"] != "ExternalName":
            spec["clusterIPs"] = [spec["clusterIP"]]
        self._allocate_node_ports(name, spec, {})
        obj["status"] = {"loadBalancer": {}}

    def _update_service(self, rt: ResourceType, new: Obj, old: Obj) -> None:
        spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
        self._default_service(spec)
        name = new["metadata"]["name"]
        old_ip = old_spec.get("clusterIP")
        if spec["type"] == "ExternalName":
            self.service_ips.release(old_ip)
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        else:
            if not spec.get("clusterIP") and old_ip:
                spec["clusterIP"] = old_ip  # omitted on update: keep the allocated one
            if old_ip and spec.get("clusterIP") != old_ip:
                raise invalid(rt.kind, name, "", [(
                    "spec.clusterIPs[0]", "FieldValueInvalid",
                    f'Invalid value: []string{{"{spec.get("clusterIP")}"}}: '
                    "may not change once set")])
            if not spec.get("clusterIP"):
                spec["clusterIP"] = self.service_ips.allocate()
            elif not old_ip and spec["clusterIP"] != "None":
                self._reserve_ip(name, spec["clusterIP"])
            spec["clusterIPs"] = [spec["clusterIP"]]
        old_ports = {p.get("port"): p.get("nodePort") for p in old_spec.get("ports") or []}
        self._allocate_node_ports(name, spec, old_ports)

    @staticmethod
    def _default_service(spec: Obj) -> None:
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))

    def _reserve_ip(self, name: str, ip: str) -> None:
        try:
            self.service_ips.reserve(ip)
        except AllocationError as e:
            raise invalid("Service", name, "", [("spec.clusterIPs", "FieldValueInvalid",
                          f'Invalid value: []string{{"{ip}"}}: {e}')]) from None

    def _allocate_node_ports(self, name: str, spec: Obj, old: dict[Any, Any]) -> None:
        if spec["type"] not in ("NodePort", "LoadBalancer"):
            for port in spec.get("ports") or []:
                self.node_ports.release(old.get(port.get("port")))
                port.pop("nodePort", None)
            return
        for index, port in enumerate(spec.get("ports") or []):
            wanted, had = port.get("nodePort"), old.get(port.get("port"))
            if wanted and wanted == had:
                continue
            if not wanted and had:
                port["nodePort"] = had
                continue
            try:
                if wanted:
                    self.node_ports.reserve(wanted)
                else:
                    port["nodePort"] = self.node_ports.allocate()
            except AllocationError as e:
                raise invalid("Service", name, "", [(f"spec.ports[{index}].nodePort",
                              "FieldValueInvalid", f"Invalid value: {wanted}: {e}")]) from None

    def _release_service(self, obj: Obj) -> None:
        spec = obj.get("spec") or {}
        self.service_ips.release(spec.get("clusterIP"))
        for port in spec.get("ports") or []:
            self.node_ports.release(port.get("nodePort"))

    # --- networking.k8s.io and discovery.k8s.io ------------------------------------------

    def _create_networkpolicy(self, rt: ResourceType, obj: Obj) -> None:
        self._update_networkpolicy(rt, obj, obj)

    def _update_networkpolicy(self, rt: ResourceType, new: Obj, old: Obj) -> None:
        # SetDefaults_NetworkPolicy: "Ingress" always, "Egress" when egress rules exist.
        spec = new.setdefault("spec", {})
        spec.setdefault("podSelector", {})
        if not spec.get("policyTypes"):
            spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
        for direction in ("ingress", "egress"):
            for rule in spec.get(direction) or []:
                for port in rule.get("ports") or []:
                    port.setdefault("protocol", "TCP")

    def _create_ingress(self, rt: ResourceType, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}

    def _create_endpointslice(self, rt: ResourceType, obj: Obj) -> None:
        self._update_endpointslice(rt, obj, obj)

    def _update_endpointslice(self, rt: ResourceType, new: Obj, old: Obj) -> None:
        if not new.get("addressType"):
            raise invalid(rt.kind, new["metadata"]["name"], rt.group,
                          [("addressType", "FieldValueRequired", "Required value")])
        for port in new.get("ports") or []:
            port.setdefault("protocol", "TCP")


def check_resource_version(value: Any) -> int | None:
    """The object's resourceVersion as an int; None when unset (unconditional update)."""
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, "BadRequest", f'invalid resource version: "{value}"') from None

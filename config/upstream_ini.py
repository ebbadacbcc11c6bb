"""Read the upstream `contrail-kubernetes.conf` (INI) so operators can migrate to ckm.

Maps the upstream options that ckm has an equivalent for. An option that changes upstream's
behaviour and has no equivalent is never dropped silently: a warning names it and says what ckm
does instead, or, where ignoring it would put pods on a different network (nested mode, pods on
the IP fabric), the file is refused. Plumbing options (cassandra, rabbit, sandesh, logging, ...)
mean nothing here and are ignored. An unknown key gets a warning with "did you mean".
"""

from __future__ import annotations

import ast
import configparser
import difflib
from collections.abc import Callable
from pathlib import Path

from config.errors import ConfigError

# Upstream key -> the section it normally lives in. Keys are looked up there first, then in
# any other section, because real-world files are not consistent about it.
_HOME = {
    "pod_subnets": "KUBERNETES", "service_subnets": "KUBERNETES", "cluster_name": "KUBERNETES",
    "kubernetes_api_server": "KUBERNETES", "kubernetes_api_port": "KUBERNETES",
    "kubernetes_api_secure_port": "KUBERNETES", "kubernetes_cluster_domain": "KUBERNETES",
    "token": "DEFAULTS", "public_fip_pool": "VNC",
    "vnc_endpoint_ip": "VNC", "vnc_endpoint_port": "VNC",
    "auth_user": "AUTH", "auth_password": "AUTH", "auth_tenant": "AUTH", "auth_token_url": "AUTH",
    "kube_timer_interval": "DEFAULTS",
}

def _true(value: str) -> bool:  # how upstream reads its boolean options
    return value.strip().lower() == "true"


def _set(value: str) -> bool:  # a non-empty value (dicts: not `{}`)
    try:
        return bool(ast.literal_eval(value.strip())) if value.strip().startswith("{") \
            else bool(value.strip())
    except (ValueError, SyntaxError):
        return bool(value.strip())


# Upstream options that change its behaviour and that ckm does not have: key -> (does this
# value ask for something ckm does not do?, refuse?, what ckm does instead). Each predicate
# reads the value as upstream's args.py does.
_UNSUPPORTED: dict[str, tuple[Callable[[str], bool], bool, str]] = {
    "nested_mode": (lambda v: v.strip() == "1", True,
                    "nested mode (Kubernetes on Contrail VMs) is not supported; ignoring it "
                    "would give the pods addresses on a different network"),
    "ip_fabric_forwarding": (_true, True,
                             "ckm puts pods on cluster-network, never on the IP fabric; "
                             "ignoring it would renumber every pod"),
    "ip_fabric_snat": (_true, False,
                       "ckm sets up no SNAT to the fabric: pods reach outside the cluster "
                       "only through floating IPs"),
    "ip_fabric_subnets": (_set, False, "ckm makes no IP fabric IPAM; the subnets are unused"),
    "cluster_project": (_set, False,
                        "single-project mode is not supported: ckm makes one project per "
                        "namespace"),
    "cluster_network": (_set, False,
                        "ckm's shared pod network is always <domain>:<cluster>-default:"
                        "cluster-network"),
    "cluster_pod_network": (_set, False,
                            "ckm's shared pod network is always cluster-network"),
    "cluster_service_network": (_set, False,
                                "ckm puts service addresses on cluster-network"),
    "host_network_service": (_true, False,
                             "host-network pods are never loadbalancer members in ckm"),
    "kubernetes_cluster_owner": (lambda v: v.strip() not in ("", "k8s"), False,
                                 "ckm marks what it owns with its own annotations"),
    "kubernetes_api_secure_ip": (_set, False,
                                 "ckm reads kubernetes_api_server only; set kube_url for "
                                 "another address"),
    "api_service_link_local": (_true, False,
                               "ckm makes no link-local service for the API server"),
    "kube_object_cache": (lambda v: not _true(v), False,
                          "ckm always keeps its own cache (in Redis)"),
}
# What upstream does when the option is absent, where that differs from what ckm does.
_ABSENT = {"api_service_link_local": "True"}

# Options of the upstream process that shape nothing ckm builds: its database, message bus,
# logging and introspection; the tuning of the firewall policies ckm replaces with security
# groups (NetworkPolicy semantics are ckm's contract); settings upstream itself never read.
_PLUMBING = {
    "orchestrator", "worker_id", "host_ip", "http_server_port", "http_server_ip", "collectors",
    "logger_class", "logging_conf", "use_syslog", "syslog_facility", "zk_server_ip",
    "cluster_id", "stats_collector", "disable_object_logs", "db_driver", "global_tags",
    "aps_name", "secure_project", "kubernetes_service_name", "admin_user", "admin_password",
    "admin_tenant", "public_network_name", "public_network",
}
_PLUMBING_PREFIXES = ("cassandra_", "rabbit_", "kombu_", "log_", "disc_server_", "sandesh_",
                      "introspect_", "tcp_keepalive_", "api_server_", "config_db_", "etcd_")
_KNOWN = set(_HOME) | set(_UNSUPPORTED) | _PLUMBING


def _findings(ini: _Ini) -> tuple[list[str], list[str]]:
    """(refusals, warnings) for the options ckm does not carry over."""
    refusals, warnings = [], []
    seen = set()
    for section in ini.parser.sections():
        for key, raw in ini.parser.items(section):
            seen.add(key)
            where = f"{ini.path} [{section}] {key} = {raw.strip()!r}"
            if key in _UNSUPPORTED:
                asks_otherwise, refuse, instead = _UNSUPPORTED[key]
                if asks_otherwise(raw):
                    (refusals if refuse else warnings).append(
                        f"{where}: not supported: {instead}")
            elif key in _KNOWN or key.startswith(_PLUMBING_PREFIXES) or section == "SANDESH":
                continue
            else:
                close = difflib.get_close_matches(key, sorted(_KNOWN), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                warnings.append(f"{where}: not an upstream kube-manager option, ignored{hint}")
    for key, upstream in _ABSENT.items():
        if key not in seen:
            warnings.append(f"{ini.path}: {key} is absent, so upstream used {upstream}: not "
                            f"supported: {_UNSUPPORTED[key][2]}")
    return refusals, warnings


class _Ini:
    def __init__(self, path: Path):
        self.path = path
        # [DEFAULT] is an ordinary section here (each option is reported where it is written),
        # and `; comments` end a value, as in the Python 2 parser upstream used
        self.parser = configparser.ConfigParser(interpolation=None, strict=False,
                                                default_section="\0none",
                                                inline_comment_prefixes=(";",))
        try:
            with path.open(encoding="utf-8") as handle:
                self.parser.read_file(handle)
        except (OSError, configparser.Error) as exc:
            raise ConfigError(f"cannot read upstream INI {path}: {exc}") from exc

    def get(self, key: str) -> tuple[str, str] | None:
        """(value, origin) of an upstream key, or None when absent or empty."""
        home = _HOME[key]
        sections = sorted(self.parser.sections(), key=lambda s: s.upper() != home)
        for section in sections:
            value = self.parser.get(section, key, fallback="").strip()
            if value:
                return value, f"ini {self.path} [{section}] {key}"
        return None


def _port(ini: _Ini, key: str, default: int) -> tuple[int, str | None]:
    found = ini.get(key)
    if found is None:
        return default, None
    value, origin = found
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ConfigError(f"{key} = {value!r} ({origin}): a port must be 1-65535")
    return int(value), origin


def _fip_pool(value: str, origin: str) -> str:
    """Upstream writes the pool as a Python dict literal: {'domain': .., 'name': ..}."""
    try:
        pool = ast.literal_eval(value)
        return ":".join(pool[k] for k in ("domain", "project", "network", "name"))
    except (ValueError, SyntaxError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"public_fip_pool = {value!r} ({origin}): expected "
            "{'domain': .., 'project': .., 'network': .., 'name': ..}") from exc


def read_upstream_ini(path: Path) -> tuple[dict[str, tuple[object, str]], list[str]]:
    """ckm setting -> (value, origin) for everything the upstream file says, and warnings.
    Raise ConfigError naming every option that ckm cannot honour without changing the network."""
    ini = _Ini(path)
    refusals, warnings = _findings(ini)
    if refusals:
        raise ConfigError("upstream options ckm cannot honour (remove them to migrate):\n  "
                          + "\n  ".join(refusals))
    out: dict[str, tuple[object, str]] = {}
    for key, setting in (("pod_subnets", "pod_subnets"), ("service_subnets", "service_subnets"),
                         ("cluster_name", "cluster_name"), ("kubernetes_cluster_domain", "domain"),
                         ("token", "kube_token"), ("auth_user", "contrail_user"),
                         ("auth_password", "contrail_password"),
                         ("auth_tenant", "contrail_tenant")):
        if found := ini.get(key):
            out[setting] = found
    if (found := ini.get("public_fip_pool")) and _set(found[0]):  # `{}`: none, as upstream
        out["public_fip_pool"] = (_fip_pool(*found), found[1])
    if found := ini.get("auth_token_url"):
        out["keystone_url"] = found
        out["contrail_auth"] = ("keystone", found[1])
    if found := ini.get("kubernetes_api_server"):
        host, origin = found
        secure = "kube_token" in out
        port, port_origin = _port(
            ini, "kubernetes_api_secure_port" if secure else "kubernetes_api_port",
            8443 if secure else 8080)
        out["kube_url"] = (f"{'https' if secure else 'http'}://{host}:{port}",
                           origin + (f", {port_origin}" if port_origin else ""))
    if found := ini.get("vnc_endpoint_ip"):
        hosts, origin = found
        port, port_origin = _port(ini, "vnc_endpoint_port", 8082)
        urls = [f"http://{host}:{port}" for host in hosts.replace(",", " ").split()]
        out["contrail_urls"] = (urls, origin + (f", {port_origin}" if port_origin else ""))
    if found := ini.get("kube_timer_interval"):  # upstream's periodic full sync, 0 = off
        out["resync_interval"] = found
    return out, warnings

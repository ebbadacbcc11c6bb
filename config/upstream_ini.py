"""Read the upstream `contrail-kubernetes.conf` (INI) so operators can migrate to ckm.

Maps the upstream options that ckm has an equivalent for; every other upstream option is
ignored (upstream has dozens that make no sense here: cassandra, rabbit, sandesh, ...).
Returns, per ckm setting, the value and a description of where it came from.
"""

from __future__ import annotations

import ast
import configparser
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
}


class _Ini:
    def __init__(self, path: Path):
        self.path = path
        self.parser = configparser.ConfigParser(interpolation=None, strict=False)
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


def read_upstream_ini(path: Path) -> dict[str, tuple[object, str]]:
    """ckm setting -> (value, origin) for everything the upstream file says."""
    ini = _Ini(path)
    out: dict[str, tuple[object, str]] = {}
    for key, setting in (("pod_subnets", "pod_subnets"), ("service_subnets", "service_subnets"),
                         ("cluster_name", "cluster_name"), ("kubernetes_cluster_domain", "domain"),
                         ("token", "kube_token"), ("auth_user", "contrail_user"),
                         ("auth_password", "contrail_password"),
                         ("auth_tenant", "contrail_tenant")):
        if found := ini.get(key):
            out[setting] = found
    if found := ini.get("public_fip_pool"):
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
    return out

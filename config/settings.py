"""Every knob ckm has, in one typed model, with the defaults of the contract (contrail-model.md).

Values are plain (flat) so that each one maps to one `CKM_<NAME>` environment variable, one
config-file key and one command-line flag. The loader (`config.loading`) decides precedence and
remembers where each value came from; this module only validates.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

Network = ipaddress.IPv4Network
Port = Annotated[int, Field(ge=1, le=65535)]


def _split(value):
    """Accept a list, or a string with commas and/or spaces (env vars, the upstream INI)."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [part for part in value.replace(",", " ").split() if part]
    return value


class Settings(BaseSettings):
    """ckm's effective configuration. Secrets are SecretStr so they never print by accident.

    `Settings()` alone gives the built-in defaults: the layered loader (`config.loading.load`)
    reads files, environment and flags itself so that it can say where each value came from.
    """

    model_config = SettingsConfigDict(
        env_prefix="CKM_", extra="forbid", frozen=True, validate_default=True,
        enable_decoding=False)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_others
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    # --- the Contrail model (contrail-model.md, "Configuration that shapes the model")
    cluster_name: str = Field("k8s", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                              description="prefix that scopes every Contrail name")
    domain: str = Field("default-domain", min_length=1, description="Contrail domain")
    pod_subnets: list[Network] = Field(default_factory=lambda: [Network("10.32.0.0/12")])
    service_subnets: list[Network] = Field(default_factory=lambda: [Network("10.96.0.0/12")])
    public_fip_pool: str | None = Field(
        None, description="domain:project:network:pool for LoadBalancer / externalIPs / Ingress")
    unmanaged_namespaces: list[str] = Field(default_factory=lambda: ["kube-system"])
    isolation_annotations: list[str] = Field(
        default_factory=lambda: ["opencontrail.kubernetes.isolated", "opencontrail.org/isolation"])
    app_label: str = "opencontrail.org/name"
    ingress_class: str = "opencontrail"

    # --- Kubernetes API
    kube_url: str | None = Field(None, description="API server URL; unset = kubeconfig/in-cluster")
    kubeconfig: str | None = None
    kube_token: SecretStr | None = None
    kube_ca_file: str | None = None
    lease_namespace: str = Field("kube-system", description="namespace of the watcher's Lease")
    lease_name: str = "ckm-watcher"
    watcher_lease_seconds: int = Field(
        15, ge=2, description="the watchers' Lease duration: a standby takes over after it")

    # --- Contrail config API
    contrail_urls: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8082"])
    contrail_auth: Literal["none", "keystone"] = "none"
    keystone_url: str | None = None
    contrail_user: str = "admin"
    contrail_password: SecretStr | None = None
    contrail_tenant: str = "admin"
    contrail_ca_file: str | None = None
    contrail_timeout: float = Field(30.0, gt=0, description="seconds per HTTP call")
    contrail_retry_seconds: float = Field(
        60.0, ge=0, description="bound on the total time one call spends retrying")
    contrail_max_inflight: int = Field(
        64, ge=1, description="cluster-wide cap on concurrent Contrail calls")
    contrail_rate_limit: float = Field(
        0.0, ge=0, description="cluster-wide Contrail calls per second; 0 = unlimited")

    # --- queue and engine
    broker_url: str = Field("redis://127.0.0.1:6379/0", description=(
        "Redis for the queue and state: redis://host:port/db, or Sentinel as "
        "sentinel://h1:26379;sentinel://h2:26379/db"))
    redis_sentinel_master: str = Field("mymaster", description="Sentinel master name")
    max_attempts: int = Field(8, ge=1, description="attempts before a key is a failed sync")
    backoff_base: float = Field(0.05, gt=0, description="first retry delay, seconds")
    backoff_cap: float = Field(300.0, gt=0, description="longest retry delay, seconds")
    lease_seconds: float = Field(
        60.0, gt=0, description="a running key's lease; a dead worker's key is rescued after it")
    resend_seconds: float = Field(
        15.0, gt=0, description="a key queued this long without running is sent again "
        "(its message may be lost); then at doubling intervals")
    settle_seconds: float = Field(
        0.05, ge=0, description="a key changed while it ran waits this long before re-running")
    resync_interval: float = Field(600.0, ge=0, description="full resync + GC period; 0 = off")
    resync_page: int = Field(
        500, ge=1, description="store entries a resync pass reads per step")
    resync_lane: int = Field(
        1000, ge=1, description="a resync pass hands out more keys only while fewer than "
        "this many wait on the resync lane (live changes never queue behind more)")
    worker_concurrency: int = Field(16, ge=1, description="threads per worker process")

    # --- operations
    flower_basic_auth: SecretStr | None = Field(None, description="user:password for Flower")
    metrics_port: int = Field(
        0, ge=0, le=65535, description="/metrics (+ /healthz, /readyz) port; 0 = off")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    _split_lists = field_validator(
        "unmanaged_namespaces", "isolation_annotations",
        "contrail_urls", mode="before")(_split)

    @field_validator("pod_subnets", "service_subnets", mode="before")
    @classmethod
    def _cidrs(cls, values: list) -> list[Network]:
        out = []
        for value in _split(values):
            try:
                out.append(Network(value))
            except ValueError as exc:  # the stdlib says why: host bits set, bad prefix, ...
                raise ValueError(f"{value!r} is not a valid IPv4 CIDR ({exc})") from None
        return out

    @field_validator("contrail_urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        if not urls:
            raise ValueError("at least one Contrail API URL is needed")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return [url.rstrip("/") for url in urls]

    @field_validator("public_fip_pool")
    @classmethod
    def _fip_pool(cls, value: str | None) -> str | None:
        if value is not None and (len(value.split(":")) != 4 or not all(value.split(":"))):
            raise ValueError("expected domain:project:network:pool")
        return value

    @model_validator(mode="after")
    def _subnets_disjoint(self) -> Settings:
        for pod in self.pod_subnets:
            for svc in self.service_subnets:
                if pod.overlaps(svc):
                    raise ValueError(
                        f"pod_subnets {pod} overlaps service_subnets {svc}; they must be disjoint")
        if self.backoff_base > self.backoff_cap:
            raise ValueError("backoff_base is larger than backoff_cap")
        return self

    @property
    def public_fip_pool_fq_name(self) -> list[str] | None:
        return self.public_fip_pool.split(":") if self.public_fip_pool else None


SECRET_FIELDS = frozenset(
    name for name, field in Settings.model_fields.items()
    if "SecretStr" in str(field.annotation))

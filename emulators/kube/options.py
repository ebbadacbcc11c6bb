"""Every knob of the kube emulator in one documented dataclass; `create_app(**options)` takes
these names as keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Options:
    service_cidr: str = "10.96.0.0/12"
    """clusterIPs are allocated from here (the first address goes to `default/kubernetes`)."""
    history_size: int = 1000
    """Events kept per resource type for watch resumption; older resumes get 410 Expired."""
    bookmark_interval: float = 60.0
    """Seconds between BOOKMARK events on an idle watch that asked for them."""
    watch_timeout: float = 1800.0
    """Watch length when the client gives no timeoutSeconds (the real server picks 30-60 min)."""
    namespace_grace: float = 0.0
    """Seconds a deleted Namespace stays Terminating before it and its objects go (0: at once)."""
    continue_ttl: float = 300.0
    """Seconds a list `continue` token stays valid (then 410 Expired)."""
    kubernetes_service: bool = True
    """Create `default/kubernetes` (ClusterIP .1, port 443) as every real cluster has."""
    state_file: str | None = None
    """Keep the cluster in this JSON file across restarts (None: in memory only)."""

    # --- faults (also settable at runtime under /_emulator/faults) ---
    latency: float = 0.0
    """Seconds added before every API request is handled."""
    unavailable_for: float = 0.0
    """Answer 503 ServiceUnavailable to API requests for this many seconds after start."""

    # --- the simulated node layer (on when nodes > 0 or contrail_url is set) ---
    nodes: int = 0
    """Node objects to create (node-1 ... node-N); 0 with a contrail_url means 1."""
    contrail_url: str | None = None
    """Contrail config API base URL: register vrouters, read pod ports and IPs from it.
    Without it the simulated CNI hands out addresses from `pod_cidr` itself."""
    node_cidr: str = "172.18.0.0/24"
    """Node addresses (node-i gets the i+1-th address)."""
    pod_cidr: str = "10.244.0.0/16"
    """Pod addresses when there is no Contrail to allocate them."""
    cni_poll_interval: float = 0.2
    """First delay between Contrail port lookups for a waiting pod; doubles up to 2 s."""

    @property
    def node_layer(self) -> bool:
        return self.nodes > 0 or bool(self.contrail_url)

    @property
    def node_count(self) -> int:
        return self.nodes or (1 if self.contrail_url else 0)

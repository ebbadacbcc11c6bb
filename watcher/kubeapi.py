"""The Kubernetes side of the watcher: an official-client ApiClient and the kinds it lists.

Lists and watches go through the generated API functions with `_preload_content=False`: the
client handles configuration, auth and TLS, and ckm reads the JSON itself (building model
objects for 10,000 pods costs more than the whole reconcile).
"""

from __future__ import annotations

from dataclasses import dataclass

import kubernetes.client
import kubernetes.config

from config.settings import Settings


@dataclass(frozen=True)
class KindApi:
    kind: str
    api: str       # generated API class
    list_fn: str   # its list-across-all-namespaces function


KINDS: dict[str, KindApi] = {k.kind: k for k in (
    KindApi("Namespace", "CoreV1Api", "list_namespace"),
    KindApi("Node", "CoreV1Api", "list_node"),
    KindApi("Pod", "CoreV1Api", "list_pod_for_all_namespaces"),
    KindApi("Service", "CoreV1Api", "list_service_for_all_namespaces"),
    KindApi("EndpointSlice", "DiscoveryV1Api", "list_endpoint_slice_for_all_namespaces"),
    KindApi("NetworkPolicy", "NetworkingV1Api", "list_network_policy_for_all_namespaces"),
    KindApi("Ingress", "NetworkingV1Api", "list_ingress_for_all_namespaces"),
)}


def api_client(settings: Settings) -> kubernetes.client.ApiClient:
    """URL (+token, CA) from settings; else the kubeconfig; else in-cluster config."""
    if settings.kube_url:
        conf = kubernetes.client.Configuration()
        conf.host = settings.kube_url
        if settings.kube_token:
            conf.api_key = {"authorization": settings.kube_token.get_secret_value()}
            conf.api_key_prefix = {"authorization": "Bearer"}
        if settings.kube_ca_file:
            conf.ssl_ca_cert = settings.kube_ca_file
        return kubernetes.client.ApiClient(conf)
    try:
        return kubernetes.config.new_client_from_config(config_file=settings.kubeconfig)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_incluster_config()
        return kubernetes.client.ApiClient()


def list_function(client: kubernetes.client.ApiClient, kind: str):
    spec = KINDS[kind]
    return getattr(getattr(kubernetes.client, spec.api)(client), spec.list_fn)

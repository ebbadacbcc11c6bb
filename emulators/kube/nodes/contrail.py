"""What the simulated vrouter agents and CNI ask the Contrail config API, over raw REST (httpx).

* `register_vrouter`: `POST /virtual-routers` for a node, as a vrouter agent's provisioning
  does (409 "already exists" is fine).
* `pod_addresses`: for many pods at once, the address of the port Contrail made for each:
  the virtual-machine-interface that refers to the virtual-machine whose uuid is the pod uid,
  and the instance-ip that refers to that interface. Two list calls per round, whatever
  the number of pods (`back_ref_id` / `obj_uuids`; POSTed to /list-bulk-collection above 25
  uuids as vnc_api does), instead of three GETs per pod.
"""

from __future__ import annotations

from typing import Any

import httpx

GLOBAL_SYSTEM_CONFIG = "default-global-system-config"
_BULK_THRESHOLD = 25  # vnc_api's POST_FOR_LIST_THRESHOLD


class ContrailPorts:
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.client = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout)

    async def close(self) -> None:
        await self.client.aclose()

    async def register_vrouter(self, node: str, ip: str) -> None:
        """Create the node's virtual-router; raises httpx errors for the caller to retry."""
        body = {"virtual-router": {
            "fq_name": [GLOBAL_SYSTEM_CONFIG, node], "parent_type": "global-system-config",
            "virtual_router_ip_address": ip}}
        response = await self.client.post("/virtual-routers", json=body)
        if response.status_code != 409:
            response.raise_for_status()

    async def _list(self, resource: str, anchor: str, uuids: list[str],
                    fields: str | None = None) -> list[dict[str, Any]]:
        keys: dict[str, Any] = {anchor: ",".join(uuids), "detail": True, "count": False,
                                "shared": False}
        if fields:
            keys["fields"] = fields
        if len(uuids) > _BULK_THRESHOLD:
            response = await self.client.post("/list-bulk-collection",
                                              json={**keys, "type": resource})
        else:
            params = {k: (str(v) if isinstance(v, bool) else v) for k, v in keys.items()}
            response = await self.client.get(f"/{resource}s", params=params)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return [entry.get(resource, entry) for entry in response.json().get(f"{resource}s", [])]

    async def pod_addresses(self, pod_uids: list[str]) -> dict[str, str]:
        """pod uid → IPv4 address, for the pods whose port and instance-ip exist."""
        if not pod_uids:
            return {}
        interfaces = await self._list("virtual-machine-interface", "back_ref_id", pod_uids,
                                      fields="instance_ip_back_refs")
        wanted = set(pod_uids)
        iip_owner: dict[str, str] = {}
        for vmi in interfaces:
            vms = [r.get("uuid") for r in vmi.get("virtual_machine_refs") or []]
            owner = next((u for u in vms if u in wanted), None)
            for ref in vmi.get("instance_ip_back_refs") or []:
                if owner and ref.get("uuid"):
                    iip_owner.setdefault(ref["uuid"], owner)
        if not iip_owner:
            return {}
        found: dict[str, str] = {}
        for iip in await self._list("instance-ip", "obj_uuids", list(iip_owner)):
            address = iip.get("instance_ip_address")
            owner = iip_owner.get(iip.get("uuid", ""))
            if owner and address and ":" not in address:
                found.setdefault(owner, address)
        return found

"""vrouters refer to the VMs of the pods on their node; those refs must go before a VM can."""

from __future__ import annotations

from contrail.client import ContrailClient


def unlink_vrouters(client: ContrailClient, vm_uuid: str) -> None:
    """vrouters refer to the VMs of their pods; the refs must go before the VM can."""
    vm = client.read("virtual-machine", vm_uuid, back_refs=True)
    for vrouter in vm.get("virtual_router_back_refs") or []:
        client.ref_update("virtual-router", vrouter["uuid"], "virtual-machine", vm_uuid,
                          "DELETE")

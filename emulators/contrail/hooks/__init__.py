"""Per-type server behaviour, one module per area; `HOOKS` maps resource type -> `TypeHooks`."""

from __future__ import annotations

from emulators.contrail.hooks import addresses, network, ports, projects, security
from emulators.contrail.hooks.base import TypeHooks

HOOKS: dict[str, TypeHooks] = {
    **network.HOOKS,
    **addresses.HOOKS,
    **ports.HOOKS,
    **security.HOOKS,
    **projects.HOOKS,
}

__all__ = ["HOOKS", "TypeHooks"]

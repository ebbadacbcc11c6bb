"""Read the parts of the Contrail configuration that decide reachability, in one pass."""

from __future__ import annotations

from contrail.client import ContrailClient


def load(client: ContrailClient, types: tuple[str, ...]) -> dict[str, list[dict]]:
    """Every object of each type, in full (one list call per type)."""
    return {type_: client.list(type_, detail=True) for type_ in types}

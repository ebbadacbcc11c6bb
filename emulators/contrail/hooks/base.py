"""The hook points a type can fill in, and small helpers the hook modules share.

Backend order on create: `prepare(b, body)` (may rewrite the body, before any check),
generic checks, `pre_create(b, obj, body)` (validate, then allocate last so a refusal leaks
nothing), insert, `post_create(b, obj)` (derived objects). Update: `pre_update(b, obj, props,
refs)` may edit the pending changes; `post_update(b, obj)` after they are applied. Delete:
`pre_delete(b, obj)` before the generic refusal checks, `post_delete(b, obj)` after removal (the
detached object still shows its refs). `restore(b, obj)` rebuilds derived state after a load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Hook = Callable[..., Any] | None


@dataclass(frozen=True)
class TypeHooks:
    prepare: Hook = None
    pre_create: Hook = None
    post_create: Hook = None
    pre_update: Hook = None
    post_update: Hook = None
    pre_delete: Hook = None
    post_delete: Hook = None
    restore: Hook = None


def first(targets: dict[str, Any] | None) -> str | None:
    """The first target uuid of a ref field (refs are `{uuid: attr}`)."""
    return next(iter(targets or {}), None)

"""`limit` / `continue` pagination with consistent snapshots.

The real server serves every page of a paginated list from etcd at the first page's
resourceVersion, so pages never show a later write. Here the first page keeps the whole
matched result (a list of references to immutable stored dicts: cheap) under a random id,
and the opaque `continue` token names it. Tokens expire after `ttl` seconds (as etcd
compaction expires real ones) or when more than `max_snapshots` lists are in flight; an
expired token gets 410 Expired.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections import OrderedDict
from typing import Any

from emulators.kube import errors

Obj = dict[str, Any]


class Paginator:
    def __init__(self, *, ttl: float = 300.0, max_snapshots: int = 64) -> None:
        self.ttl = ttl
        self.max_snapshots = max_snapshots
        self._snapshots: OrderedDict[str, tuple[float, int, list[Obj]]] = OrderedDict()

    def first_page(self, items: list[Obj], rv: int,
                   limit: int | None) -> tuple[list[Obj], str | None, int | None]:
        if not limit or limit <= 0 or len(items) <= limit:
            return items, None, None
        snapshot_id = secrets.token_hex(8)
        self._snapshots[snapshot_id] = (time.monotonic(), rv, items)
        while len(self._snapshots) > self.max_snapshots:
            self._snapshots.popitem(last=False)
        return self._page(snapshot_id, rv, items, 0, limit)

    def next_page(self, token: str,
                  limit: int | None) -> tuple[list[Obj], int, str | None, int | None]:
        snapshot_id, start = self._decode(token)
        found = self._snapshots.get(snapshot_id)
        if found is None or time.monotonic() - found[0] > self.ttl:
            self._snapshots.pop(snapshot_id, None)
            raise errors.continue_expired()
        _, rv, items = found
        page, next_token, remaining = self._page(snapshot_id, rv, items, start, limit)
        if next_token is None:
            self._snapshots.pop(snapshot_id, None)
        return page, rv, next_token, remaining

    def _page(self, snapshot_id: str, rv: int, items: list[Obj], start: int,
              limit: int | None) -> tuple[list[Obj], str | None, int | None]:
        end = len(items) if not limit or limit <= 0 else start + limit
        page = items[start:end]
        if end >= len(items):
            return page, None, None
        return page, self._encode(snapshot_id, rv, end), len(items) - end

    @staticmethod
    def _encode(snapshot_id: str, rv: int, start: int) -> str:
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "id": snapshot_id, "start": start})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def _decode(token: str) -> tuple[str, int]:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded))
            return str(data["id"]), int(data["start"])
        except (ValueError, KeyError, TypeError):
            raise errors.bad_request(f"invalid continue token: {token!r}") from None

"""The desired-state store: per Kubernetes object, the projection reconcilers need, in Redis.

Written by the watcher, read by the workers (the one module both sides share). Per kind:
  ckm:obj:<Kind>         hash  "ns/name" -> canonical JSON projection
  ckm:hash:<Kind>        hash  "ns/name" -> sha1 of that JSON (cheap no-op detection)
  ckm:tomb:<Kind>        hash  "ns/name" -> last projection of a deleted object, kept until
                               its cleanup succeeded (so the cleanup knows the old uid)
  ckm:idx:<Kind>:<ns>    set   names in a namespace
  ckm:rv:<Kind>          string  last resourceVersion seen (resume point after a restart)
Cluster-scoped objects use the namespace "".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import redis

_PUT = """
-- KEYS: obj, hash, tomb, idx. ARGV: field, json, sha, name. Returns 1 if it changed.
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[4])
return 1
"""

_DELETE = """
-- KEYS: obj, hash, tomb, idx. ARGV: field, name. Returns the projection it had, or false.
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], old)
redis.call('SREM', KEYS[4], ARGV[2])
return old
"""


def canonical(projection: dict[str, Any]) -> str:
    return json.dumps(projection, sort_keys=True, separators=(",", ":"))


def fingerprint(projection: dict[str, Any]) -> str:
    return hashlib.sha1(canonical(projection).encode()).hexdigest()


def _field(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


class DesiredStore:
    def __init__(self, client: redis.Redis):
        self.redis = client
        self._put = client.register_script(_PUT)
        self._delete = client.register_script(_DELETE)

    @staticmethod
    def _keys(kind: str, namespace: str) -> list[str]:
        return [f"ckm:obj:{kind}", f"ckm:hash:{kind}", f"ckm:tomb:{kind}",
                f"ckm:idx:{kind}:{namespace}"]

    def put(self, kind: str, namespace: str, name: str, projection: dict[str, Any]) -> bool:
        """Store the projection; False when it equals the stored one (nothing to do)."""
        text = canonical(projection)
        sha = hashlib.sha1(text.encode()).hexdigest()
        return bool(self._put(keys=self._keys(kind, namespace),
                              args=[_field(namespace, name), text, sha, name]))

    def delete(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Remove the object, keeping a tombstone; returns its last projection if it had one."""
        old = self._delete(keys=self._keys(kind, namespace), args=[_field(namespace, name), name])
        return json.loads(old) if old else None

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        raw = self.redis.hget(f"ckm:obj:{kind}", _field(namespace, name))
        return json.loads(raw) if raw else None

    def get_many(self, kind: str, fields: list[tuple[str, str]]) -> list[dict | None]:
        if not fields:
            return []
        raws = self.redis.hmget(f"ckm:obj:{kind}", [_field(*f) for f in fields])
        return [json.loads(r) if r else None for r in raws]

    def tombstone(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        raw = self.redis.hget(f"ckm:tomb:{kind}", _field(namespace, name))
        return json.loads(raw) if raw else None

    def forget_tombstone(self, kind: str, namespace: str, name: str) -> None:
        self.redis.hdel(f"ckm:tomb:{kind}", _field(namespace, name))

    def hashes(self, kind: str) -> dict[str, str]:
        """"ns/name" -> fingerprint of every stored object of a kind (for relist diffs)."""
        return {_text(k): _text(v) for k, v in self.redis.hgetall(f"ckm:hash:{kind}").items()}

    def names(self, kind: str, namespace: str) -> list[str]:
        return sorted(_text(n) for n in self.redis.smembers(f"ckm:idx:{kind}:{namespace}"))

    def items(self, kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(namespace, name, projection) of every stored object of a kind."""
        for field, raw in self.redis.hscan_iter(f"ckm:obj:{kind}", count=1000):
            namespace, _, name = _text(field).partition("/")
            yield namespace, name, json.loads(raw)

    def in_namespace(self, kind: str, namespace: str) -> list[tuple[str, dict[str, Any]]]:
        names = self.names(kind, namespace)
        return [(n, p) for n, p in zip(names, self.get_many(kind, [(namespace, n) for n in names]),
                                       strict=True) if p is not None]

    def tombstones(self, kind: str) -> list[tuple[str, str]]:
        return [tuple(_text(f).partition("/")[::2]) for f in self.redis.hkeys(f"ckm:tomb:{kind}")]

    def resource_version(self, kind: str) -> str | None:
        raw = self.redis.get(f"ckm:rv:{kind}")
        return _text(raw) if raw else None

    def set_resource_version(self, kind: str, version: str) -> None:
        self.redis.set(f"ckm:rv:{kind}", version)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value

"""The desired-state store: per Kubernetes object, the projection reconcilers need, in Redis.

Written by the watcher, read by the workers (the one module both sides share). Per kind:
  ckm:obj:<Kind>         hash  "ns/name" -> canonical JSON projection
  ckm:hash:<Kind>        hash  "ns/name" -> sha1 of that JSON (cheap no-op detection)
  ckm:tomb:<Kind>        hash  "ns/name" -> last projection of a deleted object, kept until
                               its cleanup succeeded (so the cleanup knows the old uid)
  ckm:orv:<Kind>         hash  "ns/name" -> resourceVersion of the last event applied to it
  ckm:idx:<Kind>:<ns>    set   names in a namespace
  ckm:rv:<Kind>          string  resume point: resourceVersion of the last event handled
  ckm:gen:<Kind>         string  generation: changes with every write of the reflector that
                               listed the kind; a reflector that finds another value (Redis
                               lost data, or came back from an older snapshot) must relist
Cluster-scoped objects use the namespace "".

Every watcher write is one Lua call that also (a) saves the resume point, so a restarted
watcher never replays what it already stored, (b) refuses a watch event at or before the
resume point (a replay) and an event older than the stored one for the same object,
(c) refuses a writer whose leader term is stale (a deposed watcher), (d) refuses a writer
whose generation is not the store's, and (e) puts the keys the change
affects into an outbox in the same step, so a crash between the write and the enqueue
loses no work (the sweeper drains old outbox entries).

`ckm:store:complete` exists while every kind has been listed into this Redis; workers run
no key and GC deletes nothing without it (an empty store must never read as "deleted").
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from typing import Any

import redis

from tasks.indexes import INDEXED_KINDS, index_key, index_names
from tasks.indexes import VERSION as INDEX_VERSION

TERM = "ckm:term"
UNREAD = object()  # `old` not given: the writer reads it
INDEXES = "ckm:store:indexes"  # the version of tasks.indexes the index sets were built by
COMPLETE = "ckm:store:complete"
OUTBOX = "ckm:q:outbox"             # key -> ms it was written; drained by the sweeper
URGENT_OUTBOX = "ckm:q:outbox:urgent"

# Statuses of a write.
CHANGED, UNCHANGED, STALE, FENCED, LOST = 1, 0, -1, -2, -3

_WRITE = """
-- KEYS: obj, hash, tomb, idx, orv, rv, gen, term, complete, outbox
-- ARGV: op (put|del|advance|listed), field, name, json, sha, object rv, resume rv,
--       expected generation ('' = do not check: a relist), term, L, J, L index sets the
--       object leaves, J index sets it joins (both applied only when the write changes the
--       store), keys to enqueue...
-- Returns {status, generation, old projection or ''}.
local op, field = ARGV[1], ARGV[2]
local function int(v)
  if v and string.match(v, '^%d+$') then return tonumber(v) end
  return nil
end
local function older(a, b)  -- a strictly older than b; unknown formats are never older
  local x, y = int(a), int(b)
  return x ~= nil and y ~= nil and x < y
end
if ARGV[9] ~= '' then  -- '' : a tool's write outside any watch
  local term, held = tonumber(ARGV[9]), tonumber(redis.call('GET', KEYS[8]) or '-1')
  if term < held then return {-2, '', ''} end
  if term > held then redis.call('SET', KEYS[8], ARGV[9]) end
end
local gen = ''
if op == 'listed' then
  redis.call('SET', KEYS[6], ARGV[7])
  redis.call('SET', KEYS[7], ARGV[8])
  return {1, ARGV[8], ''}
end
if ARGV[8] ~= '' then
  if redis.call('GET', KEYS[7]) ~= ARGV[8] then
    redis.call('DEL', KEYS[9])
    return {-3, '', ''}
  end
end
local function advance()
  if ARGV[7] ~= '' and not older(ARGV[7], redis.call('GET', KEYS[6])) then
    redis.call('SET', KEYS[6], ARGV[7])
  end
  if ARGV[8] ~= '' then gen = redis.call('INCR', KEYS[7]) end  -- an integer reply
end
local leaving, joining = tonumber(ARGV[10]), tonumber(ARGV[11])
local first_key = 12 + leaving + joining
local function outbox()
  if #ARGV < first_key then return end
  local t = redis.call('TIME')
  local now = t[1] * 1000 + math.floor(t[2] / 1000)
  for i = first_key, #ARGV do redis.call('ZADD', KEYS[10], 'NX', now, ARGV[i]) end
end
local function reindex()  -- the object's secondary index sets it leaves and joins
  for i = 12, 11 + leaving do redis.call('SREM', ARGV[i], field) end
  for i = 12 + leaving, first_key - 1 do redis.call('SADD', ARGV[i], field) end
end
if op == 'advance' then advance(); return {0, gen, ''} end
-- a watch event at or before the resume point was handled already: a replay
if ARGV[8] ~= '' and int(ARGV[7]) and int(redis.call('GET', KEYS[6]))
   and not older(redis.call('GET', KEYS[6]), ARGV[7]) then
  return {-1, ARGV[8], ''}
end
if older(ARGV[6], redis.call('HGET', KEYS[5], field)) then
  advance()
  return {-1, gen, ''}
end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[5], field, ARGV[6]) end
if op == 'put' then
  if redis.call('HGET', KEYS[2], field) == ARGV[5] then advance(); return {0, gen, ''} end
  redis.call('HSET', KEYS[1], field, ARGV[4])
  redis.call('HSET', KEYS[2], field, ARGV[5])
  redis.call('HDEL', KEYS[3], field)
  redis.call('SADD', KEYS[4], ARGV[3])
  reindex()
  outbox()
  advance()
  return {1, gen, ''}
end
local old = redis.call('HGET', KEYS[1], field)
if not old then advance(); return {0, gen, ''} end
redis.call('HDEL', KEYS[1], field)
redis.call('HDEL', KEYS[2], field)
redis.call('HSET', KEYS[3], field, old)
redis.call('SREM', KEYS[4], ARGV[3])
reindex()
outbox()
advance()
return {1, gen, old}
"""


_COMPLETE = """
-- KEYS: complete, gen of each kind. ARGV: the generation each kind's reflector holds.
for i = 2, #KEYS do
  local gen = tonumber(redis.call('GET', KEYS[i]) or '-1')
  if gen < tonumber(ARGV[i - 1]) then return 0 end
end
redis.call('SET', KEYS[1], '1')
return 1
"""


class Fenced(Exception):
    """A newer leader writes the store: this writer must stop."""


class StoreLost(Exception):
    """The store is not the one this reflector wrote (Redis lost data or went back in time):
    relist."""


def canonical(projection: dict[str, Any]) -> str:
    return json.dumps(projection, sort_keys=True, separators=(",", ":"))


def fingerprint(projection: dict[str, Any]) -> str:
    return hashlib.sha1(canonical(projection).encode()).hexdigest()


def new_generation() -> str:
    """A fresh generation: random, so an older snapshot of Redis never holds it by chance."""
    return str(random.getrandbits(40) << 12)  # < 2**53: exact in Lua's numbers


def _field(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


class Writer:
    """One reflector's handle on the store: its kind, leader term and generation."""

    def __init__(self, store: DesiredStore, kind: str, *, term: int | None = None,
                 generation: str | None = None):
        self.store, self.kind, self.term, self.generation = store, kind, term, generation

    def _script_args(self, op: str, namespace: str, name: str, *, text: str = "",
                     sha: str = "", object_rv: str = "", resume_rv: str = "",
                     keys: list[str] = (), outbox: str = OUTBOX, check: bool = True,
                     old: dict | None = None, new: dict | None = None) -> dict:
        kind = self.kind
        before = {index_key(kind, i) for i in index_names(kind, old)}
        after = {index_key(kind, i) for i in index_names(kind, new)}
        leave, join = sorted(before - after), sorted(after)
        return {"keys": [f"ckm:obj:{kind}", f"ckm:hash:{kind}", f"ckm:tomb:{kind}",
                         f"ckm:idx:{kind}:{namespace}", f"ckm:orv:{kind}", f"ckm:rv:{kind}",
                         f"ckm:gen:{kind}", TERM, COMPLETE, outbox],
                "args": [op, _field(namespace, name), name, text, sha, object_rv or "",
                         resume_rv or "", (self.generation or "") if check else "",
                         "" if self.term is None else self.term, len(leave), len(join),
                         *leave, *join, *keys]}

    def _call(self, op: str, namespace: str, name: str, **options) -> tuple[int, str | None]:
        kind = self.kind
        status, gen, old = self.store._write(**self._script_args(op, namespace, name,
                                                                 **options))
        status = int(status)
        if status == FENCED:
            raise Fenced(f"{kind}: a newer leader (term > {self.term}) writes the store")
        if status == LOST:
            raise StoreLost(f"{kind}: the store's generation is not {self.generation}")
        if gen:
            self.generation = str(gen) if isinstance(gen, int) else _text(gen)
        return status, (_text(old) if old else None)

    def put(self, namespace: str, name: str, projection: dict[str, Any], *,
            object_rv: str = "", resume_rv: str = "", keys: list[str] = (),
            check: bool = True, old: Any = UNREAD) -> int:
        """Store a projection and queue `keys` in the outbox if it changed; CHANGED,
        UNCHANGED or STALE (an older event than the one stored: ignored). `old`: the stored
        projection, if the caller read it already (its index sets are left)."""
        if old is UNREAD:
            old = self.store.get(self.kind, namespace, name)
        text = canonical(projection)
        return self._call("put", namespace, name, text=text,
                          sha=hashlib.sha1(text.encode()).hexdigest(), object_rv=object_rv,
                          resume_rv=resume_rv, keys=keys, check=check, old=old,
                          new=projection)[0]

    def delete(self, namespace: str, name: str, *, object_rv: str = "", resume_rv: str = "",
               keys: list[str] = (), check: bool = True,
               old: Any = UNREAD) -> int:
        """Remove the object, keeping a tombstone; keys go to the urgent outbox."""
        if old is UNREAD:
            old = self.store.get(self.kind, namespace, name)
        return self._call("del", namespace, name, object_rv=object_rv, resume_rv=resume_rv,
                          keys=keys, outbox=URGENT_OUTBOX, check=check, old=old)[0]

    def advance(self, resume_rv: str) -> None:
        """Save the resume point (a bookmark, or an event that changed nothing)."""
        self._call("advance", "", "", resume_rv=resume_rv)

    def listed(self, resume_rv: str) -> None:
        """A full list is in the store: it resumes from `resume_rv` under a new generation."""
        self.generation = new_generation()
        self._call("listed", "", "", resume_rv=resume_rv)


class DesiredStore:
    def __init__(self, client: redis.Redis):
        self.redis = client
        self._write = client.register_script(_WRITE)
        self._complete = client.register_script(_COMPLETE)

    def writer(self, kind: str, *, term: int | None = None,
               generation: str | None = None) -> Writer:
        return Writer(self, kind, term=term, generation=generation)

    def put(self, kind: str, namespace: str, name: str, projection: dict[str, Any]) -> bool:
        """Store a projection outside any watch (tests, tools); False when it is unchanged."""
        return self.writer(kind).put(namespace, name, projection, check=False) == CHANGED

    def put_many(self, items: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        """Store (kind, namespace, name, projection) outside any watch in one pipeline
        (benchmarks and tools filling a store)."""
        pipe = self.redis.pipeline(transaction=False)
        for kind, namespace, name, projection in items:
            text = canonical(projection)  # a fresh store: no index sets to leave
            self._write(**self.writer(kind)._script_args(
                "put", namespace, name, text=text, check=False, new=projection,
                sha=hashlib.sha1(text.encode()).hexdigest()), client=pipe)
        pipe.execute()

    def delete(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Remove an object outside any watch, keeping a tombstone; returns what it had."""
        old = self.get(kind, namespace, name)
        self.writer(kind).delete(namespace, name, check=False)
        return old

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
        # The last event's resourceVersion goes with it: the resume point is past it, so no
        # replay can bring the deleted object back.
        field = _field(namespace, name)
        self.redis.pipeline().hdel(f"ckm:tomb:{kind}", field).hdel(f"ckm:orv:{kind}", field) \
            .execute()

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

    def indexed(self, kind: str, index: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(namespace, name, projection) of the objects in one index set (tasks.indexes)."""
        fields = sorted(_text(f) for f in self.redis.smembers(index_key(kind, index)))
        if not fields:
            return []
        raws = self.redis.hmget(f"ckm:obj:{kind}", fields)
        return [(*f.partition("/")[::2], json.loads(raw))
                for f, raw in zip(fields, raws, strict=True) if raw]

    def versions(self, kind: str, index: str) -> list[tuple[str, str, str]]:
        """(namespace, name, fingerprint) of the objects in one index set: a reader that
        caches what it derives from each version reads only these."""
        fields = sorted(_text(f) for f in self.redis.smembers(index_key(kind, index)))
        if not fields:
            return []
        shas = self.redis.hmget(f"ckm:hash:{kind}", fields)
        return [(*f.partition("/")[::2], _text(sha))
                for f, sha in zip(fields, shas, strict=True) if sha]

    def ensure_indexes(self) -> bool:
        """Rebuild the index sets if this store's were built by another version of
        `tasks.indexes` (or never): returns whether it rebuilt. Run by the watcher before it
        writes, so no write races the rebuild."""
        if _text(self.redis.get(INDEXES) or "") == INDEX_VERSION:
            return False
        for kind in INDEXED_KINDS:
            stale = list(self.redis.scan_iter(match=index_key(kind, "*"), count=1000))
            for start in range(0, len(stale), 500):
                self.redis.delete(*stale[start:start + 500])
            pipe = self.redis.pipeline(transaction=False)
            for field, raw in self.redis.hscan_iter(f"ckm:obj:{kind}", count=1000):
                for name in index_names(kind, json.loads(raw)):
                    pipe.sadd(index_key(kind, name), _text(field))
                if len(pipe) >= 1000:
                    pipe.execute()
            pipe.execute()
        self.redis.set(INDEXES, INDEX_VERSION)
        return True

    def in_namespace(self, kind: str, namespace: str) -> list[tuple[str, dict[str, Any]]]:
        names = self.names(kind, namespace)
        return [(n, p) for n, p in zip(names, self.get_many(kind, [(namespace, n) for n in names]),
                                       strict=True) if p is not None]

    def tombstones(self, kind: str) -> list[tuple[str, str]]:
        return [tuple(_text(f).partition("/")[::2]) for f in self.redis.hkeys(f"ckm:tomb:{kind}")]

    def object_version(self, kind: str, namespace: str, name: str) -> str | None:
        """The resourceVersion of the last event stored for one object."""
        return self.redis.hget(f"ckm:orv:{kind}", f"{namespace}/{name}") or None

    def resource_version(self, kind: str) -> str | None:
        raw = self.redis.get(f"ckm:rv:{kind}")
        return _text(raw) if raw else None

    def resume_point(self, kind: str) -> tuple[str | None, str | None]:
        """(resourceVersion, generation) a reflector may resume from; Nones: relist."""
        rv, gen = self.redis.mget(f"ckm:rv:{kind}", f"ckm:gen:{kind}")
        return (_text(rv) if rv else None), (_text(gen) if gen else None)

    def listed(self, kinds: list[str] | tuple[str, ...]) -> bool:
        """Every one of these kinds has been fully listed into this Redis."""
        return all(self.redis.mget([f"ckm:gen:{kind}" for kind in kinds]))

    def complete(self) -> bool:
        return bool(self.redis.exists(COMPLETE))

    def mark_complete(self, generations: dict[str, str] | None = None) -> bool:
        """Mark the store complete; with `generations` (kind -> the generation its reflector
        holds) only if every kind's stored generation is that one or a later one, in one
        step: a kind whose Redis went back in time or lost its data keeps it incomplete."""
        if generations is None:
            self.redis.set(COMPLETE, "1")
            return True
        kinds = sorted(generations)
        return bool(self._complete(keys=[COMPLETE, *[f"ckm:gen:{k}" for k in kinds]],
                                   args=[generations[k] for k in kinds]))

    def claim_term(self) -> int:
        """A new leader's term: larger than every earlier leader's."""
        return int(self.redis.incr(TERM))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value

"""Optional SQLite state file so a demo survives a restart.

Objects are rows of JSON (one per uuid); the key-value store and relaxed refs are one meta row
each. The backend reports each changed uuid; the app flushes the dirty set every
`flush_interval` seconds and on shutdown, in one transaction (a crash loses at most that
interval, never leaves a half-written state). Allocators and id pools are not stored: they are
rebuilt from the objects on load (`Backend.restore`).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from emulators.contrail.backend import Backend
from emulators.contrail.store import Obj

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (uuid TEXT PRIMARY KEY, seq INTEGER, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _dump(obj: Obj) -> str:
    return json.dumps({"type": obj.type, "uuid": obj.uuid, "fq_name": obj.fq_name,
                       "parent_type": obj.parent_type, "parent_uuid": obj.parent_uuid,
                       "props": obj.props, "refs": obj.refs, "seq": obj.seq})


def _load(text: str) -> Obj:
    data = json.loads(text)
    data["fq_name"] = tuple(data["fq_name"])
    return Obj(**data)


class StateFile:
    """One SQLite file holding a backend's objects; tracks what changed since the last flush."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.executescript(SCHEMA)
        self.dirty: set[str] = set()

    def attach(self, backend: Backend) -> None:
        """Route the backend's change notifications into the dirty set."""
        self.backend = backend
        backend.on_change = self._changed

    def _changed(self, uuid: str) -> None:
        # A method, not `self.dirty.add`: flush swaps in a new set, and a bound `add` would
        # keep feeding the old one, so every change after the first flush would be lost.
        self.dirty.add(uuid)

    def load_into(self, backend: Backend) -> bool:
        """Restore the saved objects into an empty backend; False when the file was empty."""
        rows = self.db.execute("SELECT data FROM objects").fetchall()
        if not rows:
            return False
        backend.restore([_load(text) for (text,) in rows])
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        backend.kv.update(json.loads(meta.get("kv", "{}")))
        relaxed: dict[str, Any] = json.loads(meta.get("relaxed", "{}"))
        backend.relaxed.update({k: set(v) for k, v in relaxed.items()})
        return True

    def flush(self) -> int:
        """Write every object changed since the last flush; returns how many rows changed."""
        if not self.dirty:
            return 0
        dirty, self.dirty = self.dirty, set()
        objs = self.backend.store.objs
        with self.db:
            for uuid in dirty:
                obj = objs.get(uuid)
                if obj is None:
                    self.db.execute("DELETE FROM objects WHERE uuid = ?", (uuid,))
                else:
                    self.db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?)",
                                    (uuid, obj.seq, _dump(obj)))
            self._meta()
        return len(dirty)

    def replace_all(self, backend: Backend) -> None:
        """After an admin reset: the file holds exactly the new backend's objects."""
        self.attach(backend)
        with self.db:
            self.db.execute("DELETE FROM objects")
        self.dirty = set(backend.store.objs)
        self.flush()

    def _meta(self) -> None:
        relaxed = {k: sorted(v) for k, v in self.backend.relaxed.items()}
        for key, value in (("kv", self.backend.kv), ("relaxed", relaxed)):
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def close(self) -> None:
        self.flush()
        self.db.close()

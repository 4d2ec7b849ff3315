"""Where the payment sandboxes keep their trades: one SQLite file per platform under
`payment_sandbox_dir/<platform>/trades.sqlite3`, so trades made before `selfmart serve` starts
(by `seed-demo`) or before a restart can still be queried, refunded and billed.

A sandbox keeps working on plain objects in memory. `PersistentMap` is the dict it keeps them
in: an object put in it is written at once, and a later change of one of its attributes
(`Tracked.__setattr__`) marks it dirty; dirty objects are written together as soon as the
event loop is free again (or at once outside a loop), one SQLite transaction per batch.
Another process writing the same file (e.g. `seed-demo` beside a running server) is seen on
the next read: SQLite's `data_version` says so, and the rows written since (each row carries
the file-wide revision it was written at) are read in; a clear or delete elsewhere bumps the
file's generation and everything is read again.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

FILE_NAME = "trades.sqlite3"

K = TypeVar("K")
V = TypeVar("V")


class Tracked:
    """Mixin for a sandbox's dataclasses: a change of an attribute after the object was put in
    a `PersistentMap` gets it written again."""

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        touch(self)


def touch(obj: object) -> None:
    """Mark `obj` changed (for changes `__setattr__` cannot see, such as a nested dict's)."""
    owner: tuple[PersistentMap[Any, Any], Any] | None = getattr(obj, "_persisted_in", None)
    if owner is not None:
        owner[0].touch(owner[1])


class Store:
    """One SQLite file; rows are (kind, key, JSON document)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.RLock()
        # autocommit mode: each write below is one explicit transaction
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS docs (kind TEXT NOT NULL, key TEXT NOT NULL,"
            " doc TEXT NOT NULL, rev INTEGER NOT NULL, PRIMARY KEY (kind, key));"
            "CREATE INDEX IF NOT EXISTS docs_rev ON docs (rev);"
            "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('generation', 0);"
        )
        self.maps: list[PersistentMap[Any, Any]] = []
        self.version = self._data_version()
        self.generation = self._generation()
        #: the highest revision read so far (rows above it are new to this process)
        self.rev = 0

    def _data_version(self) -> int:
        row = self.db.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def _generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE name = 'generation'").fetchone()
        return int(row[0])

    def rows(self, kind: str, *, after: int = 0) -> list[tuple[str, str, int]]:
        with self.lock:
            cur = self.db.execute(
                "SELECT key, doc, rev FROM docs WHERE kind = ? AND rev > ? ORDER BY rev",
                (kind, after),
            )
            return [(str(k), str(d), int(r)) for k, d, r in cur.fetchall()]

    def write(self, kind: str, upserts: list[tuple[str, str]], deletes: list[str]) -> None:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany(
                    "INSERT INTO docs (kind, key, doc, rev)"
                    " VALUES (?, ?, ?, (SELECT coalesce(max(rev), 0) + 1 FROM docs))"
                    " ON CONFLICT (kind, key) DO UPDATE SET doc = excluded.doc, rev = excluded.rev",
                    [(kind, k, d) for k, d in upserts],
                )
                if deletes:
                    self.db.executemany(
                        "DELETE FROM docs WHERE kind = ? AND key = ?", [(kind, k) for k in deletes]
                    )
                    self._bump_generation()
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _bump_generation(self) -> None:
        self.db.execute("UPDATE meta SET value = value + 1 WHERE name = 'generation'")
        # our own change: what we hold already reflects it
        self.generation += 1

    def clear(self, kind: str) -> None:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM docs WHERE kind = ?", (kind,))
            self._bump_generation()
            self.db.execute("COMMIT")

    def refresh(self) -> None:
        """Read in what another connection (process) wrote since we last looked: the new rows,
        or everything when it deleted some."""
        with self.lock:
            version = self._data_version()
            if version == self.version:
                return
            self.version = version
            generation = self._generation()
            full = generation != self.generation
            self.generation = generation
            after = 0 if full else self.rev
            for m in self.maps:
                m.merge(self.rows(m.kind, after=after), full=full)

    def close(self) -> None:
        with self.lock:
            for m in self.maps:
                m.flush()
            self.db.close()


_STORES: dict[Path, Store] = {}
_STORES_LOCK = threading.Lock()


def store_at(directory: Path) -> Store:
    """The one `Store` of this process for `directory/trades.sqlite3`."""
    path = (directory / FILE_NAME).resolve()
    with _STORES_LOCK:
        store = _STORES.get(path)
        if store is None:
            store = _STORES[path] = Store(path)
        return store


def forget(directory: Path) -> None:
    """Write what is pending and drop this process's handle on `directory`'s file (what a
    restart does; tests use it to rebuild a sandbox from its directory)."""
    path = (directory / FILE_NAME).resolve()
    with _STORES_LOCK:
        store = _STORES.pop(path, None)
    if store is not None:
        store.close()


def _str_key(key: Any) -> str:
    return str(key)


class PersistentMap(MutableMapping[K, V], Generic[K, V]):
    """A dict of one kind of sandbox object, kept in a `Store`."""

    def __init__(
        self,
        store: Store,
        kind: str,
        value_type: type[V],
        *,
        encode_key: Callable[[K], str] = _str_key,
        decode_key: Callable[[str], K] | None = None,
    ) -> None:
        self.store = store
        self.kind = kind
        self.adapter: TypeAdapter[V] = TypeAdapter(value_type)
        self.encode_key = encode_key
        self.decode_key: Callable[[str], K] = decode_key or (lambda s: s)  # type: ignore[assignment,return-value]
        self._items: dict[K, V] = {}
        #: each key's document as last read or written (what another process's rows are
        #: compared with, so an object this process holds is not replaced by its own copy)
        self._docs: dict[K, str] = {}
        self._dirty: set[K] = set()
        self._deleted: set[K] = set()
        self._scheduled = False
        store.maps.append(self)
        self.merge(store.rows(kind), full=True)

    # -- loading and writing ---------------------------------------------------------------------

    def _attach(self, key: K, value: V) -> None:
        object.__setattr__(value, "_persisted_in", (self, key))

    def merge(self, rows: list[tuple[str, str, int]], *, full: bool) -> None:
        """Take in rows read from the file (`full`: they are all there is). Objects changed
        here and not yet written are kept, and so is an object whose row says what it does."""
        with self.store.lock:
            seen: set[K] = set()
            for raw_key, doc, rev in rows:
                self.store.rev = max(self.store.rev, rev)
                key = self.decode_key(raw_key)
                seen.add(key)
                if key in self._dirty or self._docs.get(key) == doc:
                    continue
                value = self.adapter.validate_json(doc)
                self._attach(key, value)
                self._items[key] = value
                self._docs[key] = doc
            if full:
                for key in [k for k in self._items if k not in seen and k not in self._dirty]:
                    del self._items[key]
                    self._docs.pop(key, None)

    def touch(self, key: K) -> None:
        with self.store.lock:
            self._dirty.add(key)
            self._schedule()

    def _schedule(self) -> None:
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        # after the code that changed the object has run to its next await: one write for
        # all the changes a request or task made in one go
        loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.store.lock:
            self._scheduled = False
            if not self._dirty and not self._deleted:
                return
            upserts = []
            for k in self._dirty:
                if k in self._items:
                    doc = self.adapter.dump_json(self._items[k]).decode()
                    self._docs[k] = doc
                    upserts.append((self.encode_key(k), doc))
            deletes = [self.encode_key(k) for k in self._deleted if k not in self._items]
            self._dirty.clear()
            self._deleted.clear()
            self.store.write(self.kind, upserts, deletes)

    # -- the mapping ---------------------------------------------------------------------------

    def __getitem__(self, key: K) -> V:
        self.store.refresh()
        return self._items[key]

    def __setitem__(self, key: K, value: V) -> None:
        with self.store.lock:
            self.store.refresh()
            self._attach(key, value)
            self._items[key] = value
            self._deleted.discard(key)
            self.touch(key)

    def __delitem__(self, key: K) -> None:
        with self.store.lock:
            self.store.refresh()
            value = self._items.pop(key)
            self._docs.pop(key, None)
            object.__setattr__(value, "_persisted_in", None)
            self._dirty.discard(key)
            self._deleted.add(key)
            self._schedule()

    def __iter__(self) -> Iterator[K]:
        self.store.refresh()
        return iter(list(self._items))

    def __len__(self) -> int:
        self.store.refresh()
        return len(self._items)

    def clear(self) -> None:
        """Forget every object of this kind, on disk too (the sandboxes' `reset`)."""
        with self.store.lock:
            for value in self._items.values():
                object.__setattr__(value, "_persisted_in", None)
            self._items.clear()
            self._docs.clear()
            self._dirty.clear()
            self._deleted.clear()
            self.store.clear(self.kind)


def tuple_key(key: tuple[str, ...]) -> str:
    return json.dumps(list(key))


def untuple_key(raw: str) -> tuple[str, ...]:
    return tuple(json.loads(raw))

"""The store: one SQLite database (WAL mode) that one loader writes and every worker reads.

Each reload that changes anything is committed in one transaction that ends with a
new row in `generations`. Readers see either the whole of a generation or none of it
(WAL snapshot isolation), so every worker answers from the same newest generation and a
restart answers as before it, last good versions included.

Tables:
- `files`: every seed file: its change stamp, its problems, and the article it gives
  (or, when `carried`, the last good version of a file that has since turned bad), as
  a JSON record plus the columns the catalog reads.
- `feeds`: every feed's settings and item count, and its members: the ids of the files
  it holds, in feed order (newest first, ties by identity), packed as 64-bit integers in
  this machine's byte order (a page of a feed reads just its slice).
- `documents`: rendered responses (body, gzip body, ETag, Last-Modified) by URL key.
- `generations`: one row per committed reload: time, duration, site settings, summary.
- `tombstones` and `retired`: articles deleted from feeds, and feeds whose last article
  was deleted, kept for `tombstone_retention` (runtime/tombstones.py).
- `search`: the FTS5 full-text index of every article's text, by file id (store/search.py).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import sqlite3
import threading
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from feedservice.store.rows import Document, FileRow, Generation, file_row
from feedservice.store.writer import Writer

log = logging.getLogger("feedservice")
SCHEMA_VERSION = "8"  # 6: the search index, 7: files.provider, 8: both (issue 19)
DATABASE_NAME = "feedservice.sqlite3"
READER_CACHE_KB = 256
TABLES = ("files", "feeds", "documents", "generations", "meta", "tombstones", "retired", "search")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path BLOB UNIQUE NOT NULL,  -- the file name's bytes: any name the filesystem allows
    stamp BLOB NOT NULL,
    problems TEXT,
    carried INTEGER NOT NULL DEFAULT 0,
    record TEXT,
    identity TEXT,
    sort INTEGER,
    topics TEXT,
    quality INTEGER,
    draft INTEGER,
    revision TEXT,
    updated INTEGER,
    expires INTEGER,
    provider TEXT  -- `<domain> <name>`: the provider feed it is in
);
CREATE TABLE IF NOT EXISTS feeds (
    key TEXT PRIMARY KEY,
    meta TEXT NOT NULL,
    members BLOB NOT NULL  -- the file ids of its items in feed order, 8 bytes each
);
CREATE TABLE IF NOT EXISTS documents (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    content_type TEXT NOT NULL,
    etag TEXT NOT NULL,
    last_modified INTEGER NOT NULL,
    body BLOB NOT NULL,
    gzip BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS generations (
    id INTEGER PRIMARY KEY,
    committed_at REAL NOT NULL,
    site TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tombstones (
    feed TEXT NOT NULL, ref TEXT NOT NULL, deleted INTEGER NOT NULL, PRIMARY KEY (feed, ref)
);
CREATE TABLE IF NOT EXISTS retired (
    key TEXT PRIMARY KEY, meta TEXT NOT NULL, since INTEGER NOT NULL, gone INTEGER NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5(  -- rowid: files.id (store/search.py)
    title, summary, content, tokenize='porter unicode61 remove_diacritics 2'
);
"""


def connect(path: Path | str, *, writer: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    connection.execute("PRAGMA busy_timeout = 30000")
    if not writer:  # a worker's threads each hold one: the OS page cache does the rest
        connection.execute(f"PRAGMA cache_size = -{READER_CACHE_KB}")
    if path != ":memory:" and writer:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA wal_autocheckpoint = 0")  # Store.checkpoint, after commits
    return connection


class CommitCounter:
    """An 8-byte counter in a file beside the database, mapped into memory, that the loader
    bumps after each commit. SQLite's `data_version` asks the same question with a query
    (about 6 µs, two thirds of the time a worker spends on a cached answer); this is a
    memory read. It is only a hint: what a reader then reads comes from SQLite."""

    def __init__(self, path: str | None, writable: bool) -> None:
        self.path, self.writable = path, writable
        self.map: mmap.mmap | None = None
        if writable:
            self._open()

    def _open(self) -> None:
        if self.path is None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT if self.writable else os.O_RDONLY, 0o644)
        except OSError:
            return  # (not there yet: the loader has not opened the store)
        try:
            if self.writable and os.fstat(fd).st_size < 8:
                os.ftruncate(fd, 8)
            if os.fstat(fd).st_size >= 8:
                access = mmap.ACCESS_WRITE if self.writable else mmap.ACCESS_READ
                self.map = mmap.mmap(fd, 8, access=access)
        finally:
            os.close(fd)

    def value(self) -> int | None:
        if self.map is None:
            self._open()
            if self.map is None:
                return None
        return int.from_bytes(self.map[:8], "little")

    def bump(self) -> None:
        if self.map is not None:
            self.map[:8] = ((self.value() or 0) + 1).to_bytes(8, "little")


class Store:
    """The database in a state directory (or in memory, for `check` and tests)."""

    def __init__(self, path: Path | str, *, writable: bool = True) -> None:
        """A serving worker opens the store with `writable=False`: it never writes."""
        self.path = path
        self._local = threading.local()
        self._writing: int | None = None  # the thread inside `transaction`
        self._commits = CommitCounter(None if path == ":memory:" else f"{path}.commits", writable)
        if not writable:
            return
        try:
            self._open()
        except sqlite3.DatabaseError as error:
            if path == ":memory:":
                raise
            log.error("store %s is damaged (%s); moved aside, starting empty", path, error)
            for suffix in ("", "-wal", "-shm"):
                damaged = Path(f"{path}{suffix}")
                if damaged.exists():
                    damaged.rename(damaged.with_name(f"{damaged.name}.damaged-{int(time.time())}"))
            self._local = threading.local()  # (a read connection to the damaged file)
            self._open()

    def _open(self) -> None:
        self.writer = connect(self.path, writer=True)
        self.writer.executescript(SCHEMA)
        if self.meta("schema") != SCHEMA_VERSION:
            self._reset()

    @classmethod
    def in_dir(cls, state_dir: Path, *, writable: bool = True) -> Store:
        if writable:
            state_dir.mkdir(parents=True, exist_ok=True)
        return cls(state_dir / DATABASE_NAME, writable=writable)

    @classmethod
    def memory(cls) -> Store:
        return cls(":memory:")

    def _reset(self) -> None:
        """A store written by another schema version is made anew (the next reload parses
        every file again); its documents could not be trusted to match this code."""
        with self.transaction() as tx:
            for table in TABLES:
                tx.execute(f"DROP TABLE IF EXISTS {table}")
        self.writer.executescript(SCHEMA)  # (a crash before the next line resets again)
        self.writer.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))

    # --- reading: every method reads what one committed generation holds ----------------

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (the in-memory store has only one)."""
        if self.path == ":memory:" or self._writing == threading.get_ident():
            return self.writer  # (the loader reads what it is writing)
        connection = getattr(self._local, "connection", None)
        if connection is None or getattr(self._local, "pid", None) != os.getpid():
            connection = self._local.connection = connect(self.path)
            self._local.pid = os.getpid()  # a forked process opens its own
        return connection

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that must see one generation."""
        connection = self.reader()
        if connection.in_transaction:  # the loader, rendering inside its own write
            yield connection
            return
        connection.execute("BEGIN")
        try:
            yield connection
        finally:
            connection.execute("COMMIT")

    def data_version(self) -> int:
        """Changes whenever the loader commits: the 'anything new?' check of every request.
        It reads the commit counter beside the database (a memory read); without one (an
        in-memory store, or before the loader made it), SQLite's `data_version` (a query)."""
        counter = self._commits.value()
        if counter is not None:
            return counter
        return self.reader().execute("PRAGMA data_version").fetchone()[0]

    def meta(self, key: str) -> str | None:
        row = self.reader().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def generation(self) -> Generation | None:
        row = (
            self.reader()
            .execute(
                "SELECT id, committed_at, site, summary FROM generations ORDER BY id DESC LIMIT 1"
            )
            .fetchone()
        )
        if row is None:
            return None
        return Generation(row[0], row[1], json.loads(row[2]), json.loads(row[3]))

    def document(self, key: str) -> Document | None:
        row = (
            self.reader()
            .execute(
                "SELECT body, gzip, etag, content_type, last_modified, fingerprint"
                " FROM documents WHERE key = ?",
                (key,),
            )
            .fetchone()
        )
        return Document(*row) if row else None

    def fingerprints(self) -> dict[str, str]:
        return dict(self.reader().execute("SELECT key, fingerprint FROM documents"))

    def feed(self, key: str) -> dict[str, Any] | None:
        row = self.reader().execute("SELECT meta FROM feeds WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def feeds(self) -> list[dict[str, Any]]:
        """Every feed's settings and count, configured feeds first, then topics by slug."""
        rows = self.reader().execute("SELECT meta FROM feeds ORDER BY key").fetchall()
        metas = [json.loads(row[0]) for row in rows]
        return sorted(metas, key=lambda meta: (meta["kind"] != "feeds", meta.get("position", 0)))

    def page(self, feed: str, number: int, limit: int) -> list[tuple[str, int, str]]:
        """The (record, updated, path) of page `number` of a feed's items, in feed order."""
        with self.snapshot() as connection:
            query = "SELECT substr(members, ?, ?) FROM feeds WHERE key = ?"
            row = connection.execute(query, ((number - 1) * limit * 8 + 1, limit * 8, feed))
            found = row.fetchone()
            return self.items(array("q", found[0] or b"" if found else b"").tolist())

    def items(self, ids: list[int]) -> list[tuple[str, int, str]]:
        """The (record, updated, path) of these files, in this order."""
        marks = ",".join("?" * len(ids))
        rows = self.reader().execute(
            f"SELECT id, record, updated, path FROM files WHERE id IN ({marks})", ids
        )
        by_id = {file: (record, updated, os.fsdecode(path)) for file, record, updated, path in rows}
        return [by_id[file] for file in ids]

    def member_ids(self, feed: str) -> array[int]:
        """One feed's member file ids, in feed order (empty if there is no such feed)."""
        row = self.reader().execute("SELECT members FROM feeds WHERE key = ?", (feed,)).fetchone()
        return array("q", row[0] if row else b"")

    def facets(self) -> str:
        """`id,sort,quality,...` of every file that gives an article (what filters read),
        joined by SQLite: one string is one fast parse."""
        query = "SELECT group_concat(id||','||coalesce(sort, 0)||','||coalesce(quality, 0))"
        return (
            self.reader().execute(f"{query} FROM files WHERE identity IS NOT NULL").fetchone()[0]
            or ""
        )

    def largest_file_id(self) -> int:
        return self.reader().execute("SELECT max(id) FROM files").fetchone()[0] or 0

    def tombstones(self, feed: str | None = None) -> list[tuple[str, str, int]]:
        """(feed, identity, deleted µs) of the articles deleted from one feed, or from any,
        newest first."""
        where, args = ("WHERE feed = ?", (feed,)) if feed else ("", ())
        query = f"SELECT feed, ref, deleted FROM tombstones {where} ORDER BY feed, deleted DESC"
        return self.reader().execute(query + ", ref", args).fetchall()

    def retired(self, feed: str) -> tuple[dict[str, Any], bool] | None:
        """A feed whose last article was deleted: its settings, and whether it is gone."""
        query = "SELECT meta, gone FROM retired WHERE key = ?"
        row = self.reader().execute(query, (feed,)).fetchone()
        return (json.loads(row[0]), bool(row[1])) if row else None

    def feed_rows(self) -> list[tuple[str, str, bytes]]:
        """Every feed's key, settings (JSON) and packed members, as written."""
        return self.reader().execute("SELECT key, meta, members FROM feeds").fetchall()

    def members(self) -> dict[str, list[int]]:
        """Every feed's member file ids, in feed order."""
        rows = self.reader().execute("SELECT key, members FROM feeds")
        return {key: array("q", blob).tolist() for key, blob in rows}

    def record(self, path: str) -> str | None:
        """The article record a file gives (or its last good version)."""
        query = "SELECT record FROM files WHERE path = ?"
        row = self.reader().execute(query, (os.fsencode(path),)).fetchone()
        return row[0] if row else None

    def files(self) -> list[FileRow]:
        rows = self.reader().execute(
            "SELECT path, stamp, problems, carried, identity, sort, topics,"
            " quality, draft, revision, updated, expires, provider, id FROM files"
        )
        return [file_row(*row) for row in rows]

    # --- writing: the loader only ------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Writer]:
        """One write transaction; committed whole, or rolled back on any error."""
        self.writer.execute("BEGIN IMMEDIATE")
        self._writing = threading.get_ident()
        try:
            yield Writer(self.writer)
        except BaseException:
            self.writer.execute("ROLLBACK")
            raise
        else:
            self.writer.execute("COMMIT")
            self._commits.bump()
        finally:
            self._writing = None

    def checkpoint(self) -> None:
        """Copy committed pages from the WAL into the database file. Run after a commit,
        not inside it, so readers see a new generation without waiting for the copy."""
        if self.path != ":memory:":
            self.writer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        if hasattr(self, "writer"):
            self.writer.close()
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()

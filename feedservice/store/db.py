"""The store: one SQLite database (WAL mode) that one loader writes and every worker reads.

Each reload that changes anything is committed in one transaction that ends with a
new row in `generations`. Readers see either the whole of a generation or none of it
(WAL snapshot isolation), so every worker answers from the same newest generation and a
restart answers as before it, last good versions included.

Tables:
- `files`: every seed file: its change stamp, its problems, and the article it gives
  (or, when `carried`, the last good version of a file that has since turned bad), as
  a JSON record plus the columns the catalog reads.
- `feeds`: every feed's settings and item count; `members`: which files each feed holds,
  in feed order (newest first, ties by identity).
- `documents`: rendered responses (body, gzip body, ETag, Last-Modified) by URL key.
- `generations`: one row per committed reload: time, duration, site settings, summary.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("feedservice")
SCHEMA_VERSION = "2"
DATABASE_NAME = "feedservice.sqlite3"
KEEP_GENERATIONS = 20
TOPIC_SEPARATOR = "\x1f"  # topics are plain text: no control characters
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
    updated INTEGER
);
CREATE TABLE IF NOT EXISTS feeds (key TEXT PRIMARY KEY, meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    feed TEXT NOT NULL,
    sort INTEGER NOT NULL,
    identity TEXT NOT NULL,
    file INTEGER NOT NULL,
    PRIMARY KEY (feed, sort, identity)
) WITHOUT ROWID;
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
"""


@dataclass(frozen=True, slots=True)
class Document:
    """A rendered response: exact bytes, gzip bytes and their validators."""

    body: bytes
    gzip_body: bytes
    etag: str  # strong validator of `body`, without quotes; the gzip body's is etag + "-gz"
    content_type: str
    last_modified: int  # POSIX seconds
    fingerprint: str = ""  # what it was rendered from (documents carried across reloads)


@dataclass(frozen=True, slots=True)
class Generation:
    id: int
    committed_at: float
    site: dict[str, Any]  # the site settings the documents were rendered with
    summary: dict[str, Any]  # counts, problems and reload figures, for /healthz and logs


@dataclass(frozen=True, slots=True)
class FileRow:
    """One seed file as the store keeps it (without its article's record)."""

    path: str  # relative to the seed directory, as os.fsdecode gives it
    stamp: bytes
    problems: list[dict[str, Any]]
    carried: bool  # the article is the last good version of a file that is now bad
    identity: str | None  # None: the file gives no article
    sort: int | None
    topics: tuple[str, ...]
    quality: int | None
    draft: bool
    revision: str | None
    updated: int | None


def connect(path: Path | str, *, writer: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    connection.execute("PRAGMA busy_timeout = 30000")
    if path != ":memory:" and writer:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
    return connection


class Store:
    """The database in a state directory (or in memory, for `check` and tests)."""

    def __init__(self, path: Path | str, *, writable: bool = True) -> None:
        """A serving worker opens the store with `writable=False`: it never writes."""
        self.path = path
        self._local = threading.local()
        self._writing: int | None = None  # the thread inside `transaction`
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
        """A store written by another schema version is emptied (the next reload parses
        every file again); its documents could not be trusted to match this code."""
        with self.transaction() as tx:
            for table in ("files", "feeds", "members", "documents", "generations", "meta"):
                tx.execute(f"DELETE FROM {table}")
            tx.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))

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
        """Changes whenever another connection commits: a cheap 'anything new?' check."""
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
        rows = self.reader().execute(
            "SELECT f.record, f.updated, f.path FROM members m JOIN files f ON f.id = m.file"
            " WHERE m.feed = ? ORDER BY m.sort, m.identity LIMIT ? OFFSET ?",
            (feed, limit, (number - 1) * limit),
        )
        return [(record, updated, os.fsdecode(path)) for record, updated, path in rows]

    def record(self, path: str) -> str | None:
        """The article record a file gives (or its last good version)."""
        query = "SELECT record FROM files WHERE path = ?"
        row = self.reader().execute(query, (os.fsencode(path),)).fetchone()
        return row[0] if row else None

    def newest_member(self, feed: str) -> tuple[int, int] | None:
        """(sort, updated) of a feed's newest item."""
        return (
            self.reader()
            .execute(
                "SELECT m.sort, f.updated FROM members m JOIN files f ON f.id = m.file"
                " WHERE m.feed = ? ORDER BY m.sort, m.identity LIMIT 1",
                (feed,),
            )
            .fetchone()
        )

    def files(self) -> list[FileRow]:
        rows = self.reader().execute(
            "SELECT path, stamp, problems, carried, identity, sort, topics,"
            " quality, draft, revision, updated FROM files"
        )
        return [_file_row(*row) for row in rows]

    def file_ids(self) -> dict[str, int]:
        rows = self.reader().execute("SELECT path, id FROM files")
        return {os.fsdecode(path): file for path, file in rows}

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
        finally:
            self._writing = None

    def close(self) -> None:
        if hasattr(self, "writer"):
            self.writer.close()
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()


def _file_row(
    path: bytes,
    stamp: bytes,
    problems: str | None,
    carried: int,
    identity: str | None,
    sort: int | None,
    topics: str | None,
    *rest: Any,
) -> FileRow:
    found = json.loads(problems) if problems else []
    names = tuple(topics.split(TOPIC_SEPARATOR)) if topics else ()
    quality, draft, revision, updated = rest
    return FileRow(
        os.fsdecode(path),
        stamp,
        found,
        bool(carried),
        identity,
        sort,
        names,
        quality,
        bool(draft),
        revision,
        updated,
    )


class Writer:
    """The write half of one transaction (Store.transaction)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.execute = connection.execute
        self.executemany = connection.executemany

    def set_meta(self, key: str, value: str) -> None:
        self.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def put_files(self, rows: list[tuple[FileRow, str | None]]) -> None:
        """Insert or update files by path, each with its article's record. A record of None
        keeps the stored one (the last good version of a file that turned bad)."""
        self.executemany(
            "INSERT INTO files (path, stamp, problems, carried, record, identity, sort, topics,"
            " quality, draft, revision, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(path) DO UPDATE SET stamp=excluded.stamp, problems=excluded.problems,"
            " carried=excluded.carried, record=COALESCE(excluded.record, files.record),"
            " identity=excluded.identity, sort=excluded.sort, topics=excluded.topics,"
            " quality=excluded.quality, draft=excluded.draft, revision=excluded.revision,"
            " updated=excluded.updated",
            [
                (
                    os.fsencode(row.path),
                    row.stamp,
                    json.dumps(row.problems, ensure_ascii=False) if row.problems else None,
                    int(row.carried),
                    record,
                    row.identity,
                    row.sort,
                    TOPIC_SEPARATOR.join(row.topics) if row.topics else None,
                    row.quality,
                    int(row.draft),
                    row.revision,
                    row.updated,
                )
                for row, record in rows
            ],
        )

    def delete_files(self, paths: Iterable[str]) -> None:
        self.executemany("DELETE FROM files WHERE path = ?", [(os.fsencode(p),) for p in paths])

    def put_feed(self, key: str, meta: dict[str, Any]) -> None:
        self.execute(
            "INSERT OR REPLACE INTO feeds VALUES (?, ?)",
            (key, json.dumps(meta, ensure_ascii=False)),
        )

    def delete_feed(self, key: str) -> None:
        self.execute("DELETE FROM feeds WHERE key = ?", (key,))
        self.execute("DELETE FROM members WHERE feed = ?", (key,))

    def add_members(self, feed: str, rows: Iterable[tuple[int, str, int]]) -> None:
        """(sort, identity, file) rows into a feed."""
        self.executemany(
            "INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?)",
            [(feed, sort, identity, file) for sort, identity, file in rows],
        )

    def remove_members(self, feed: str, rows: Iterable[tuple[int, str]]) -> None:
        self.executemany(
            "DELETE FROM members WHERE feed = ? AND sort = ? AND identity = ?",
            [(feed, sort, identity) for sort, identity in rows],
        )

    def put_document(self, key: str, document: Document) -> None:
        self.execute(
            "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                document.fingerprint,
                document.content_type,
                document.etag,
                document.last_modified,
                document.body,
                document.gzip_body,
            ),
        )

    def delete_documents(self, keys: Iterable[str]) -> None:
        self.executemany("DELETE FROM documents WHERE key = ?", [(key,) for key in keys])

    def commit_generation(
        self, committed_at: float, site: dict[str, Any], summary: dict[str, Any]
    ) -> int:
        cursor = self.execute(
            "INSERT INTO generations (committed_at, site, summary) VALUES (?, ?, ?)",
            (
                committed_at,
                json.dumps(site, ensure_ascii=False),
                json.dumps(summary, ensure_ascii=False),
            ),
        )
        generation = int(cursor.lastrowid or 0)
        self.execute("DELETE FROM generations WHERE id <= ?", (generation - KEEP_GENERATIONS,))
        return generation

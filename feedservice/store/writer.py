"""The write half of the store: what one loader transaction may do (Store.transaction)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from typing import Any

from feedservice.store.rows import TOPIC_SEPARATOR, Document, FileRow
from feedservice.store.search import IndexText

KEEP_GENERATIONS = 20


class Writer:
    """The write half of one transaction (Store.transaction)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.execute = connection.execute
        self.executemany = connection.executemany

    def set_meta(self, key: str, value: str) -> None:
        self.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def put_files(self, rows: list[tuple[FileRow, str | None]]) -> None:
        """Insert or update files by path, each with its article's record (the row carries
        its id). A record of None keeps the stored one (the last good version of a file
        that turned bad)."""
        self.executemany(
            "INSERT INTO files (id, path, stamp, problems, carried, record, identity, sort,"
            " topics, quality, draft, revision, updated, expires, provider)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(path) DO UPDATE SET stamp=excluded.stamp, problems=excluded.problems,"
            " carried=excluded.carried, record=COALESCE(excluded.record, files.record),"
            " identity=excluded.identity, sort=excluded.sort, topics=excluded.topics,"
            " quality=excluded.quality, draft=excluded.draft, revision=excluded.revision,"
            " updated=excluded.updated, expires=excluded.expires,"
            " provider=excluded.provider",
            [
                (
                    row.id,
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
                    row.expires,
                    row.provider,
                )
                for row, record in rows
            ],
        )

    def delete_files(self, paths: Iterable[str]) -> None:
        """Delete files by path, and their rows in the search index."""
        names = [(os.fsencode(path),) for path in paths]
        by_path = "DELETE FROM search WHERE rowid = (SELECT id FROM files WHERE path = ?)"
        self.executemany(by_path, names)
        self.executemany("DELETE FROM files WHERE path = ?", names)

    def index_articles(self, rows: Iterable[tuple[int, IndexText]]) -> None:
        """Put articles' text in the search index by file id, replacing what it held."""
        self.executemany(
            "INSERT OR REPLACE INTO search (rowid, title, summary, content) VALUES (?,?,?,?)",
            [(file_id, *text) for file_id, text in rows],
        )

    def unindex(self, ids: Iterable[int]) -> None:
        """Take files out of the search index (drafts, files that give no article)."""
        self.executemany("DELETE FROM search WHERE rowid = ?", [(file_id,) for file_id in ids])

    def put_feed(self, key: str, meta: str, members: bytes) -> None:
        """A feed's settings (JSON) and its members' file ids, in feed order, packed as
        native int64s (`array("q")`)."""
        self.execute("INSERT OR REPLACE INTO feeds VALUES (?, ?, ?)", (key, meta, members))

    def delete_feed(self, key: str) -> None:
        self.execute("DELETE FROM feeds WHERE key = ?", (key,))

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

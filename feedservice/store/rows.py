"""What the store holds, as Python values: documents, generations and seed-file rows."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any, NamedTuple

TOPIC_SEPARATOR = "\x1f"  # topics are plain text: no control characters


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


class FileRow(NamedTuple):
    """One seed file as the store keeps it (without its article's record)."""

    path: str  # relative to the seed directory, as os.fsdecode gives it
    stamp: bytes
    problems: tuple[dict[str, Any], ...]
    carried: bool  # the article is the last good version of a file that is now bad
    identity: str | None  # None: the file gives no article
    sort: int | None
    topics: tuple[str, ...]
    quality: int | None
    draft: bool
    revision: str | None
    updated: int | None
    expires: int | None = None  # µs: out of every feed from then (Hugo's expiryDate)
    provider: str | None = None  # `<domain> <name>` (catalog.Entry.provider)
    id: int = 0  # the store's id of the file (feed members refer to it); 0: not given yet

    # A row with an identity is the catalog's entry for its article (catalog.Listed):
    # the loader keeps one tuple per file, not a row and an entry.
    @property
    def source(self) -> str:
        return self.path

    @property
    def order(self) -> tuple[int, str]:
        return (self.sort or 0, self.identity or "")


def file_row(
    path: bytes,
    stamp: bytes,
    problems: str | None,
    carried: int,
    identity: str | None,
    sort: int | None,
    topics: str | None,
    *rest: Any,
) -> FileRow:
    """A `files` row as the store reads it (Store.files)."""
    found = tuple(json.loads(problems)) if problems else ()
    names = tuple(map(sys.intern, topics.split(TOPIC_SEPARATOR))) if topics else ()
    quality, draft, revision, updated, expires, provider, file_id = rest
    return FileRow(
        sys.intern(os.fsdecode(path)),  # (one string per path, however many maps hold it)
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
        expires,
        sys.intern(provider) if provider else None,
        file_id,
    )

"""A persistent cache of rendered feed pages, so a restart re-renders only what changed.

Rendering page 1 of every feed in every format is most of what a warm restart
would otherwise cost. Each document is stored with the fingerprint of the page
it renders (documents.PagePrints: every item revision and every setting
that appears in the output), and is reused only when the new snapshot's page
has the same fingerprint. The version key covers the renderers' source, the
libraries that write the bytes and the parse cache's version key (an item's
revision digests its seed's bytes, so the parsing code is an input too): new
code never serves old output.

Same file rules as the parse cache (parsecache.write_parts/read_parts): next to
it in the user's cache directory, mode 0600, refused unless ours, checksummed,
written atomically; deleting it only costs renders.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import feedgen
import lxml.etree

from feedservice import __version__, documents, parsecache
from feedservice.documents import Document, PageKey

log = logging.getLogger("feedservice")

Entries = Mapping[PageKey, tuple[str, Document]]  # page → (fingerprint, document)


def _version_key() -> str:
    digest = hashlib.blake2b(digest_size=16)
    here = Path(__file__).resolve().parent
    for source in [*sorted((here / "feeds").glob("*.py")), Path(documents.__file__)]:
        digest.update(source.read_bytes())
    versions = (
        parsecache.VERSION_KEY,  # item revisions digest seed bytes: parsing code is an input too
        __version__,
        sys.version,
        getattr(feedgen, "__version__", ""),
        lxml.etree.__version__,
    )
    digest.update(repr(versions).encode())
    return digest.hexdigest()


VERSION_KEY = _version_key()


class RenderCache:
    """Load and save the rendered documents of one seed directory's service."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @classmethod
    def default_for(cls, seeds_dir: str | os.PathLike[str]) -> RenderCache | None:
        parse_cache = parsecache.default_cache_path(seeds_dir)
        if parse_cache is None:
            return None
        return cls(parse_cache.with_name(parse_cache.name.replace("seeds-", "renders-", 1)))

    def load(self) -> dict[PageKey, tuple[str, Document]]:
        parts = parsecache.read_parts(self.path, (VERSION_KEY,), 1)
        if parts is None or not isinstance(parts[0], list):
            return {}
        found: dict[PageKey, tuple[str, Document]] = {}
        try:
            for key, fingerprint, fields in parts[0]:
                found[tuple(key)] = (fingerprint, Document(*fields))  # type: ignore[index]
        except (TypeError, ValueError) as error:
            log.info("render cache %s unusable (%s); ignored", self.path, error)
            return {}
        return found

    def save(self, entries: Entries) -> bool:
        rows: list[Any] = [
            (key, fingerprint, _fields(document))
            for key, (fingerprint, document) in sorted(entries.items())
        ]
        with self._lock:
            return parsecache.write_parts(self.path, (VERSION_KEY,), [parsecache.dumps(rows)])

    def save_in_background(self, entries: Entries) -> threading.Thread:
        """Reloads keep serving while the file is written."""
        saver = threading.Thread(
            target=self.save, args=(dict(entries),), name="render-cache-save", daemon=True
        )
        saver.start()
        return saver


def _fields(document: Document) -> tuple[Any, ...]:
    return (
        document.body,
        document.gzip_body,
        document.etag,
        document.gzip_etag,
        document.content_type,
        document.last_modified,
        document.etag_header,
        document.gzip_etag_header,
        document.last_modified_header,
    )

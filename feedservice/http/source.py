"""Where a worker's answers come from: the store's newest generation, memoised per generation.

A worker holds no catalog. For each request it checks, cheaply, whether the loader has
committed a new generation since (`Store.data_version`, a memory read); if not, a
document it already has is served from memory. Otherwise the document comes from the
store, in one read snapshot with the generation it belongs to, or, for later pages, is
rendered from that snapshot. The memo is bounded in bytes and starts empty with every
generation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from feedservice.http.urls import Route
from feedservice.render.documents import render_feed_route, render_listing
from feedservice.store.db import Store
from feedservice.store.rows import Document, Generation

MEMO_BYTES = 4 << 20  # per worker process: the hot feeds (a 100-item feed is ~75 KB)


@dataclass
class _Memo:
    generation: int
    documents: dict[str, Document] = field(default_factory=dict)
    size: int = 0


class Source:
    def __init__(self, store: Store, memo_bytes: int = MEMO_BYTES) -> None:
        self.store = store
        self.memo_bytes = memo_bytes
        self._memo = _Memo(0)
        self._local = threading.local()  # per thread: the data_version it saw, its generation

    def generation(self) -> Generation | None:
        """The newest committed generation (None before the first load has committed)."""
        local = self._local
        version = self.store.data_version()
        if getattr(local, "version", None) != version or local.generation is None:
            local.version, local.generation = version, self.store.generation()
        return local.generation

    def document(self, route: Route) -> tuple[Generation, Document | None] | None:
        """The response document for a route of the grammar, with its generation;
        None before the first generation; (generation, None) if there is no such feed."""
        generation = self.generation()
        if generation is None:
            return None
        memo = self._memo
        if memo.generation == generation.id:
            found = memo.documents.get(route.key)
            if found is not None:
                return generation, found
        with self.store.snapshot():
            generation = self.store.generation()
            if generation is None:
                return None
            document = self.store.document(route.key)
            if document is None and route.view in {"feed", "page"}:
                # A later page, or page 1 the loader has not rendered yet: render it here.
                document = render_feed_route(self.store, generation, route)
            elif document is None and route.view == "list":
                document = render_listing(self.store, generation, route)
        if document is not None:
            self._remember(generation.id, route.key, document)
        return generation, document

    def _remember(self, generation: int, key: str, document: Document) -> None:
        memo = self._memo
        if memo.generation < generation:
            memo = self._memo = _Memo(generation)
        if memo.generation != generation:
            return  # an older generation's answer: never memoise it
        size = len(document.body) + len(document.gzip_body)
        if memo.size + size <= self.memo_bytes:
            memo.documents[key] = document
            memo.size += size

"""Where a worker's answers come from: the store's newest generation, memoised per generation.

A worker holds no catalog. For each request it checks, cheaply, whether the loader has
committed a new generation since (`Store.data_version`, a memory read); if not, a
document it already has is served from memory. Otherwise the document comes from the
store, in one read snapshot with the generation it belongs to, or, for later pages, is
rendered from that snapshot. Subscribers' feeds (filters, search) are computed from
that snapshot too (render/filtered.py), and kept in a memo of their own so that they
never crowd out the fixed feeds. Each memo is bounded in bytes and starts empty with
every generation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from feedservice.http.urls import BadRequest, Route
from feedservice.render.documents import render_feed_route, render_listing
from feedservice.store.db import Store
from feedservice.store.rows import Document, Generation
from feedservice.store.search import matching_id_array, parse_query

if TYPE_CHECKING:  # (numpy, ~13 MB a process, is imported by the first subscriber's feed)
    import numpy as np

    from feedservice.render.filtered import Facets

MEMO_BYTES = 4 << 20  # per worker process: the hot feeds (a 100-item feed is ~75 KB)
SUBSCRIBER_MEMO_BYTES = 8 << 20  # per worker process: subscribers' feeds, apart


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
        self._subscriber_memo = _Memo(0)
        self._facets: tuple[int, Facets | None] = (0, None)
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
        if route.subscriber and not generation.site.get("subscriber_feeds", True):
            raise BadRequest("subscriber feeds are off")
        memo = self._subscriber_memo if route.subscriber else self._memo
        if memo.generation == generation.id:
            found = memo.documents.get(route.key)
            if found is not None:
                return generation, found
        with self.store.snapshot():
            generation = self.store.generation()
            if generation is None:
                return None
            document = None if route.subscriber else self.store.document(route.key)
            if route.subscriber:
                from feedservice.render.filtered import render_filtered

                facets = self._facets_of(generation.id)
                document = render_filtered(self.store, generation, route, facets, self.search)
            elif document is None and route.view in {"feed", "page"}:
                # A later page, or page 1 the loader has not rendered yet: render it here.
                document = render_feed_route(self.store, generation, route)
            elif document is None and route.view == "list":
                document = render_listing(self.store, generation, route)
        if document is not None:
            self._remember(generation.id, route, document)
        return generation, document

    def _facets_of(self, generation: int) -> Facets:
        """Files' dates and qualities for filters: read once per generation (in a snapshot)."""
        owner, facets = self._facets
        if owner != generation or facets is None:
            from feedservice.render.filtered import Facets

            facets = Facets(self.store)
            self._facets = (generation, facets)
        return facets

    def search(self, words: str) -> np.ndarray:
        """The ids of the files whose article matches `words` (a canonical `q`), read in
        the caller's snapshot."""
        return matching_id_array(self.store.reader(), parse_query(words))

    def _remember(self, generation: int, route: Route, document: Document) -> None:
        name = "_subscriber_memo" if route.subscriber else "_memo"
        limit = SUBSCRIBER_MEMO_BYTES if route.subscriber else self.memo_bytes
        key = route.key
        memo = getattr(self, name)
        if memo.generation < generation:
            memo = _Memo(generation)
            setattr(self, name, memo)
        if memo.generation != generation:
            return  # an older generation's answer: never memoise it
        size = len(document.body) + len(document.gzip_body)
        if route.subscriber:  # endless distinct URLs: the oldest make room (a FIFO)
            documents = memo.documents
            while documents and memo.size + size > limit:
                oldest = documents.pop(next(iter(documents)))
                memo.size -= len(oldest.body) + len(oldest.gzip_body)
        if memo.size + size <= limit:
            memo.documents[key] = document
            memo.size += size

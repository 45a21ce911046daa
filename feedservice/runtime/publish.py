"""What a reload writes besides the files: feed membership and the rendered documents.

Both are written as the difference from what the store already holds, so a one-file
change rewrites only the members and re-renders only the documents it touches.
Page 1 of every feed (each format and its HTML page), the index and the OPML lists
are rendered here, inside the reload's transaction; later pages are rendered on
request by the workers, from the committed generation.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import operator
import time
from array import array
from collections.abc import Sequence
from typing import Any, NamedTuple

from feedservice.catalog import Catalog
from feedservice.http import urls
from feedservice.render.documents import feed_page, render_listing, render_page
from feedservice.runtime.metrics import timed
from feedservice.runtime.processes import Pool
from feedservice.store.db import Store
from feedservice.store.rows import Generation
from feedservice.store.writer import Writer

_FILE_ID = operator.attrgetter("id")
RENDER_SECONDS = 0.25  # a reload's rendering; the rest is rendered after the commit
DEFERRED = "~"  # marks a fingerprint whose document is not rendered yet
LISTINGS = (
    urls.Route("index"),
    urls.Route("list", "feeds"),
    urls.Route("list", "topics"),
    urls.Route("list", "providers"),
    *(
        urls.Route("opml", which, "", fmt)
        for which in ("feeds", "topics", "providers")
        for fmt in urls.OPML_FORMATS
    ),
)


class FeedState(NamedTuple):
    """What the store holds of a feed, as the loader compares it."""

    meta: str  # its settings and count (JSON)
    members: bytes  # a digest of its members
    position: int  # where the lists show it (not a change of the feed itself)


def write_feeds(
    tx: Writer,
    old: dict[str, FeedState],
    catalog: Catalog,
    edited: set[str],
) -> tuple[list[str], dict[str, FeedState]]:
    """Write the settings and members of every feed that changed since `old` (what the
    store holds). Returns the keys of the feeds whose settings, members or items changed
    (`edited`: the files whose article changed), and the new states."""
    file_at = list(map(_FILE_ID, catalog.articles))  # by position (the loader's are FileRows)
    touched = [p for p, entry in enumerate(catalog.articles) if entry.source in edited]
    changed, states = [], {}
    for position, (key, feed) in enumerate(catalog.feeds.items()):
        meta = feed.meta()
        members = array("q", map(file_at.__getitem__, feed.positions)).tobytes()
        state = states[key] = FeedState(_json(meta), _digest(members), position)
        before = old.get(key)
        if before != state:
            tx.put_feed(key, _json({**meta, "position": position}), members)
        if (
            before is None
            or before[:2] != state[:2]
            or (touched and _holds_any(feed.positions, touched))
        ):
            changed.append(key)
    for key in old:
        if key not in catalog.feeds:
            tx.delete_feed(key)
            changed.append(key)
    return changed, states


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)


def _digest(members: bytes) -> bytes:
    return hashlib.blake2b(members, digest_size=16).digest()


def _holds_any(positions: Sequence[int], wanted: list[int]) -> bool:
    if len(wanted) > 64:
        return not set(wanted).isdisjoint(positions)
    for position in wanted:  # (positions ascend)
        found = bisect.bisect_left(positions, position)
        if found < len(positions) and positions[found] == position:
            return True
    return False


def stored_feeds(store: Store) -> dict[str, FeedState]:
    """The feeds' states as the store holds them: what a fresh loader starts from."""
    states = {}
    for key, text, members in store.feed_rows():
        meta = json.loads(text)
        position = meta.pop("position")
        states[key] = FeedState(_json(meta), _digest(members), position)
    return states


def render_documents(
    store: Store,
    tx: Writer,
    catalog: Catalog,
    generation: Generation,
    fingerprints: dict[str, str],
    pool: Pool,
) -> tuple[dict[str, str], int]:
    """Render the documents whose inputs changed since `fingerprints` (what the store
    holds) and drop those of feeds that are gone; pages render in `pool`'s processes when
    it has any. Rendering stops after RENDER_SECONDS: a stale document not rendered by
    then is dropped and marked DEFERRED; `render_deferred` renders it after the commit,
    and until then the workers render it on request. So a config that adds thousands of
    feeds costs one short reload, and a cold load is served before every page is made.
    Returns the new fingerprints and how many feeds were rendered."""
    wanted: dict[str, str] = {}
    stale_feeds = []
    deleted: dict[str, list[tuple[str, int]]] = {}  # page 1 carries the feed's tombstones
    for key, ref, when in store.tombstones():
        deleted.setdefault(key, []).append((ref, when))
    for feed in catalog.feeds.values():
        fingerprint = feed.fingerprint(1, generation.site, catalog.newest)
        if feed.key in deleted:
            text = f"{fingerprint}{deleted[feed.key]}".encode("utf-8", "surrogatepass")
            fingerprint = hashlib.blake2b(text).hexdigest()[:32]
        routes = [urls.Route("feed", feed.kind, feed.name, fmt) for fmt in urls.FORMATS]
        routes.append(urls.Route("page", feed.kind, feed.name))
        known = (fingerprint, DEFERRED + fingerprint)
        stale = [route for route in routes if fingerprints.get(route.key) not in known]
        wanted.update(
            (route.key, fingerprints[route.key]) for route in routes if route not in stale
        )
        if stale:
            stale_feeds.append((feed, fingerprint, stale))
    deadline = time.monotonic() + RENDER_SECONDS
    rendered, batch = 0, 2 * pool.workers  # feeds rendered between two looks at the clock
    while rendered < len(stale_feeds) and time.monotonic() < deadline:
        work, keys = [], []
        for feed, fingerprint, stale in stale_feeds[rendered : rendered + batch]:
            page = feed_page(store, generation, store.feed(feed.key) or {}, 1)
            work += [(render_page, page, route.fmt, fingerprint) for route in stale]
            keys += [(route.key, fingerprint) for route in stale]
        for (key, fingerprint), document in zip(keys, pool.map(timed, work), strict=True):
            tx.put_document(key, document)
            wanted[key] = fingerprint
        rendered += batch
    for _, fingerprint, stale in stale_feeds[rendered:]:
        wanted.update((route.key, DEFERRED + fingerprint) for route in stale)
    inputs = [generation.site, store.feeds(), generation.summary["articles"]]
    inputs.append(generation.summary["newest_change"])
    text = json.dumps(inputs, sort_keys=True, default=str).encode("utf-8", "surrogatepass")
    fingerprint = hashlib.blake2b(text).hexdigest()[:32]
    for route in LISTINGS:
        wanted[route.key] = fingerprint
        if fingerprints.get(route.key) != fingerprint:
            document = timed(render_listing, store, generation, route, fingerprint)
            tx.put_document(route.key, document)
    tx.delete_documents(
        key  # the feed is gone, or its document is stale and now left to the workers
        for key, known in fingerprints.items()
        if key not in wanted or wanted[key].startswith(DEFERRED) > known.startswith(DEFERRED)
    )
    return wanted, min(rendered, len(stale_feeds))


def render_deferred(store: Store, fingerprints: dict[str, str], seconds: float) -> dict[str, str]:
    """Render documents marked DEFERRED in `fingerprints`, for about `seconds`, in one
    transaction that adds documents and no generation: they are the bytes a worker
    would render for the newest generation. Returns the rendered keys' fingerprints."""
    generation = store.generation()
    keys = [key for key, known in fingerprints.items() if known.startswith(DEFERRED)]
    if generation is None or not keys:
        return {}
    done: dict[str, str] = {}
    pages: dict[str, Any] = {}
    deadline = time.monotonic() + seconds
    with store.transaction() as tx:
        for key in keys:
            route = urls.parse(*key.partition("?")[::2])
            meta = store.feed(route.feed_key) if route else None
            if route is None or meta is None:
                continue
            if route.feed_key not in pages:
                if time.monotonic() > deadline:
                    break
                pages[route.feed_key] = feed_page(store, generation, meta, 1)
            fingerprint = fingerprints[key][len(DEFERRED) :]
            tx.put_document(key, timed(render_page, pages[route.feed_key], route.fmt, fingerprint))
            done[key] = fingerprint
    return done

"""Feeds shaped by subscribers: a fixed feed's members narrowed by filters.

A worker answers them from the newest generation: the feed's members (file ids, newest
first) intersected with the members of topic and provider feeds, cut by date and
quality (`Facets`) and by a search. The page is rendered with the fixed feeds' own
renderers, so every worker and every restart gives the same bytes.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Iterable

from feedservice.http import urls
from feedservice.render.documents import feed_page, render_page
from feedservice.store.db import Store
from feedservice.store.rows import Document, Generation

Search = Callable[[str], set[int]]  # normalised words → the ids of the matching files


class Facets:
    """Each file's sort (minus its publish µs) and quality, by id: read once per
    generation and worker, so a cold filter never scans the files table."""

    def __init__(self, rows: Iterable[tuple[int, int, int | None]]) -> None:
        rows = list(rows)
        size = max((row[0] for row in rows), default=0) + 1
        self.sort = array("q", bytes(8 * size))
        self.quality = array("q", bytes(8 * size))
        for file, sort, quality in rows:
            self.sort[file] = sort or 0
            self.quality[file] = quality or 0


def select(store: Store, facets: Facets, key: str, filters: urls.Filters, search: Search) -> list:
    """The ids of feed `key`'s members that pass `filters`, in feed order."""
    ids = store.member_ids(key).tolist()
    since = filters.since_micros
    if since is not None:  # members are newest first: a prefix of them
        ids = ids[: bisect.bisect_right(ids, -since, key=facets.sort.__getitem__)]
    wanted: set[int] | None = None
    for group in (
        _any(store, "topics", filters.topics) if filters.topics else None,
        *(set(store.member_ids(f"topics/{slug}")) for slug in filters.all),
        _any(store, "providers", filters.provider) if filters.provider else None,
        search(filters.q) if filters.q else None,
    ):
        if group is not None:
            wanted = group if wanted is None else wanted & group
    if wanted is not None:
        ids = [file for file in ids if file in wanted]
    if filters.exclude:
        unwanted = _any(store, "topics", filters.exclude)
        ids = [file for file in ids if file not in unwanted]
    if filters.min_quality:
        quality, least = facets.quality, filters.min_quality
        ids = [file for file in ids if quality[file] >= least]
    return ids


def _any(store: Store, kind: str, names: tuple[str, ...]) -> set[int]:
    return set().union(*(store.member_ids(f"{kind}/{name}") for name in names))


def render_filtered(
    store: Store, generation: Generation, route: urls.Route, facets: Facets, search: Search
) -> Document | None:
    """A subscriber's feed or its HTML page; None if there is no such feed or page.
    Raises BadRequest for a limit over the feed's own, Moved for a limit equal to it."""
    meta = store.feed(route.feed_key)
    if meta is None:
        return None
    filters = route.filters
    if filters.limit > meta["limit"]:
        raise urls.BadRequest(f"limit must be at most {meta['limit']}, this feed's own")
    if filters.limit == meta["limit"]:
        raise urls.Moved(urls.without_limit(route).key)
    if route.kind == urls.SEARCH and not filters.q:
        ids: list[int] = []  # the search page before a search: just its form
    else:
        ids = select(store, facets, route.feed_key, filters, search)
    limit = filters.limit or meta["limit"]
    shown = {**meta, "count": len(ids), "limit": limit, "own_limit": meta["limit"]}
    shown["filtered"] = filters.describe()
    if route.kind == urls.SEARCH:
        shown |= {"kind": urls.SEARCH, "name": "", "title": "Search"}
        shown["description"] = f"Articles matching “{filters.q}”" if filters.q else "Search"
    start = (route.number - 1) * limit
    if route.number > 1 and start >= len(ids):
        return None
    page = feed_page(store, generation, shown, route.number, filters, ids[start : start + limit])
    return render_page(page, route.fmt)

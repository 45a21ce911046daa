"""RFC 6721 tombstones: what a reload writes when a published article goes away.

An article departs when its identity was published and no longer is: its file was
deleted, or turned draft, scheduled again or expired, or its link changed. Each feed
that held it then keeps an `at:deleted-entry` (Atom) for `tombstone_retention`
seconds. An article that only leaves a feed (a topic edit, a config change, `limit`)
is still published, so it leaves none. A topic feed whose last article departed is
retired, not dropped: it answers an empty feed with its tombstones for the same time,
then 410 Gone. An identity published again takes its tombstones back.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable
from typing import Any

from feedservice.catalog import Catalog, Listed
from feedservice.store.writer import Writer


def update(
    tx: Writer, loader: Any, catalog: Catalog, config: Any, paths: Iterable[str] | None, now: int
) -> int | None:
    """Record the articles that departed since the loader's last catalog (among `paths`,
    or all), retire and bring back feeds, drop what has been kept long enough. Returns
    when the catalog next changes by itself (µs): a due article, an expiry, a tombstone's
    end."""
    retention = int(config.tombstone_retention * 1_000_000)
    if paths is None:
        vanished = _published_before(loader) - catalog.identities
    else:  # (each catalog's identities are built once: here, then as the next one's `before`)
        old = {row.identity for row in map(loader.files.get, paths) if row and row.identity}
        vanished = old - catalog.identities if old else set()
        vanished &= _published_before(loader) if vanished else set()
    if vanished:
        rows = loader.files.values()
        gone = {row.id: row.identity for row in rows if row.identity in vanished}
        for key, blob in tx.execute("SELECT key, members FROM feeds").fetchall():
            members = array("q", blob)
            rows = [(key, identity, now) for file, identity in gone.items() if file in members]
            tx.executemany("INSERT OR REPLACE INTO tombstones VALUES (?, ?, ?)", rows)
    refs = [ref for (ref,) in tx.execute("SELECT DISTINCT ref FROM tombstones")]
    back = [(ref,) for ref in refs if ref in catalog.identities]
    tx.executemany("DELETE FROM tombstones WHERE ref = ?", back)
    for key, state in loader.feed_states.items():
        if key not in catalog.feeds and tx.execute(_HAS, (key,)).fetchone():
            meta = json.dumps({**json.loads(state.meta), "count": 0, "newest": None})
            tx.execute("INSERT OR REPLACE INTO retired VALUES (?, ?, ?, 0)", (key, meta, now))
    new = [(key,) for key in catalog.feeds if key not in loader.feed_states]
    tx.executemany("DELETE FROM retired WHERE key = ?", new)
    tx.execute("DELETE FROM tombstones WHERE deleted <= ?", (now - retention,))
    tx.execute("UPDATE retired SET gone = 1 WHERE gone = 0 AND since <= ?", (now - retention,))
    ends = tx.execute(_ENDS).fetchall()
    dues = [end + retention for (end,) in ends if end is not None]
    return min([*dues, catalog.next_due] if catalog.next_due else dues, default=None)


_HAS = "SELECT 1 FROM tombstones WHERE feed = ? LIMIT 1"
_ENDS = (
    "SELECT min(deleted) FROM tombstones UNION ALL SELECT min(since) FROM retired WHERE NOT gone"
)


def _published_before(loader: Any) -> frozenset[str]:
    """What the loader's last catalog published; after a restart, what the last generation
    published (its articles as they stood at its time)."""
    if loader.catalog is not None:
        return loader.catalog.identities
    generation = loader.store.generation()
    if generation is None:
        return frozenset()
    then, hold = int(generation.committed_at * 1_000_000), loader.config.future == "schedule"
    listed = loader.listed()
    return frozenset(row.identity for row in listed if _live(row, then, hold))


def _live(entry: Listed, now: int, hold: bool) -> bool:
    expired = entry.expires is not None and entry.expires <= now
    return not (entry.draft or expired or (hold and -entry.sort > now))

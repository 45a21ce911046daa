"""The one writer: seeds and config in, a committed generation out.

`Loader.reload` scans the seed directory, parses what changed (across cores when
much did), keeps the last good version of a file that turned bad, builds the catalog,
renders what the change touched and commits it all, with a new generation, in one
transaction. Serving workers only ever read what it committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedservice
from feedservice import settings
from feedservice.catalog import TOPICS, Catalog, Entry, Feed, build_catalog
from feedservice.http import urls
from feedservice.ingest.files import scan
from feedservice.ingest.problem import Problem
from feedservice.render.documents import from_micros, render_feed_route, render_listing
from feedservice.runtime.parsing import ParseResult, parse_files
from feedservice.settings import ConfigError
from feedservice.store.db import FileRow, Generation, Store, Writer

log = logging.getLogger("feedservice.reload")
SHOWN_ERRORS = 10
LISTINGS = (
    urls.Route("index"),
    *(
        urls.Route("opml", which, "", fmt)
        for which in ("feeds", "topics")
        for fmt in urls.OPML_FORMATS
    ),
)


@dataclass(frozen=True)
class Reloaded:
    """What one reload changed."""

    generation: int
    added: int
    changed: int
    removed: int
    changed_feeds: tuple[str, ...]  # feed keys whose items or settings changed
    rendered_feeds: int
    duration: float
    catalog: Catalog
    site: dict[str, Any]  # the site settings in force (base URL, WebSub hub, ...)


class Loader:
    """Seed directory + config → the store. Only one loader may write a store."""

    def __init__(
        self,
        store: Store,
        seeds: Path,
        config_path: Path | None,
        *,
        config_required: bool = False,
        environ: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        workers: int = 1,
        render: bool = True,
    ) -> None:
        self.store = store
        self.seeds = seeds
        self.config_path = config_path
        self.config_required = config_required
        self.environ = dict(os.environ if environ is None else environ)
        self.options = dict(options or {})
        self.workers = workers
        self.render = render
        self.listeners: list[Callable[[Reloaded], None]] = []
        self.config: Any = self._read_config()  # raises ConfigError: fatal at start
        self.files: dict[str, FileRow] = {row.path: row for row in store.files()}
        self.entries = {path: _entry(row) for path, row in self.files.items() if row.identity}
        self.fingerprints = store.fingerprints()
        self.catalog: Catalog | None = None
        self.scan_problems: list[Problem] = []
        self.status: dict[str, str | None] = {"config_error": None, "seeds_error": None}
        self._check_code_version()

    def _read_config(self) -> Any:
        return settings.load(
            self.config_path, self.environ, self.options, required=self.config_required
        )

    def _check_code_version(self) -> None:
        """Documents rendered by other code, or from another seed directory, are dropped."""
        version = _code_version()
        seeds = str(self.seeds.resolve())
        if self.store.meta("code") != version or self.store.meta("seeds") != seeds:
            with self.store.transaction() as tx:
                if self.store.meta("seeds") not in (None, seeds):
                    tx.execute("DELETE FROM files")
                    tx.execute("DELETE FROM members")
                    self.files, self.entries = {}, {}
                tx.execute("DELETE FROM documents")
                tx.set_meta("code", version)
                tx.set_meta("seeds", seeds)
            self.fingerprints = {}

    # --- one reload ---------------------------------------------------------------------

    def reload(self) -> Reloaded | None:
        """Re-read config and seeds; commit a generation if anything changed."""
        started = time.monotonic()
        status = dict(self.status)
        config = self.config
        try:
            config = self._read_config()
            status["config_error"] = None
        except ConfigError as error:
            status["config_error"] = str(error)  # the last good config stays in force
        try:
            stamps, scan_problems = scan(self.seeds)
            status["seeds_error"] = None
        except Problem as problem:
            stamps, scan_problems = None, self.scan_problems
            status["seeds_error"] = f"{problem.source}: {problem.message}"
        if stamps is None:
            stamps = {path: row.stamp for path, row in self.files.items()}  # keep the last
        changed = [path for path, stamp in stamps.items() if self._stamp(path) != stamp]
        removed = [path for path in self.files if path not in stamps]
        same = (
            not changed
            and not removed
            and config == self.config
            and status == self.status
            and scan_problems == self.scan_problems
            and self.store.generation() is not None
        )
        if same:
            return None
        for name, error in status.items():
            if error and error != self.status.get(name):
                log.error("%s; keeping the last good one", error)
        return self._commit(config, status, scan_problems, changed, removed, started)

    def _stamp(self, path: str) -> bytes | None:
        row = self.files.get(path)
        return row.stamp if row is not None else None

    def _commit(
        self,
        config: Any,
        status: dict[str, str | None],
        scan_problems: list[Problem],
        changed: list[str],
        removed: list[str],
        started: float,
    ) -> Reloaded:
        now = time.time()
        files, entries = dict(self.files), dict(self.entries)
        added = sum(1 for path in changed if path not in files)
        with self.store.transaction() as tx:
            first_seen = self._forget(tx, removed, files, entries)
            for results in parse_files(self.seeds, changed, self.workers):
                for result in results:
                    row = _next_row(files.get(result.path), result, first_seen, now)
                    row = replace(row, id=tx.put_file(row, None if row.carried else result.record))
                    files[row.path] = row
                    if row.identity is None:
                        entries.pop(row.path, None)
                    elif not row.carried:
                        entries[row.path] = result.entry  # type: ignore[assignment]
                    _log_problems(result)
            catalog = build_catalog(entries.values(), config)
            ids = {path: row.id for path, row in files.items()}
            changed_feeds = self._write_feeds(tx, catalog, ids)
            problems = _problems(files.values(), scan_problems, catalog)
            summary = self._summary(catalog, problems, status, len(files), now)
            generation = Generation(0, now, _site(config), summary)
            rendered = self._render(tx, catalog, generation, entries, files) if self.render else 0
            summary["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
            summary["changes"] = {
                "added": added,
                "changed": len(changed) - added,
                "removed": len(removed),
            }
            number = tx.commit_generation(now, generation.site, summary)
        self.files, self.entries, self.catalog, self.config = files, entries, catalog, config
        self.status, self.scan_problems = status, scan_problems
        reloaded = Reloaded(
            number,
            added,
            len(changed) - added,
            len(removed),
            tuple(changed_feeds),
            rendered,
            time.monotonic() - started,
            catalog,
            generation.site,
        )
        log.info(
            "reload: +%d ~%d -%d files, %d errors, %d ms, %d feeds re-rendered",
            added,
            len(changed) - added,
            len(removed),
            summary["errors"],
            summary["duration_ms"],
            rendered,
            extra={
                **summary["changes"],
                "errors": summary["errors"],
                "duration_ms": summary["duration_ms"],
                "feeds_rendered": rendered,
            },
        )
        for listener in list(self.listeners):
            try:
                listener(reloaded)
            except Exception:  # a listener (metrics, WebSub) must never break reloading
                logging.getLogger("feedservice").exception("reload listener failed")
        return reloaded

    def _forget(
        self, tx: Writer, removed: list[str], files: dict[str, FileRow], entries: dict[str, Entry]
    ) -> dict[tuple[str, str], int]:
        """Drop removed files; what they published is remembered with its updated time, so
        a renamed file keeps it."""
        first_seen = {}
        for path in removed:
            row = files.pop(path)
            entries.pop(path, None)
            if row.identity and row.revision and row.updated is not None:
                first_seen[(row.identity, row.revision)] = row.updated
        tx.delete_files(removed)
        for row in files.values():  # duplicates elsewhere: their content was seen too
            if row.identity and row.revision and row.updated is not None:
                first_seen.setdefault((row.identity, row.revision), row.updated)
        return first_seen

    def _write_feeds(self, tx: Writer, catalog: Catalog, ids: dict[str, int]) -> list[str]:
        """Feed settings and membership, written as the difference from the last catalog."""
        old = self.catalog.feeds if self.catalog is not None else self._stored_feeds()
        changed = []
        for position, (key, feed) in enumerate(catalog.feeds.items()):
            before = old.get(key)
            if (
                before is not None
                and before.entries == feed.entries
                and before.meta() == feed.meta()
            ):
                continue
            changed.append(key)
            tx.put_feed(key, {**feed.meta(), "position": position})
            now = {(e.sort, e.identity): ids[e.source] for e in feed.entries}
            then = {
                (e.sort, e.identity): ids.get(e.source, -1)
                for e in (before.entries if before else ())
            }
            tx.remove_members(key, [k for k in then if k not in now])
            tx.add_members(key, [(*k, v) for k, v in now.items() if then.get(k) != v])
        for key in old:
            if key not in catalog.feeds:
                tx.delete_feed(key)
                changed.append(key)
        return changed

    def _stored_feeds(self) -> dict[str, Feed]:
        """After a restart, the feeds as the store holds them (for the first difference)."""
        rows = self.store.reader().execute(
            "SELECT feed, sort, identity, file FROM members ORDER BY feed, sort, identity"
        )
        by_id = {row.id: path for path, row in self.files.items()}
        members: dict[str, list[Entry]] = {}
        for feed, sort, identity, file in rows:
            entry = self.entries.get(by_id.get(file, ""))
            members.setdefault(feed, []).append(
                entry or Entry("", identity, sort, (), None, False, "")
            )
        feeds = {}
        for meta in self.store.feeds():
            key = f"{meta['kind']}/{meta['name']}"
            entries = tuple(members.get(key, ()))
            feeds[key] = Feed(
                meta["kind"],
                meta["name"],
                meta["title"],
                meta["description"],
                meta["limit"],
                entries,
            )
        return feeds

    def _render(
        self,
        tx: Writer,
        catalog: Catalog,
        generation: Generation,
        entries: dict[str, Entry],
        files: dict[str, FileRow],
    ) -> int:
        """Render every page-1 document whose inputs changed; drop those of gone feeds."""
        wanted: dict[str, str] = {}
        rendered_feeds = 0
        for feed in catalog.feeds.values():
            fingerprint = feed.fingerprint(1, generation.site, catalog.newest)
            routes = [urls.Route("feed", feed.kind, feed.name, fmt) for fmt in urls.FORMATS]
            routes.append(urls.Route("page", feed.kind, feed.name))
            stale = [route for route in routes if self.fingerprints.get(route.key) != fingerprint]
            for route in routes:
                wanted[route.key] = fingerprint
            for route in stale:
                document = render_feed_route(self.store, generation, route, fingerprint)
                assert document is not None
                tx.put_document(route.key, document)
            rendered_feeds += bool(stale)
        newest_change = _newest_change(catalog, files, generation.committed_at)
        listing = json.dumps(
            [
                generation.site,
                self.store.feeds(),
                generation.summary["articles"],
                newest_change.isoformat(),
            ],
            sort_keys=True,
            default=str,
        )
        fingerprint = hashlib.blake2b(listing.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        for route in LISTINGS:
            wanted[route.key] = fingerprint
            if self.fingerprints.get(route.key) != fingerprint:
                tx.put_document(
                    route.key,
                    render_listing(self.store, generation, route, newest_change, fingerprint),
                )
        tx.delete_documents([key for key in self.fingerprints if key not in wanted])
        self.fingerprints = wanted
        return rendered_feeds

    def _summary(
        self,
        catalog: Catalog,
        problems: list[Problem],
        status: dict[str, str | None],
        files: int,
        now: float,
    ) -> dict[str, Any]:
        errors = [problem for problem in problems if problem.fatal]
        return {
            "articles": len(catalog.articles),
            "feeds": len(catalog.feeds),
            "topics": sum(1 for feed in catalog.feeds.values() if feed.kind == TOPICS),
            "files": files,
            "drafts": len(catalog.drafts),
            "errors": len(errors),
            "warnings": len(problems) - len(errors),
            "first_errors": [problem.describe() for problem in errors[:SHOWN_ERRORS]],
            "newest": -catalog.newest if catalog.newest is not None else None,
            "loaded_at": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
            **status,
        }

    def problems(self) -> list[Problem]:
        """Every finding of the last reload, sorted: scan, file and catalog problems."""
        catalog = self.catalog or build_catalog(self.entries.values(), self.config)
        return _problems(self.files.values(), self.scan_problems, catalog)


def _entry(row: FileRow) -> Entry:
    return Entry(
        row.path,
        row.identity or "",
        row.sort or 0,
        row.topics,
        row.quality,
        row.draft,
        row.revision or "",
    )


def _next_row(
    old: FileRow | None, result: ParseResult, first_seen: dict[tuple[str, str], int], now: float
) -> FileRow:
    """The file's new row: its new article, or its last good one if it turned bad."""
    problems = [problem.as_dict() for problem in result.problems]
    stamp = result.stamp or b""
    if result.entry is None:
        if old is not None and old.identity is not None:  # keep serving the last good version
            return replace(old, stamp=stamp, problems=problems, carried=True)
        return FileRow(
            0, result.path, stamp, problems, False, None, None, (), None, False, None, None
        )
    entry = result.entry
    if old is not None and old.revision == entry.revision and old.updated is not None:
        updated = old.updated  # the same published content: it was not updated
    elif (entry.identity, entry.revision) in first_seen:
        updated = first_seen[(entry.identity, entry.revision)]  # moved or renamed
    elif old is not None and old.identity == entry.identity:
        updated = int(now * 1_000_000)  # an edit: readers see it as an update now
    else:
        updated = -entry.sort  # new to the store: as it was published
    return FileRow(
        0,
        result.path,
        stamp,
        problems,
        False,
        entry.identity,
        entry.sort,
        entry.topics,
        entry.quality,
        entry.draft,
        entry.revision,
        updated,
    )


def _problems(rows: Any, scan_problems: list[Problem], catalog: Catalog) -> list[Problem]:
    found = list(scan_problems)
    for row in rows:
        for data in row.problems:
            problem = Problem.from_dict(data)
            if row.carried and problem.fatal:
                problem = Problem(
                    problem.source,
                    problem.field,
                    problem.message + "; serving the last good version",
                    problem.line,
                )
            found.append(problem)
    found.extend(catalog.warnings)
    found.sort(key=lambda problem: (problem.source, problem.field, problem.message))
    return found


def _log_problems(result: ParseResult) -> None:
    for problem in result.problems:
        if problem.fatal:
            log.warning(
                "seed error: %s",
                problem.describe(),
                extra={
                    "path": problem.source,
                    "field": problem.field,
                    "reason": problem.message,
                    "line": problem.line,
                },
            )


def _site(config: Any) -> dict[str, Any]:
    """The site settings documents are rendered with (kept with each generation)."""
    skipped = {"feeds", "state_dir"}
    return {
        s.name: getattr(config, s.name) for s in settings.SITE_SETTINGS if s.name not in skipped
    }


def _newest_change(catalog: Catalog, files: dict[str, FileRow], now: float) -> datetime:
    """The newest publish or update time of any published article, never later than now:
    the Last-Modified of the index and OPML lists."""
    newest = 0
    for entry in catalog.articles:
        row = files.get(entry.source)
        newest = max(newest, -entry.sort, row.updated or 0 if row else 0)
    return min(from_micros(newest), datetime.fromtimestamp(now, UTC))


def _code_version() -> str:
    """A digest of this package's code and templates: rendered documents depend on it."""
    root = Path(feedservice.__file__).parent
    digest = hashlib.blake2b(digest_size=12)
    for path in sorted(root.rglob("*")):
        if path.suffix in {".py", ".html", ".css"}:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()

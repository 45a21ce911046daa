"""The one writer: seeds and config in, a committed generation out.

`Loader.reload` scans the seed directory, parses what changed (across cores when
much did), keeps the last good version of a file that turned bad, builds the catalog,
renders what the change touched and commits it all, with a new generation, in one
transaction. Serving workers only ever read what it committed.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedservice
from feedservice import settings
from feedservice.catalog import Catalog, build_catalog
from feedservice.ingest.files import scan
from feedservice.ingest.permalink import Site, site_of
from feedservice.ingest.problem import Problem
from feedservice.runtime import tombstones
from feedservice.runtime.parsing import CHUNK, POOL_THRESHOLD, parse_files
from feedservice.runtime.processes import Pool
from feedservice.runtime.publish import (
    DEFERRED,
    render_deferred,
    render_documents,
    stored_feeds,
    write_feeds,
)
from feedservice.runtime.seedfiles import (
    Seen,
    all_problems,
    log_problems,
    newest_change,
    next_row,
    published_part,
    seen_before,
)
from feedservice.runtime.summary import iso, reload_summary
from feedservice.settings import ConfigError
from feedservice.store.db import Store
from feedservice.store.rows import FileRow, Generation

log = logging.getLogger("feedservice.reload")
config_log = logging.getLogger("feedservice.reload.config")  # (quiet with it in check)
BIG_RELOAD_SECONDS = 0.25


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
        self.wake: Callable[[float], None] | None = None  # asks for a reload at a given time
        self._reloading = threading.Lock()
        self.config_stamp = _file_stamp(config_path)  # the config file as last read
        self.config: Any = self._read_config()  # raises ConfigError: fatal at start
        self.site: Site = site_of(self.config)  # what parsing depends on
        self.files: dict[str, FileRow] = {row.path: row for row in store.files()}
        self.stamps = {path: row.stamp for path, row in self.files.items()}  # (as scan gives)
        self.next_id = max((row.id for row in self.files.values()), default=0) + 1
        self.fingerprints = store.fingerprints()
        self.feed_states = stored_feeds(store)
        self.catalog: Catalog | None = None
        self.scan_problems: list[Problem] = []
        self.status: dict[str, str | None] = {"config_error": None, "seeds_error": None}
        self.started = True  # the first reload always commits (see reload)
        self.next_due: int | None = None  # µs: a scheduled article, expiry or tombstone's end
        self._check_versions()

    def _read_config(self) -> Any:
        return settings.load(
            self.config_path, self.environ, self.options, required=self.config_required
        )

    def _check_versions(self) -> None:
        """What another version of this code parsed is parsed again, what it rendered is
        rendered again, and a store made for another seed directory starts empty."""
        versions = {"seeds": str(self.seeds.resolve()), "site": repr(self.site), **_code_versions()}
        stored = {key: self.store.meta(key) for key in versions}
        if stored == versions:
            return
        with self.store.transaction() as tx:
            if stored["seeds"] not in (None, versions["seeds"]):
                for table in ("files", "feeds", "tombstones", "retired", "search"):
                    tx.execute(f"DELETE FROM {table}")
                self.files, self.feed_states, self.next_id = {}, {}, 1
                self.stamps = {}
            elif (stored["parse"], stored["site"]) != (versions["parse"], versions["site"]):
                tx.execute("UPDATE files SET stamp = x''")  # every file is read again
                self.files = {row.path: row for row in self.store.files()}
                self.stamps = dict.fromkeys(self.files, b"")
            tx.execute("DELETE FROM documents")
            for key, value in versions.items():
                tx.set_meta(key, value)
        self.fingerprints = {}

    # --- one reload ---------------------------------------------------------------------

    def reload(self) -> Reloaded | None:
        """Re-read config and seeds; commit a generation if anything changed."""
        with self._reloading:  # (the interval and a wake-up may fall due together)
            reloaded = self._reload()
            if self.next_due is not None and self.wake is not None:
                self.wake(self.next_due / 1e6)  # within a second of it, not at the next interval
            return reloaded

    def _reload(self) -> Reloaded | None:
        started = time.monotonic()
        status = dict(self.status)
        config = self.config
        config_stamp = _file_stamp(self.config_path)
        if config_stamp != self.config_stamp and self._config_settled(config_stamp):
            try:
                config = self._read_config()
                status["config_error"] = None
            except ConfigError as error:
                status["config_error"] = str(error)  # the last good config stays in force
        else:
            config_stamp = self.config_stamp  # (read when it has settled)
        try:
            stamps, scan_problems = scan(self.seeds, stat_files=bool(self.files))
            status["seeds_error"] = None
        except Problem as problem:
            stamps, scan_problems = None, self.scan_problems
            status["seeds_error"] = f"{problem.source}: {problem.message}"
        if stamps is None:
            stamps = {path: row.stamp for path, row in self.files.items()}  # keep the last
        changed, removed = [], []
        if stamps != self.stamps:
            before = self.stamps.get
            changed = sorted(path for path, stamp in stamps.items() if before(path) != stamp)
            removed = [path for path in self.stamps if path not in stamps]
        if site_of(config) != self.site:  # links and dates depend on it: read every file
            changed = sorted(stamps)
        same = (
            not changed
            and not removed
            and config == self.config
            and status == self.status
            and scan_problems == self.scan_problems
            and not self.started  # the first reload commits: the config or code may be new
            and not self._due(time.time())  # an article falls due or expires, a tombstone ends
        )
        if same:
            self.config_stamp = config_stamp
            return None
        for name, error in status.items():
            if error and error != self.status.get(name):
                log.error("%s; keeping the last good one", error)
        reloaded = self._commit(config, status, scan_problems, changed, removed, started)
        self.config_stamp = config_stamp
        if reloaded.duration > BIG_RELOAD_SECONDS:
            _give_back_memory()  # what a big catalog or config used goes back to the system
        return reloaded

    def render_deferred(self, seconds: float = 0.2) -> bool:
        """Render some of the pages the last reloads left (see publish.render_deferred),
        between reloads; True while some are left."""
        with self._reloading:
            self.fingerprints = {**self.fingerprints, **render_deferred(
                self.store, self.fingerprints, seconds
            )}  # fmt: skip
            return any(known.startswith(DEFERRED) for known in self.fingerprints.values())

    def _config_settled(self, stamp: tuple[int, ...] | None) -> bool:
        """Whether the config file has been left alone for `config_settle` seconds: a file
        caught in the middle of a save is read only once the editor is done. If it is not,
        the loader asks to be woken when it will be."""
        if stamp is None:
            return True  # no file (reading it says whether that is wrong)
        due = max(stamp[0], stamp[1]) / 1e9 + self.config.config_settle
        if time.time() >= due:
            return True
        if self.wake is not None:
            self.wake(due)
        return False

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
        micros, due = int(now * 1_000_000), self._due(now)
        files = dict(self.files)
        next_id = self.next_id  # (a new file's id is given here: no query for it)
        added = sum(1 for path in changed if path not in files)
        changes = {"added": added, "changed": len(changed) - added, "removed": len(removed)}
        seen: Seen | None = None  # what the store held: a renamed file keeps its updated time
        workers = self.workers if len(changed) >= POOL_THRESHOLD else 1
        with self.store.transaction() as tx, Pool(workers) as pool:
            tx.delete_files(removed)
            for path in removed:
                del files[path]
            for results in parse_files(self.seeds, changed, pool, site_of(config)):
                if seen is None:  # (one chunk: only its identities are looked up)
                    identities = {r.entry.identity for r in results if r.entry is not None}
                    wanted = identities if len(changed) <= CHUNK else None
                    seen = seen_before(self.files.values(), wanted)
                rows, indexed, unindexed = [], [], []  # (a carried file keeps its index row)
                for result in results:
                    row = next_row(files.get(result.path), result, seen, now)
                    if not row.id:
                        row, next_id = row._replace(id=next_id), next_id + 1
                    rows.append((row, None if row.carried else result.record))
                    if result.text is not None:
                        indexed.append((row.id, result.text))
                    elif not row.carried:
                        unindexed.append(row.id)  # a draft, or no article
                    files[row.path] = row
                    log_problems(result)
                tx.put_files(rows)
                tx.index_articles(indexed)
                tx.unindex(unindexed)
            if changed or removed or config != self.config or self.catalog is None or due:
                catalog = build_catalog(_listed(files), config, micros)
            else:  # (only the status changed)
                catalog = self.catalog
            everything = due or config != self.config or self.catalog is None
            paths = None if everything else changed + removed
            next_due = tombstones.update(tx, self, catalog, config, paths, micros)
            old = self.files.get
            edited = {p for p in changed if published_part(files[p]) != published_part(old(p))}
            changed_feeds, feed_states = write_feeds(tx, self.feed_states, catalog, edited)
            problems = all_problems(files.values(), scan_problems, catalog)
            summary = reload_summary(catalog, problems, status, len(files), now)
            generation = Generation(0, now, _site(config), summary)
            summary["newest_change"] = newest_change(catalog, files, now)
            fingerprints, rendered = self.fingerprints, 0
            if self.render:
                fingerprints, rendered = render_documents(
                    self.store, tx, catalog, generation, self.fingerprints, pool
                )
            committed = time.time()
            summary["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
            summary["loaded_at"] = iso(committed)
            summary["changes"] = changes
            if site_of(config) != self.site:
                tx.set_meta("site", repr(site_of(config)))
            number = tx.commit_generation(committed, generation.site, summary)
        self.store.checkpoint()  # (readers already see the generation)
        warned = self.catalog.config_warnings if self.catalog else ()
        if catalog.config_warnings and catalog.config_warnings != warned:
            found = "; ".join(f"{p.field}: {p.message}" for p in catalog.config_warnings)
            config_log.warning("config: %s", found)
        self.files, self.catalog, self.config = files, catalog, config
        self.next_id, self.feed_states, self.site = next_id, feed_states, site_of(config)
        if changed or removed:
            self.stamps = stamps = dict(self.stamps)
            stamps.update((files[path].path, files[path].stamp) for path in changed)
            for path in removed:
                del stamps[path]
        self.status, self.scan_problems, self.fingerprints = status, scan_problems, fingerprints
        self.started, self.next_due = False, next_due
        reloaded = Reloaded(
            number,
            *changes.values(),
            tuple(changed_feeds),
            rendered,
            time.monotonic() - started,
            catalog,
            generation.site,
        )
        log.info(
            "reload: +%d ~%d -%d files, %d errors, %d ms, %d feeds re-rendered",
            *changes.values(),
            summary["errors"],
            summary["duration_ms"],
            rendered,
            extra={
                **changes,
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

    def listed(self) -> list[FileRow]:
        """The rows that give an article: the catalog's entries."""
        return _listed(self.files)

    def _due(self, now: float) -> bool:
        return self.next_due is not None and now * 1_000_000 >= self.next_due

    def problems(self) -> list[Problem]:
        """Every finding of the last reload, sorted: scan, file and catalog problems."""
        now = int(time.time() * 1e6)
        catalog = self.catalog or build_catalog(self.listed(), self.config, now)
        return all_problems(self.files.values(), self.scan_problems, catalog)


def _listed(files: dict[str, FileRow]) -> list[FileRow]:
    return [row for row in files.values() if row.identity is not None]


def _give_back_memory() -> None:
    """Return freed heap to the system (glibc keeps it otherwise): after a reload over a
    large config or catalog, the loader shrinks back when they shrink."""
    with contextlib.suppress(OSError, AttributeError):  # (not glibc)
        ctypes.CDLL(None).malloc_trim(0)


def _file_stamp(path: Path | None) -> tuple[int, ...] | None:
    """What tells an edited config file from the one last read (see files.scan)."""
    try:
        info = os.stat(path) if path is not None else None
    except OSError:
        return None
    if info is None:
        return None
    return (info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino)


def _site(config: Any) -> dict[str, Any]:
    """The site settings documents are rendered with (kept with each generation)."""
    skipped = {"feeds", "state_dir"}
    return {
        s.name: getattr(config, s.name) for s in settings.SITE_SETTINGS if s.name not in skipped
    }


def _code_versions() -> dict[str, str]:
    """Digests of this package's code: `parse` of what reads seed files (ingest/), `code`
    of everything (rendered documents depend on it, templates included)."""
    root = Path(feedservice.__file__).parent
    digests = {"parse": hashlib.blake2b(digest_size=12), "code": hashlib.blake2b(digest_size=12)}
    for path in sorted(root.rglob("*")):
        if path.suffix in {".py", ".html", ".css"}:
            text = path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes()
            digests["code"].update(text)
            if path.parent.name == "ingest" or path == root / "store" / "search.py":  # (index)
                digests["parse"].update(text)
    return {key: digest.hexdigest() for key, digest in digests.items()}

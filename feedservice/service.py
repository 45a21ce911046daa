"""The running service's state: the current snapshot, swapped atomically on reload.

Requests read `service.snapshot` once and use only that object, so a reload in
progress is never visible half-done. Reloads are serialised by a lock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from feedservice import parsecache
from feedservice.catalog import Catalog, ReloadStats, SeedStore, build_catalog
from feedservice.config import Config, ConfigError, load_config
from feedservice.documents import DocumentSet
from feedservice.rendercache import RenderCache
from feedservice.seeds import SeedError

log = logging.getLogger("feedservice")
# Reload summaries and bad-file lines: with several workers only one writes them.
reload_log = logging.getLogger("feedservice.reload")

MIN_CACHED_RENDERS = parsecache.MIN_CACHED_FILES  # small directories render in no time
Listener = Callable[["Snapshot", "Snapshot"], None]


@dataclass(frozen=True)
class Snapshot:
    generation: int
    catalog: Catalog
    documents: DocumentSet
    loaded_at: datetime
    duration: float  # seconds the reload took
    stats: ReloadStats = field(default_factory=ReloadStats)
    config_error: str | None = None  # set while a newer, invalid config is being ignored

    @property
    def config(self) -> Config:
        return self.catalog.config


class Service:
    """Seeds + config → snapshots. `reload()` is the only writer."""

    def __init__(
        self,
        seeds_dir: str | os.PathLike[str],
        config_path: str | os.PathLike[str] | None,
        *,
        reload_interval: int | None = None,
        store: SeedStore | None = None,
    ) -> None:
        self.seeds_dir = Path(seeds_dir)
        self.config_path = Path(config_path) if config_path is not None else None
        self.interval_override = reload_interval
        self.store = store if store is not None else SeedStore(self.seeds_dir)
        self.render_cache = RenderCache.default_for(self.seeds_dir) if self.store.cache else None
        self.listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._config = self._read_config()  # raises ConfigError: a bad start config is fatal
        self.snapshot: Snapshot = self._build(self._config, None, ReloadStats(), None, 0)
        self.reload()
        self.store.start_cold_save()  # (only `serve` defers it: see SeedStore.use_children)

    @property
    def reload_interval(self) -> int:
        return self.interval_override or self.snapshot.config.reload_interval

    def _read_config(self) -> Config:
        return load_config(self.config_path)

    def reload(self) -> Snapshot:
        """Re-read config and seeds, build a new snapshot and swap it in."""
        with self._lock:
            started = time.perf_counter()
            previous = self.snapshot
            config_error = None
            try:
                self._config = self._read_config()
            except ConfigError as error:
                config_error = str(error)  # keep the last good config in force
                if config_error != previous.config_error:
                    reload_log.error("config: %s; keeping the last good config", config_error)
            try:
                stats = self.store.refresh()
            except SeedError as error:  # the seed directory itself is gone or unreadable
                reload_log.error("seeds: %s; still serving the last snapshot", error)
                return previous
            snapshot = self._build(self._config, previous, stats, config_error, started)
            self.snapshot = snapshot
        if snapshot.documents is not previous.documents or snapshot.generation == 1:
            self._log_reload(snapshot)
        for listener in list(self.listeners):
            try:
                listener(previous, snapshot)
            except Exception:  # a listener (e.g. WebSub) must never break reloading
                log.exception("reload listener failed")
        return snapshot

    def _log_reload(self, snapshot: Snapshot) -> None:
        stats = snapshot.stats
        errors = snapshot.catalog.errors
        summary = {
            "added": stats.added,
            "changed": stats.changed,
            "removed": stats.removed,
            "errors": len(errors),
            "duration_ms": round(snapshot.duration * 1000),
            "feeds_rendered": len(snapshot.documents.rendered_feeds),
        }
        reload_log.info(
            "reload: +%d ~%d -%d files, %d errors, %d ms, %d feeds re-rendered",
            *summary.values(),
            extra=summary,
        )
        for problem in errors:
            if problem.source in stats.changed_sources or snapshot.generation == 1:
                reload_log.warning(
                    "seed error: %s",
                    problem.describe(),
                    extra={
                        "path": problem.source,
                        "field": problem.field,
                        "reason": problem.message,
                        "line": problem.line,
                    },
                )

    def _documents(self, catalog: Catalog, previous: Snapshot | None) -> DocumentSet:
        """Render what changed. The first load reuses what the last run rendered (the
        render cache) and saves at once, so a server forking workers right after holds
        no half-done save; later reloads save in the background."""
        cache = self.render_cache
        if previous is None:  # the placeholder before the first load: render on demand only
            return DocumentSet(catalog, eager=False)
        # `serve`'s first load: a forked child renders half of what the render cache lacks.
        beside = previous.generation == 0 and self.store.use_children
        if cache is None or len(self.store) < MIN_CACHED_RENDERS:
            return DocumentSet(catalog, previous.documents, beside=beside)
        if previous.generation == 0:
            documents = DocumentSet(catalog, None, cache.load(), beside=beside)
            if documents.renders:
                cache.save(documents.rendered_documents())
            return documents
        documents = DocumentSet(catalog, previous.documents)
        if documents.renders:
            cache.save_in_background(documents.rendered_documents())
        return documents

    def _build(
        self,
        config: Config,
        previous: Snapshot | None,
        stats: ReloadStats,
        config_error: str | None,
        started: float,
    ) -> Snapshot:
        if previous is not None and not stats.any_change and config == previous.config:
            catalog, documents = previous.catalog, previous.documents
        else:
            catalog = build_catalog(self.store.articles(), config, self.store.problems())
            documents = self._documents(catalog, previous)
        generation = previous.generation + 1 if previous else 0
        return Snapshot(
            generation,
            catalog,
            documents,
            datetime.now(UTC),
            time.perf_counter() - started if started else 0.0,
            stats,
            config_error,
        )

"""Prometheus metrics at `/metrics`, with totals across every granian worker.

Why multiprocess mode: granian runs several worker processes behind one port,
and a scrape reaches whichever worker accepts it. With prometheus-client's
multiprocess mode each worker writes its values to small mmap files in
PROMETHEUS_MULTIPROC_DIR (a fresh directory per `feedservice serve` start) and
any worker's `/metrics` merges all of them, so one scrape reports the totals.
Per-process labels would need a scrape of every worker, which one port cannot do.

Which worker counts what:
- requests and renders: every worker counts its own; a scrape sums them.
- gauges (articles, feeds, topics, seed files and errors): every worker sets
  them after each reload; mode `livemostrecent` shows the latest value from a
  live worker, so a dead worker's stale value disappears.
- reload duration and reloaded files describe the seed directory, which every
  worker reads for itself; summing them would multiply by the worker count.
  One "reporting" worker (holding an flock on a file in the metrics directory)
  records them, and writes the reload log lines. If it dies the kernel drops
  the lock and the next worker to reload takes over.

Without PROMETHEUS_MULTIPROC_DIR (tests, `serve --dev`) the process-local
default registry is used and this process is always the reporter.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedservice.catalog import TOPIC_KIND

if TYPE_CHECKING:
    from flask import Flask, Response

    from feedservice.service import Service, Snapshot

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
LOCK_NAME = "reporter.lock"
OWNER_NAME = "owner.pid"  # the `serve` process that made a temporary directory
TEMP_PREFIX = "feedservice-metrics-"
RELOAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RENDER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
CHANGES = ("added", "changed", "removed")
ERROR_KINDS = ("yaml", "front_matter", "encoding", "file", "field", "other")
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")
_FEED_ROUTES = {"topics": "/topics/<name>", "feeds": "/feeds/<name>"}
_FEED_FILE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}\.(rss|atom|json)$")


# --- the per-server metrics directory (used by `feedservice serve`) ----------------------


def prepare_multiprocess_dir() -> tuple[Path, bool]:
    """Set PROMETHEUS_MULTIPROC_DIR for the workers; return (dir, created_by_us).

    Must run before any worker starts. An admin-set directory is emptied of
    old value files (a previous run's counts must not leak in); otherwise a
    fresh temporary directory is made and should be removed on exit.
    """
    configured = os.environ.get(ENV_DIR)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in [*path.glob("*.db"), path / LOCK_NAME]:
            stale.unlink(missing_ok=True)
        return path, False
    _sweep_orphans()
    path = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    (path / OWNER_NAME).write_text(str(os.getpid()), encoding="ascii")
    os.environ[ENV_DIR] = str(path)
    return path, True


def _sweep_orphans() -> None:
    """Remove directories of earlier servers that died without cleaning up (SIGKILL)."""
    for owner in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*/{OWNER_NAME}"):
        try:
            pid = int(owner.read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(owner.parent, ignore_errors=True)


def remove_multiprocess_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _multiproc_dir() -> str | None:
    return os.environ.get(ENV_DIR) or None


# --- which worker reports seed-directory metrics and reload logs -------------------------

_reporter_lock: dict[str, Any] = {"pid": None, "fd": None}
_reporter_guard = threading.Lock()


@contextlib.contextmanager
def single_process() -> Iterator[None]:
    """The server's parent loading the first snapshot before it forks the workers: it
    reports (it is the only process), without taking the lock the workers elect by."""
    _reporter_lock["parent"] = True
    try:
        yield
    finally:
        _reporter_lock["parent"] = False


def is_reporter() -> bool:
    """True if this process records reload metrics; tries to take over if free."""
    directory = _multiproc_dir()
    if directory is None or _reporter_lock.get("parent"):
        return True
    pid = os.getpid()
    with _reporter_guard:
        if _reporter_lock["pid"] == pid:
            return True
        try:
            fd = os.open(os.path.join(directory, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return True  # no lock file possible: better a line twice than none
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.set_inheritable(fd, False)
        _reporter_lock.update(pid=pid, fd=fd)
        return True


class ReporterFilter(logging.Filter):
    """Lets reload log lines through only in the reporting worker (see module doc)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return is_reporter()


# --- the metrics themselves --------------------------------------------------------------


class Metrics:
    """Every metric object; built once per process, after the worker's fork."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram, values

        if _multiproc_dir() is not None and not getattr(values.ValueClass, "_multiprocess", 0):
            # prometheus_client picks its value class at import; if it was imported
            # before `serve` set the directory, pick again so values go to the files.
            values.ValueClass = values.get_value_class()

        def gauge(name: str, doc: str, labels: tuple[str, ...] = (), mode: str = "livemostrecent"):
            return Gauge(name, doc, labels, multiprocess_mode=mode)

        self.reload_duration = Histogram(
            "feedservice_reload_duration_seconds",
            "Seconds one reload of config and seeds took (reporting worker).",
            buckets=RELOAD_BUCKETS,
        )
        self.reload_files = Counter(
            "feedservice_reload_files_total",
            "Seed files that reloads after start-up found added, changed or removed.",
            ["change"],
        )
        self.articles = gauge("feedservice_articles", "Published articles.")
        self.feeds = gauge("feedservice_feeds", "Feeds served (topic and configured).")
        self.topics = gauge("feedservice_topics", "Topic feeds served.")
        self.seed_files = gauge("feedservice_seed_files", "Seed files in the seed directory.")
        self.seed_errors = gauge(
            "feedservice_seed_errors", "Seed files kept out of the feeds, by kind.", ("kind",)
        )
        self.config_error = gauge(
            "feedservice_config_error", "1 while an invalid config file is being ignored."
        )
        self.last_reload = gauge(
            "feedservice_last_reload_timestamp_seconds",
            "Unix time of the newest reload of any worker.",
            mode="livemax",
        )
        self.requests = Counter(
            "feedservice_requests_total",
            "HTTP responses, by route, format and status.",
            ["route", "format", "status"],
        )
        self.renders = Counter("feedservice_renders_total", "Feed documents rendered.")
        self.render_duration = Histogram(
            "feedservice_render_duration_seconds",
            "Seconds one feed document took to render.",
            buckets=RENDER_BUCKETS,
        )
        for change in CHANGES:
            self.reload_files.labels(change)  # export zeros, so rate() works from the start


_metrics: Metrics | None = None
_metrics_guard = threading.Lock()


def get_metrics() -> Metrics:
    global _metrics
    if _metrics is None:
        with _metrics_guard:
            if _metrics is None:
                _metrics = Metrics()
    return _metrics


_request_children: dict[tuple[str, str, int], Any] = {}


def count_request(route: str, fmt: str, status: int) -> None:
    """Count one response; a dict hit and an mmap write, cheap enough for the fast path."""
    child = _request_children.get((route, fmt, status))
    if child is None:
        child = get_metrics().requests.labels(route, fmt, str(status))
        _request_children[(route, fmt, status)] = child
    child.inc()


def count_feed_request(kind: str, fmt: str, status: int) -> None:
    """The fast path's counter: same labels the Flask route would give."""
    count_request(_FEED_ROUTES[kind], fmt, status)


def record_render(seconds: float) -> None:
    metrics = get_metrics()
    metrics.renders.inc()
    metrics.render_duration.observe(seconds)


def error_kind(field: str) -> str:
    """A bounded label for a problem: pseudo-fields like `(yaml)` by name, else `field`."""
    if not field.startswith("("):
        return "field"
    kind = field.strip("()").replace(" ", "_")
    return kind if kind in ERROR_KINDS else "other"


def observe_snapshot(previous: Snapshot | None, current: Snapshot) -> None:
    """Update gauges after a reload; the reporter also records duration and changes."""
    metrics = get_metrics()
    catalog = current.catalog
    metrics.articles.set(len(catalog.articles))
    metrics.feeds.set(len(catalog.feeds))
    metrics.topics.set(sum(1 for kind, _ in catalog.feeds if kind == TOPIC_KIND))
    errors = dict.fromkeys(ERROR_KINDS, 0)
    for problem in catalog.errors:
        errors[error_kind(problem.field)] += 1
    for kind, count in errors.items():
        metrics.seed_errors.labels(kind).set(count)
    metrics.config_error.set(1 if current.config_error else 0)
    metrics.last_reload.set(current.loaded_at.timestamp())
    if not is_reporter():
        return
    metrics.reload_duration.observe(current.duration)
    if previous is not None:  # the initial load is not a change; see feedservice_seed_files
        stats = current.stats
        for change, count in zip(CHANGES, (stats.added, stats.changed, stats.removed), strict=True):
            if count:
                metrics.reload_files.labels(change).inc(count)


def set_seed_files(count: int) -> None:
    get_metrics().seed_files.set(count)


# --- exposition --------------------------------------------------------------------------


def mark_dead_workers(directory: str) -> None:
    """Drop live-mode gauge files of workers that are gone (granian respawns them)."""
    from prometheus_client import multiprocess

    for path in glob.glob(os.path.join(directory, "gauge_live*.db")):
        match = _LIVE_GAUGE_FILE.match(os.path.basename(path))
        if match is None:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and not _alive(pid):
            multiprocess.mark_process_dead(pid, directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exposition() -> tuple[bytes, str]:
    """(body, content type) of a scrape: every worker's values merged."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    get_metrics()  # a scrape before any request still lists every metric
    directory = _multiproc_dir()
    if directory is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    mark_dead_workers(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry), CONTENT_TYPE_LATEST


# --- wiring into the Flask app -----------------------------------------------------------


_followed: weakref.WeakSet[Service] = weakref.WeakSet()


def install(app: Flask, service: Service) -> None:
    """Add `/metrics`, count every Flask response and follow the service's reloads."""
    from flask import Response, request

    if service not in _followed:  # one listener per service, however many apps wrap it
        _followed.add(service)
        observe_snapshot(None, service.snapshot)
        set_seed_files(len(service.store))

        def on_reload(previous: Snapshot, current: Snapshot) -> None:
            observe_snapshot(previous, current)
            set_seed_files(len(service.store))

        service.listeners.append(on_reload)

    def metrics_view() -> Response:
        body, content_type = exposition()
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])

    @app.after_request
    def count(response: Response) -> Response:
        route, fmt = request_labels(request.url_rule, request.view_args or {})
        count_request(route, fmt, response.status_code)
        return response


def request_labels(rule: Any, view_args: dict[str, Any]) -> tuple[str, str]:
    """Bounded (route, format) labels for a Flask request: URL shapes, never raw paths."""
    if rule is None:
        return "unmatched", "other"
    endpoint = rule.endpoint
    if endpoint == "feed":
        match = _FEED_FILE.match(str(view_args.get("filename", "")))
        return _FEED_ROUTES.get(view_args.get("kind", ""), rule.rule), (
            match.group(1) if match else "other"
        )
    if endpoint == "feed_page":
        return f"/{view_args.get('kind')}/<name>/", "html"
    if endpoint == "opml":
        return f"/{view_args.get('which')}.opml", "opml"
    known: dict[str, tuple[str, str]] = {
        "index": ("/", "html"),
        "healthz": ("/healthz", "json"),
        "metrics": ("/metrics", "text"),
        "static": ("/static", "other"),
    }
    return known.get(endpoint, (rule.rule, "other"))


def timed(render: Callable[[], Any]) -> Any:
    """Run one render and record it (used by documents.py)."""
    started = time.perf_counter()
    result = render()
    record_render(time.perf_counter() - started)
    return result

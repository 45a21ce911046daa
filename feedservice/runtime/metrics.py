"""Prometheus metrics at `/metrics`: one scrape of any worker reports the whole service.

- Gauges describe the newest generation (articles, feeds, topics, seed files and
  errors, config error, last reload): every worker reads them from the store at
  scrape time, so all workers report the same values.
- Counters and histograms are counted where the work happens: reloads and renders
  by the loader, requests by each worker. prometheus-client's multiprocess mode adds
  them up across processes: `serve` points `PROMETHEUS_MULTIPROC_DIR` (the library's
  own switch) at `<state_dir>/metrics` before it starts any process, and empties it.
  Without it (tests, `--dev`) the process-local registry is used.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from feedservice.http import urls
from feedservice.store.db import Store

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
RELOAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RENDER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
CHANGES = ("added", "changed", "removed")
ERROR_KINDS = ("yaml", "front_matter", "encoding", "file", "directory", "field", "other")
_OTHER_ROUTES = {"/healthz": ("/healthz", "json"), "/metrics": ("/metrics", "text")}


def prepare_directory(state_dir: Path) -> Path:
    """An empty multiprocess directory for this start, before any process starts."""
    directory = state_dir / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[ENV_DIR] = str(directory)
    return directory


class _Metrics:
    """Every counter and histogram; built on first use, in the process that counts."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram, values

        if os.environ.get(ENV_DIR) and not getattr(values.ValueClass, "_multiprocess", 0):
            values.ValueClass = values.get_value_class()  # imported before serve set the dir
        self.requests = Counter(
            "feedservice_requests_total",
            "HTTP responses, by route shape, format and status.",
            ["route", "format", "status"],
        )
        self.reload_duration = Histogram(
            "feedservice_reload_duration_seconds",
            "Seconds each committed reload took.",
            buckets=RELOAD_BUCKETS,
        )
        self.reload_files = Counter(
            "feedservice_reload_files_total",
            "Seed files that reloads after the first found added, changed or removed.",
            ["change"],
        )
        self.renders = Counter("feedservice_renders_total", "Documents rendered by the loader.")
        self.render_duration = Histogram(
            "feedservice_render_duration_seconds",
            "Seconds one document took to render.",
            buckets=RENDER_BUCKETS,
        )
        for change in CHANGES:
            self.reload_files.labels(change)  # zeros from the start, so rate() works


_metrics: _Metrics | None = None
_guard = threading.Lock()
_request_children: dict[tuple[str, str, int], Any] = {}


def get() -> _Metrics:
    global _metrics
    with _guard:
        if _metrics is None:
            _metrics = _Metrics()
    return _metrics


def count_request(route: str, fmt: str, status: int) -> None:
    """One response; a dict hit and a counter increment."""
    child = _request_children.get((route, fmt, status))
    if child is None:
        child = _request_children[(route, fmt, status)] = get().requests.labels(
            route, fmt, str(status)
        )
    child.inc()


def timed(render: Callable[..., Any], *args: Any) -> Any:
    """`render(*args)`, counted and timed as one render."""
    started = time.perf_counter()
    result = render(*args)
    metrics = get()
    metrics.renders.inc()
    metrics.render_duration.observe(time.perf_counter() - started)
    return result


def observe_reload(reloaded: Any, first: bool) -> None:
    """After a committed reload: its duration and, after the first, its file changes."""
    metrics = get()
    metrics.reload_duration.observe(reloaded.duration)
    if not first:
        for change in CHANGES:
            count = getattr(reloaded, change)
            if count:
                metrics.reload_files.labels(change).inc(count)


def error_kind(field: str) -> str:
    """A bounded label for a problem: pseudo-fields like `(yaml)` by name, else `field`."""
    if not field.startswith("("):
        return "field"
    kind = field.strip("()").replace(" ", "_")
    return kind if kind in ERROR_KINDS else "other"


class GenerationCollector(Collector):
    """The newest generation's figures, read from the store at scrape time."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        generation = self.store.generation()
        summary = generation.summary if generation else {}
        for name, doc, value in (
            ("articles", "Published articles.", summary.get("articles", 0)),
            ("feeds", "Feeds served (topic and configured).", summary.get("feeds", 0)),
            ("topics", "Topic feeds served.", summary.get("topics", 0)),
            ("seed_files", "Seed files in the seed directory.", summary.get("files", 0)),
            (
                "config_error",
                "1 while an invalid config is ignored.",
                bool(summary.get("config_error")),
            ),
            ("generation", "The newest committed generation.", generation.id if generation else 0),
            (
                "last_reload_timestamp_seconds",
                "Unix time of the newest generation.",
                generation.committed_at if generation else 0,
            ),
        ):
            yield GaugeMetricFamily(f"feedservice_{name}", doc, value=float(value))
        errors = GaugeMetricFamily(
            "feedservice_seed_errors", "Bad seed files, by kind.", labels=["kind"]
        )
        for kind in ERROR_KINDS:
            errors.add_metric([kind], float(summary.get("error_kinds", {}).get(kind, 0)))
        yield errors


def exposition(store: Store) -> tuple[bytes, str]:
    """(body, content type) of one scrape: every process's counters, the store's gauges."""
    get()  # a scrape before any request still lists every metric
    registry = CollectorRegistry()
    directory = os.environ.get(ENV_DIR)
    if directory:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=directory)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    registry = CollectorRegistry()
    registry.register(GenerationCollector(store))
    return body + generate_latest(registry), CONTENT_TYPE_LATEST


def instrument(app: Any, store: Store) -> Any:
    """Add `/metrics` to a Flask app and count every response, the fast path's included."""
    from flask import Response

    def metrics_view() -> Response:
        body, content_type = exposition(store)
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
    inner = app.wsgi_app

    def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: Any, *args: Any) -> Any:
            count_request(*_label(environ.get("PATH_INFO", "")), int(status[:3]))
            return start_response(status, headers, *args)

        return inner(environ, start)

    app.wsgi_app = counted
    return app


@functools.lru_cache(maxsize=4096)  # the same few paths over and over
def _label(path: str) -> tuple[str, str]:
    """(route, format): URL shapes, never raw paths."""
    try:
        route = urls.parse(path)
    except (urls.BadRequest, urls.Moved):
        route = None
    if route is not None:
        return route.label
    if path.startswith("/static/"):
        return "/static", "other"
    return _OTHER_ROUTES.get(path, ("unmatched", "other"))

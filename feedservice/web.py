"""HTTP: the Flask app factory, routes and conditional responses.

Every route reads `service.snapshot` once, so a response never mixes two
reload generations. Feeds, pages and OPML are built once per snapshot and
served as cached bytes through `conditional.feed_response`.
"""

from __future__ import annotations

import os
import re
from datetime import UTC
from typing import Any

from flask import Flask, Response, abort, render_template, request
from werkzeug.exceptions import HTTPException

from feedservice import __version__
from feedservice.articles import slugify
from feedservice.catalog import CONFIGURED_KIND, TOPIC_KIND, Feed
from feedservice.conditional import feed_response
from feedservice.documents import Document, make_document
from feedservice.feeds import CONTENT_TYPES, FORMATS
from feedservice.feeds.page import EPOCH, FeedPage, newest_date
from feedservice.metrics import install as install_metrics
from feedservice.opml import render_opml
from feedservice.service import Service, Snapshot

HTML_TYPE = "text/html; charset=utf-8"
OPML_TYPE = "text/x-opml; charset=utf-8"
CSP = (
    "default-src 'none'; style-src 'self'; img-src https: http: data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
MAX_TARGET_BYTES = 8192
PAGE_PARAM = re.compile(r"^[1-9][0-9]{0,8}$")
FEED_FILE = re.compile(r"^([a-z0-9][a-z0-9_-]{0,127})\.(rss|atom|json)$")
SHOWN_ERRORS = 10


def create_app(service: Service) -> Flask:
    app = Flask(__name__)
    app.config["SERVICE"] = service
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.add_template_filter(lambda value: value.astimezone(UTC), "utc")
    install_metrics(app, service)  # /metrics, request counts, reload gauges

    def snapshot() -> Snapshot:
        return service.snapshot

    def serve(document: Document, snap: Snapshot) -> Response:
        status, headers, body = feed_response(
            document, request.method, request.headers, snap.config.reload_interval
        )
        return exact_response(status, headers, body)

    @app.before_request
    def refuse_long_targets() -> Response | None:
        target = request.environ.get("RAW_URI") or request.full_path
        if len(target.encode("utf-8", "surrogateescape")) > MAX_TARGET_BYTES:
            return Response("Request target too long\n", 414, mimetype="text/plain")
        return None

    @app.get("/")
    def index() -> Response:
        snap = snapshot()
        document = snap.documents.extra(("html", "index"), lambda: _index_page(snap))
        return serve(document, snap)

    @app.get("/<any(topics, feeds):kind>/<string:filename>")
    def feed(kind: str, filename: str) -> Response:
        snap = snapshot()
        match = FEED_FILE.match(filename)
        if match is None:
            abort(404)
        name, fmt = match.groups()
        number = _page_number(request.args.get("page"))
        found = snap.catalog.feed(kind, name)
        if found is None or number > found.page_count:
            abort(404)
        document = snap.documents.get(fmt, kind, name, number)
        if document is None:
            abort(404)
        return serve(document, snap)

    @app.get("/<any(topics, feeds):kind>/<string:name>/")
    def feed_page(kind: str, name: str) -> Response:
        snap = snapshot()
        found = snap.catalog.feed(kind, name)
        number = _page_number(request.args.get("page"))
        if found is None or number > found.page_count:
            abort(404)
        document = snap.documents.extra(
            ("html", kind, name, str(number)), lambda: _feed_page(snap, found, number)
        )
        return serve(document, snap)

    @app.get("/<any(feeds, topics):which>.opml")
    def opml(which: str) -> Response:
        snap = snapshot()
        fmt = request.args.get("format", "atom")
        if fmt not in {"atom", "rss"}:
            abort(400, "format must be atom or rss")
        document = snap.documents.extra(
            ("opml", which, fmt),
            lambda: make_document(render_opml(snap.catalog, which, fmt), OPML_TYPE, _newest(snap)),
        )
        return serve(document, snap)

    @app.get("/healthz")
    def healthz() -> Response:
        snap = snapshot()
        response = app.json.response(health(snap))
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = CSP
            response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.errorhandler(HTTPException)
    def short_error(error: HTTPException) -> Response:
        message = error.description if error.code == 400 else error.name
        return Response(
            f"{error.code} {message}\n", status=error.code or 500, mimetype="text/plain"
        )

    return app


def exact_response(status: int, headers: list[tuple[str, str]], body: bytes) -> Response:
    """A Response carrying exactly these headers: no default Content-Type on a 304, and a
    HEAD keeps the Content-Length of the GET body (Werkzeug would reset both)."""
    response = Response(status=status)
    response.headers.clear()
    response.headers.extend(headers)
    response.response = [body]
    return response


def _page_number(value: str | None) -> int:
    if value is None:
        return 1
    if not PAGE_PARAM.match(value):
        abort(400, "page must be a whole number from 1")
    return int(value)


def _newest(snap: Snapshot) -> Any:
    articles = snap.catalog.articles
    return articles[0].published if articles else EPOCH


def feed_links(feed: Feed, snap: Snapshot) -> dict[str, str]:
    """Format → root-relative URL, for subscribe links and autodiscovery on our pages."""
    return {fmt: f"{feed.path}.{fmt}" for fmt in FORMATS}


def _index_page(snap: Snapshot) -> Document:
    catalog = snap.catalog
    html = render_template(
        "index.html",
        config=snap.config,
        catalog=catalog,
        configured=catalog.feeds_of(CONFIGURED_KIND),
        topics=catalog.feeds_of(TOPIC_KIND),
        links=lambda feed: feed_links(feed, snap),
        content_types=CONTENT_TYPES,
        version=__version__,
    )
    return make_document(html.encode("utf-8", "surrogatepass"), HTML_TYPE, _newest(snap))


def _feed_page(snap: Snapshot, feed: Feed, number: int = 1) -> Document:
    page = FeedPage(feed, number, snap.config, newest_date(snap.catalog))
    html = render_template(
        "feed.html",
        config=snap.config,
        feed=feed,
        page=page,
        items=page.items,
        links=feed_links(feed, snap),
        topic_path=lambda topic: f"/{TOPIC_KIND}/{slugify(topic)}/",
        content_types=CONTENT_TYPES,
        version=__version__,
    )
    return make_document(html.encode("utf-8", "surrogatepass"), HTML_TYPE, page.updated)


def health(snap: Snapshot) -> dict[str, Any]:
    catalog = snap.catalog
    errors = catalog.errors
    return {
        "status": "degraded" if snap.config_error else "ok",
        "articles": len(catalog.articles),
        "feeds": len(catalog.feeds),
        "topics": len(catalog.feeds_of(TOPIC_KIND)),
        "generation": snap.generation,
        "last_reload": snap.loaded_at.isoformat().replace("+00:00", "Z"),
        "last_reload_duration_ms": round(snap.duration * 1000, 1),
        "seed_errors": {
            "count": len(errors),
            "first": [problem.describe() for problem in errors[:SHOWN_ERRORS]],
        },
        "config_error": snap.config_error,
        "pid": os.getpid(),
    }

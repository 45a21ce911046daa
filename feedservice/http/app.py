"""HTTP: the Flask app, and a thin WSGI path in front of it for cached responses.

Every URL of the grammar (urls.py) is answered by `answer`: the Flask view calls it for
any request, and `FastPath` calls it for GET and HEAD without Flask's per-request work,
passing everything that is not a 200 or 304 on to Flask. Answers come from the store's
newest generation (source.py); this process holds no catalog.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import Gone, HTTPException, NotFound, ServiceUnavailable
from werkzeug.http import HTTP_STATUS_CODES

from feedservice.http import urls
from feedservice.http.conditional import ANSWER_DEPENDS_ON, Headers, respond
from feedservice.http.source import Source
from feedservice.store.db import Store

CSP = (
    "default-src 'none'; style-src 'self'; img-src https: http: data:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
MAX_TARGET_BYTES = 8192
SHOWN_ERRORS = 10
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_STATUS_LINES = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 304)}
MEMO_ANSWERS = 4096  # answers kept per generation and worker, and at most
MEMO_ANSWER_BYTES = 4 << 20  # this many bytes of their bodies (mostly the memo's own)


def answer(
    source: Source, route: urls.Route, method: str, headers: Mapping[str, str]
) -> tuple[int, Headers, bytes] | None:
    """The response to a GET or HEAD of a route; None if there is no such feed or page."""
    found = source.document(route)
    if found is None:
        raise ServiceUnavailable("the first load is still running; try again in a moment")
    generation, document = found
    if document is None:
        return None
    status, response_headers, body = respond(
        document, method, headers, generation.site["reload_interval"]
    )
    if document.content_type.startswith("text/html"):
        response_headers += [("Content-Security-Policy", CSP), ("Referrer-Policy", "no-referrer")]
    return status, response_headers, body


def create_app(store: Store) -> Flask:
    """The WSGI app of one worker: `app.wsgi_app` already has the fast path in front."""
    app = Flask(__name__, static_folder="static")
    # No redirect is ever built from the request's Host header: Werkzeug's slash merging
    # and strict slashes would answer 308s to wherever the client said it was.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    source = Source(store)

    @app.before_request
    def refuse_long_targets() -> Response | None:
        target = request.environ.get("RAW_URI") or request.full_path
        if len(target.encode("utf-8", "surrogateescape")) > MAX_TARGET_BYTES:
            return Response("414 Request target too long\n", 414, mimetype="text/plain")
        return None

    @app.route("/", defaults={"path": ""}, methods=["GET", "HEAD"])
    @app.route("/<path:path>", methods=["GET", "HEAD"])
    def grammar(path: str) -> Response:
        try:
            route = urls.parse("/" + path, request.query_string.decode("latin-1"))
            found = route and answer(source, route, request.method, request.headers)
        except urls.BadRequest as error:
            return _short(400, str(error))
        except urls.Moved as moved:
            return _moved(source, moved.path)
        if route is None:
            raise NotFound()
        if found is None:
            retired = route.view in {"feed", "page"} and store.retired(route.feed_key)
            raise Gone() if retired and retired[1] else NotFound()  # its articles were deleted
        response = Response(status=found[0])
        response.headers.clear()  # exactly these headers: no default type on a 304
        response.headers.extend(found[1])
        response.response = [found[2]]  # a HEAD keeps the GET's Content-Length
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        response = app.json.response(health(source))
        response.status_code = 200 if source.generation() is not None else 503
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.after_request
    def finish(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.errorhandler(HTTPException)
    def short_error(error: HTTPException) -> Response:
        response = _short(error.code or 500, error.description if error.code in (400, 503) else "")
        for name, value in error.get_headers():
            if name.lower() in {"allow", "retry-after"}:
                response.headers[name] = value
        if error.code == 503:
            response.headers["Retry-After"] = "1"
        return response

    app.wsgi_app = FastPath(source, app.wsgi_app)  # type: ignore[method-assign]
    return app


def _moved(source: Source, path: str) -> Response:
    """301 to the canonical URL, on `base_url` (never on the request's Host header)."""
    generation = source.generation()
    base = generation.site["base_url"] if generation is not None else ""
    response = _short(301, f"moved to {base + path}")
    response.headers["Location"] = base + path
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def _short(code: int, message: str = "") -> Response:
    text = f"{code} {message or HTTP_STATUS_CODES.get(code, 'Error')}\n"
    return Response(text, status=code, mimetype="text/plain")


def health(source: Source) -> dict[str, Any]:
    generation = source.generation()
    if generation is None:
        return {"status": "loading", "articles": 0, "generation": 0, "pid": os.getpid()}
    summary = generation.summary
    degraded = summary.get("config_error") or summary.get("seeds_error")
    return {
        "status": "degraded" if degraded else "ok",
        "articles": summary["articles"],
        "feeds": summary["feeds"],
        "topics": summary["topics"],
        "generation": generation.id,
        "last_reload": summary["loaded_at"],
        "last_reload_duration_ms": summary["duration_ms"],
        "seed_errors": {
            "count": summary["errors"],
            "first": summary["first_errors"][:SHOWN_ERRORS],
        },
        "scheduled": {"count": summary.get("scheduled", 0), "next": summary.get("next_scheduled")},
        "config_warnings": summary.get("config_warnings", []),
        "config_error": summary.get("config_error"),
        "seeds_error": summary.get("seeds_error"),
        "pid": os.getpid(),
    }


class FastPath:
    """GET and HEAD of the grammar's URLs, answered without Flask when the answer is a
    200 or 304; everything else (errors included) goes to Flask, which calls the same
    `answer`, so both paths give the same bytes.

    Pollers repeat the same requests, and an answer depends only on the generation and
    on the request's method, path, query and three headers; so each answer is kept for
    the rest of its generation (bounded), and a repeated poll is a dictionary lookup."""

    def __init__(self, source: Source, fallback: WSGIApp) -> None:
        self.source = source
        self.fallback = fallback
        self._generation = 0
        self._fixed = _Answers(evict=False)  # fixed feeds: the first answers of a generation
        self._subscriber = _Answers(evict=True)  # subscribers': the newest answers

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        get = environ.get
        method, path, query = get("REQUEST_METHOD"), get("PATH_INFO", ""), get("QUERY_STRING", "")
        generation = self.source.generation()
        if generation is None or (method != "GET" and method != "HEAD"):
            return self.fallback(environ, start_response)
        key = (method, path, query, *map(get, ANSWER_DEPENDS_ON))
        if self._generation != generation.id:
            self._generation = generation.id
            self._fixed, self._subscriber = _Answers(evict=False), _Answers(evict=True)
        found = self._fixed.answers.get(key) or self._subscriber.answers.get(key)
        if found is None and len(path) + len(query) < MAX_TARGET_BYTES:
            try:
                route = urls.parse(path, query)
                found = route and answer(self.source, route, method, _EnvironHeaders(environ))
            except (HTTPException, urls.BadRequest, urls.Moved):
                found = None
            if found and route and sum(len(v or "") for v in key[3:]) < 512:
                (self._subscriber if route.subscriber else self._fixed).put(key, found)
        if not found:
            return self.fallback(environ, start_response)
        status, headers, body = found
        start_response(_STATUS_LINES[status], list(headers))
        return [body]


class _Answers:
    """One generation's answers, bounded in count and bytes. Fixed feeds keep the first
    ones (pollers repeat them); subscribers' feeds evict the oldest (a FIFO), so that
    endless distinct filters cannot freeze out the ones readers poll."""

    __slots__ = ("answers", "evict", "size")

    def __init__(self, evict: bool) -> None:
        self.answers: dict[tuple[Any, ...], tuple[int, Headers, bytes]] = {}
        self.evict = evict
        self.size = 0

    def put(self, key: tuple[Any, ...], found: tuple[int, Headers, bytes]) -> None:
        answers = self.answers
        while (
            self.evict
            and answers
            and (len(answers) >= MEMO_ANSWERS or self.size + len(found[2]) > MEMO_ANSWER_BYTES)
        ):
            self.size -= len(answers.pop(next(iter(answers)))[2])
        if len(answers) < MEMO_ANSWERS and self.size + len(found[2]) <= MEMO_ANSWER_BYTES:
            answers[key] = found
            self.size += len(found[2])


class _EnvironHeaders:
    """Just enough of a header mapping over a WSGI environ for `respond`."""

    __slots__ = ("environ",)

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), default)

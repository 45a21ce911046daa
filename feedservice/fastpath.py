"""A thin WSGI layer that answers cached feed GET/HEAD requests without Flask.

Readers poll feeds far more than anything else, and most polls end in 304. This
layer matches only `/topics/<slug>.<fmt>` and `/feeds/<name>.<fmt>` with no
query or a plain `?page=N`, and answers from the current snapshot through the
same `feed_response` the Flask route uses. Everything else, including every
error case, goes to Flask unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.http import HTTP_STATUS_CODES

from feedservice.conditional import feed_response
from feedservice.metrics import count_feed_request
from feedservice.service import Service

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_PATH = re.compile(r"^/(topics|feeds)/([a-z0-9][a-z0-9_-]{0,127})\.(rss|atom|json)$")
_QUERY = re.compile(r"^(?:page=([1-9][0-9]{0,8}))?$")
# The status lines werkzeug's Response produces, so both paths match byte for byte.
_REASONS = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 304)}


class _EnvironHeaders:
    """Just enough of a header mapping over a WSGI environ for `feed_response`."""

    __slots__ = ("environ",)

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), default)


class FastPath:
    def __init__(self, service: Service, fallback: WSGIApp) -> None:
        self.service = service
        self.fallback = fallback

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method == "GET" or method == "HEAD":
            path = _PATH.match(environ.get("PATH_INFO", ""))
            query = _QUERY.match(environ.get("QUERY_STRING", ""))
            if path is not None and query is not None:
                snap = self.service.snapshot
                kind, name, fmt = path.groups()
                number = int(query.group(1) or 1)
                feed = snap.catalog.feeds.get((kind, name))
                if feed is not None and number <= feed.page_count:
                    document = snap.documents.get(fmt, kind, name, number)
                    if document is not None:
                        status, headers, body = feed_response(
                            document, method, _EnvironHeaders(environ), snap.config.reload_interval
                        )
                        start_response(_REASONS[status], headers)
                        count_feed_request(kind, fmt, status)
                        return [body]
        return self.fallback(environ, start_response)

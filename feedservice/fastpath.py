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
    """Just enough of a header mapping over a WSGI environ for `feed_response`; notes
    which headers were read, so only answers that depend on the memo's key are kept."""

    __slots__ = ("environ", "read")

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.read: set[str] = set()

    def get(self, name: str, default: str | None = None) -> str | None:
        key = "HTTP_" + name.upper().replace("-", "_")
        self.read.add(key)
        return self.environ.get(key, default)


# Pollers repeat the same requests: the same feed, with the same few header values.
_MEMO_ENTRIES = 2048  # answers kept per snapshot; emptied when full, so memory stays bounded
_MEMO_KEY_CHARS = 512  # requests with longer header values are answered, never memoised
_MEMO_HEADERS = frozenset({"HTTP_ACCEPT_ENCODING", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE"})
_Answer = tuple[str, list[tuple[str, str]], bytes, str, str, int]


class FastPath:
    """Answers cached feed requests; memoises each page-1 answer per snapshot.

    A feed response depends only on the snapshot, the method, the path, the page and
    three request headers (Accept-Encoding, If-None-Match, If-Modified-Since), so an
    answer computed once is exact for the same request until the next reload. The
    memo belongs to one snapshot: a reload starts an empty one, and a request still
    running on the old snapshot can only write into the old memo.
    """

    def __init__(self, service: Service, fallback: WSGIApp) -> None:
        self.service = service
        self.fallback = fallback
        self._memo: tuple[object, dict[tuple[Any, ...], _Answer]] = (None, {})

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        get = environ.get
        key = (
            get("REQUEST_METHOD"),
            get("PATH_INFO"),
            get("QUERY_STRING", ""),
            get("HTTP_ACCEPT_ENCODING"),
            get("HTTP_IF_NONE_MATCH"),
            get("HTTP_IF_MODIFIED_SINCE"),
        )
        snap = self.service.snapshot
        owner, memo = self._memo
        if owner is not snap:
            owner, memo = self._memo = (snap, {})
        answer = memo.get(key)
        if answer is None:
            request_headers = _EnvironHeaders(environ)
            answer = self._answer(snap, environ, request_headers)
            if answer is None:
                return self.fallback(environ, start_response)
            if (
                not key[2]  # page 1 only: the snapshot holds its body anyway
                and request_headers.read <= _MEMO_HEADERS  # it depends on the key alone
                and sum(len(part or "") for part in key[3:]) <= _MEMO_KEY_CHARS
            ):
                if len(memo) >= _MEMO_ENTRIES:
                    memo.clear()
                memo[key] = answer
        status_line, headers, body, kind, fmt, status = answer
        start_response(status_line, list(headers))
        count_feed_request(kind, fmt, status)
        return [body]

    @staticmethod
    def _answer(snap: Any, environ: dict[str, Any], headers: _EnvironHeaders) -> _Answer | None:
        """The response to a cached-feed GET/HEAD, or None: Flask answers it."""
        method = environ.get("REQUEST_METHOD")
        if method != "GET" and method != "HEAD":
            return None
        path = _PATH.match(environ.get("PATH_INFO", ""))
        query = _QUERY.match(environ.get("QUERY_STRING", ""))
        if path is None or query is None:
            return None
        kind, name, fmt = path.groups()
        number = int(query.group(1) or 1)
        feed = snap.catalog.feeds.get((kind, name))
        if feed is None or number > feed.page_count:
            return None
        document = snap.documents.get(fmt, kind, name, number)
        if document is None:
            return None
        status, response_headers, body = feed_response(
            document, method, headers, snap.config.reload_interval
        )
        return _REASONS[status], response_headers, body, kind, fmt, status

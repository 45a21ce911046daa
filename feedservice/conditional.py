"""One function decides every feed response: status, headers and body.

Both the Flask routes and the WSGI fast path call `feed_response`, so their
answers are identical by construction. Validators follow RFC 9110: a
malformed `If-None-Match` or `If-Modified-Since` is ignored, and
`If-None-Match` takes precedence over `If-Modified-Since`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import datetime

from werkzeug.datastructures import ETags
from werkzeug.http import parse_accept_header, parse_date, parse_etags

from feedservice.documents import Document

Headers = list[tuple[str, str]]
# RFC 9110 13.1.2: "*" or a list of entity-tags; werkzeug would also take bare words.
_ETAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_IF_NONE_MATCH = re.compile(
    rf"^[ \t]*(?:\*|(?:{_ETAG})?(?:[ \t]*,[ \t]*(?:{_ETAG})?)*)[ \t]*$", re.ASCII
)


# Pollers send the same few header values over and over: parse each distinct value once.
# The caches are bounded, so hostile clients sending endless new values cost only misses.


@functools.lru_cache(maxsize=1024)
def wants_gzip(accept_encoding: str | None) -> bool:
    if not accept_encoding:
        return False
    accepted = parse_accept_header(accept_encoding)
    return accepted.quality("gzip") > 0


def _well_formed(if_none_match: str) -> bool:
    return bool(_IF_NONE_MATCH.match(if_none_match)) and bool(if_none_match.strip(", \t"))


@functools.lru_cache(maxsize=4096)
def _parsed_etags(if_none_match: str) -> ETags | None:
    """The entity-tags of a well-formed If-None-Match; None for a malformed one."""
    return parse_etags(if_none_match) if _well_formed(if_none_match) else None


@functools.lru_cache(maxsize=1024)
def _parsed_date(if_modified_since: str) -> datetime | None:
    return parse_date(if_modified_since)


def is_not_modified(
    document: Document, method: str, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    if method not in {"GET", "HEAD"}:
        return False
    etags = _parsed_etags(if_none_match) if if_none_match else None
    if etags is not None:  # a malformed If-None-Match is ignored
        if etags.star_tag:
            return True
        return etags.contains_weak(document.etag) or etags.contains_weak(document.gzip_etag)
    if if_modified_since:
        since = _parsed_date(if_modified_since)
        if since is not None:
            return document.last_modified <= since
    return False


def feed_response(
    document: Document, method: str, headers: Mapping[str, str], max_age: int
) -> tuple[int, Headers, bytes]:
    """(status, headers, body) for a GET or HEAD of `document`."""
    gzipped = wants_gzip(headers.get("Accept-Encoding"))
    common: Headers = [
        ("ETag", document.gzip_etag_header if gzipped else document.etag_header),
        ("Last-Modified", document.last_modified_header),
        ("Cache-Control", f"public, max-age={max_age}"),
        ("Vary", "Accept-Encoding"),
        ("X-Content-Type-Options", "nosniff"),
        ("Access-Control-Allow-Origin", "*"),
    ]
    if is_not_modified(
        document, method, headers.get("If-None-Match"), headers.get("If-Modified-Since")
    ):
        # RFC 9110 15.4.5: a 304 carries no representation metadata such as
        # Last-Modified (werkzeug drops it too, so Flask and the fast path agree).
        return 304, [header for header in common if header[0] != "Last-Modified"], b""
    body = document.gzip_body if gzipped else document.body
    out: Headers = [("Content-Type", document.content_type), ("Content-Length", str(len(body)))]
    if gzipped:
        out.append(("Content-Encoding", "gzip"))
    return 200, out + common, b"" if method == "HEAD" else body

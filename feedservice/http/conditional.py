"""One function decides every cached response: status, headers and body.

The Flask view and the thin WSGI path both call `respond`, so their answers are
identical by construction. Whether the client's copy is current is decided by
Werkzeug's `sansio.http.is_resource_modified` (RFC 9110 §13: `If-None-Match`, with
the weak comparison, takes precedence over `If-Modified-Since`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from werkzeug.http import http_date, parse_accept_header, quote_etag
from werkzeug.sansio.http import is_resource_modified

from feedservice.store.rows import Document

Headers = list[tuple[str, str]]
# The request headers `respond` reads (as WSGI environ keys): an answer depends on no other.
ANSWER_DEPENDS_ON = ("HTTP_ACCEPT_ENCODING", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")
# RFC 9110 §13.1.2: "*" or a list of entity-tags. Werkzeug takes bare words as tags too, so a
# malformed If-None-Match would hide If-Modified-Since; RFC 9110 says to ignore it instead.
_ETAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_IF_NONE_MATCH = re.compile(rf"[ \t]*(?:\*|{_ETAG}(?:[ \t]*,[ \t]*{_ETAG})*)[ \t]*")


@functools.lru_cache(maxsize=1024)  # pollers send the same few values over and over
def accepts_gzip(accept_encoding: str | None) -> bool:
    return bool(accept_encoding) and parse_accept_header(accept_encoding).quality("gzip") > 0


def _well_formed(if_none_match: str | None) -> str | None:
    """The header if it is a well-formed If-None-Match, else None (ignored)."""
    if if_none_match is None or _IF_NONE_MATCH.fullmatch(if_none_match) is None:
        return None
    return if_none_match


def respond(
    document: Document, method: str, headers: Mapping[str, str], max_age: int
) -> tuple[int, Headers, bytes]:
    """(status, headers, body) for a GET or HEAD of `document`."""
    gzipped = accepts_gzip(headers.get("Accept-Encoding"))
    etag = document.etag + "-gz" if gzipped else document.etag  # one tag per representation
    last_modified = datetime.fromtimestamp(document.last_modified, UTC)
    common: Headers = [
        ("ETag", quote_etag(etag)),
        ("Last-Modified", http_date(last_modified)),
        ("Cache-Control", f"public, max-age={max_age}"),
        ("Vary", "Accept-Encoding"),
        ("X-Content-Type-Options", "nosniff"),
        ("Access-Control-Allow-Origin", "*"),
    ]
    modified = is_resource_modified(
        http_if_none_match=_well_formed(headers.get("If-None-Match")),
        http_if_modified_since=headers.get("If-Modified-Since"),
        etag=etag,
        last_modified=last_modified,
    )
    if not modified:
        # RFC 9110 §15.4.5: a 304 carries no representation metadata such as Last-Modified.
        return 304, [header for header in common if header[0] != "Last-Modified"], b""
    body = document.gzip_body if gzipped else document.body
    out: Headers = [("Content-Type", document.content_type), ("Content-Length", str(len(body)))]
    if gzipped:
        out.append(("Content-Encoding", "gzip"))
    return 200, out + common, b"" if method == "HEAD" else body

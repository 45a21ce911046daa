"""One function decides every feed response: status, headers and body.

Both the Flask routes and the WSGI fast path call `feed_response`, so their
answers are identical by construction. Validators follow RFC 9110: a
malformed `If-None-Match` or `If-Modified-Since` is ignored, and
`If-None-Match` takes precedence over `If-Modified-Since`.
"""

from __future__ import annotations

from collections.abc import Mapping

from werkzeug.http import http_date, parse_accept_header, parse_date, parse_etags, quote_etag

from feedservice.documents import Document

Headers = list[tuple[str, str]]


def wants_gzip(accept_encoding: str | None) -> bool:
    if not accept_encoding:
        return False
    accepted = parse_accept_header(accept_encoding)
    return accepted.quality("gzip") > 0


def is_not_modified(
    document: Document, method: str, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    if method not in {"GET", "HEAD"}:
        return False
    if if_none_match:
        etags = parse_etags(if_none_match)
        if etags.star_tag:
            return True
        return etags.contains_weak(document.etag) or etags.contains_weak(document.gzip_etag)
    if if_modified_since:
        since = parse_date(if_modified_since)
        if since is not None:
            return document.last_modified <= since
    return False


def feed_response(
    document: Document, method: str, headers: Mapping[str, str], max_age: int
) -> tuple[int, Headers, bytes]:
    """(status, headers, body) for a GET or HEAD of `document`."""
    gzipped = wants_gzip(headers.get("Accept-Encoding"))
    etag = document.gzip_etag if gzipped else document.etag
    common: Headers = [
        ("ETag", quote_etag(etag)),
        ("Last-Modified", http_date(document.last_modified)),
        ("Cache-Control", f"public, max-age={max_age}"),
        ("Vary", "Accept-Encoding"),
        ("X-Content-Type-Options", "nosniff"),
        ("Access-Control-Allow-Origin", "*"),
    ]
    if is_not_modified(
        document, method, headers.get("If-None-Match"), headers.get("If-Modified-Since")
    ):
        return 304, common, b""
    body = document.gzip_body if gzipped else document.body
    out: Headers = [("Content-Type", document.content_type), ("Content-Length", str(len(body)))]
    if gzipped:
        out.append(("Content-Encoding", "gzip"))
    return 200, out + common, b"" if method == "HEAD" else body

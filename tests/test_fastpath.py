"""The WSGI fast path answers exactly like the Flask route: status, headers and body.

The same requests go through `FastPath` (with a spy on its fallback, so a test
cannot pass by the fast path quietly handing everything to Flask) and through
the Flask app alone, both with werkzeug's test Client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from conftest import article_fields, write_config, write_seed
from werkzeug.test import Client

from feedservice import fastpath
from feedservice.fastpath import FastPath
from feedservice.service import Service
from feedservice.web import create_app

FEEDS = ["/topics/ai.rss", "/topics/ai.atom", "/topics/ai.json", "/feeds/all.json"]


class Spy:
    """Wraps the fallback WSGI app and counts how often the fast path used it."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        return self.app(environ, start_response)


@pytest.fixture
def stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Client, Client, Spy, Service]:
    monkeypatch.setenv("FEEDSERVICE_CACHE_DIR", str(tmp_path / "cache"))
    seeds = tmp_path / "seeds"
    for n in range(7):  # 7 articles at 3 per page: three pages
        write_seed(seeds, f"{n:02d}.md", **article_fields(n, topics=["AI", "Robots & Ethics"]))
    config = write_config(
        tmp_path / "feeds.yaml",
        title="Fast path",
        base_url="http://feeds.test",
        topic_limit=3,
        feeds=[{"name": "all", "title": "All", "description": "All", "topics": "*", "limit": 3}],
    )
    service = Service(seeds, config)
    app = create_app(service)
    spy = Spy(app.wsgi_app)
    return Client(FastPath(service, spy)), Client(app.wsgi_app), spy, service


def _same(fast: Client, flask: Client, spy: Spy, path: str, **kwargs: Any) -> Any:
    """The fast path's answer equals Flask's, the first time (computed) and the second
    (from the fast path's memo)."""
    before = spy.calls
    answer = fast.open(path, **kwargs)
    again = fast.open(path, **kwargs)
    assert spy.calls == before, f"{path}: the fast path handed the request to Flask"
    reference = flask.open(path, **kwargs)
    for response in (answer, again):
        assert response.status == reference.status
        assert list(response.headers.items()) == list(reference.headers.items())
        assert response.get_data() == reference.get_data()
    return answer


def test_get_head_and_gzip_are_identical(stacks: Any) -> None:
    fast, flask, spy, _ = stacks
    for path in FEEDS:
        full = _same(fast, flask, spy, path)
        assert full.status_code == 200 and full.get_data()
        head = _same(fast, flask, spy, path, method="HEAD")
        assert head.get_data() == b""
        assert head.headers["Content-Length"] == full.headers["Content-Length"]
        gz = _same(fast, flask, spy, path, headers={"Accept-Encoding": "gzip, deflate"})
        assert gz.headers["Content-Encoding"] == "gzip"
        _same(fast, flask, spy, path, headers={"Accept-Encoding": "gzip;q=0, br"})
        _same(fast, flask, spy, path, method="HEAD", headers={"Accept-Encoding": "gzip"})


def test_revalidations_are_identical(stacks: Any) -> None:
    fast, flask, spy, _ = stacks
    for path in FEEDS:
        first = flask.get(path)
        etag = first.headers["ETag"]
        modified = first.headers["Last-Modified"]
        gz_etag = flask.get(path, headers={"Accept-Encoding": "gzip"}).headers["ETag"]
        for headers in (
            {"If-None-Match": etag},
            {"If-None-Match": f"W/{etag}"},
            {"If-None-Match": f'"nope", {etag}'},
            {"If-None-Match": "*"},
            {"If-None-Match": gz_etag, "Accept-Encoding": "gzip"},
            {"If-Modified-Since": modified},
            {"If-None-Match": '"stale"', "If-Modified-Since": modified},  # INM wins: 200
            {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
            {"If-Modified-Since": "not a date"},
        ):
            answer = _same(fast, flask, spy, path, headers=headers)
            expected = 200 if "stale" in str(headers) or "1970" in str(headers) else None
            if expected or headers.get("If-Modified-Since") == "not a date":
                assert answer.status_code == 200
            else:
                assert answer.status_code == 304, headers
                assert answer.get_data() == b""


def test_paging_is_identical(stacks: Any) -> None:
    fast, flask, spy, service = stacks
    pages = service.snapshot.catalog.feed("topics", "ai").page_count
    assert pages == 3
    for number in range(1, pages + 1):
        for fmt in ("rss", "atom", "json"):
            answer = _same(fast, flask, spy, f"/topics/ai.{fmt}?page={number}")
            assert answer.status_code == 200


def test_everything_else_falls_through_to_flask(stacks: Any) -> None:
    fast, flask, spy, _ = stacks
    for path in (
        "/topics/ai.rss?page=4",  # past the last page
        "/topics/ai.rss?page=0",
        "/topics/ai.rss?page=2&x=1",
        "/topics/nope.rss",
        "/topics/ai.xml",
        "/topics/AI.rss",
        "/topics/robots-ethics/",
        "/healthz",
        "/",
    ):
        before = spy.calls
        answer = fast.get(path)
        assert spy.calls == before + 1, path
        reference = flask.get(path)
        assert answer.status == reference.status
        if path != "/healthz":  # healthz carries the time of the request
            assert answer.get_data() == reference.get_data()
    before = spy.calls
    assert fast.post("/topics/ai.rss").status_code == flask.post("/topics/ai.rss").status_code
    assert spy.calls == before + 1


def test_a_reload_is_seen_by_both(stacks: Any, tmp_path: Path) -> None:
    """Answers the fast path memoised for the old snapshot are not served for the new."""
    fast, flask, spy, service = stacks
    old = flask.get("/topics/ai.rss").headers["ETag"]
    assert (
        _same(fast, flask, spy, "/topics/ai.rss", headers={"If-None-Match": old}).status_code == 304
    )
    before = _same(fast, flask, spy, "/topics/ai.rss").get_data()
    write_seed(tmp_path / "seeds", "new.md", **article_fields(99, topics=["AI"]))
    service.reload()
    answer = _same(fast, flask, spy, "/topics/ai.rss", headers={"If-None-Match": old})
    assert answer.status_code == 200
    assert b"Article number 99" in answer.get_data()
    assert _same(fast, flask, spy, "/topics/ai.rss").get_data() == answer.get_data() != before


def test_the_memo_stays_bounded_and_skips_long_headers(
    stacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients sending endless new header values cost misses, not memory."""
    fast, flask, spy, _ = stacks
    monkeypatch.setattr(fastpath, "_MEMO_ENTRIES", 8)
    application = fast.application
    for n in range(30):
        _same(fast, flask, spy, "/topics/ai.rss", headers={"If-None-Match": f'"client-{n}"'})
        assert 0 < len(application._memo[1]) <= 8
    application._memo[1].clear()
    long_value = '"' + "x" * 600 + '"'
    _same(fast, flask, spy, "/topics/ai.json", headers={"If-None-Match": long_value})
    _same(fast, flask, spy, "/topics/ai.json?page=2")  # later pages: not memoised either
    assert not application._memo[1]


def test_an_answer_that_read_another_header_is_not_memoised(
    stacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memo's key holds three headers; were `feed_response` ever to read a fourth
    (say Range), its answers would stop being memoised rather than go stale."""
    fast, flask, spy, _ = stacks
    original = fastpath.feed_response

    def reads_range(document: Any, method: str, headers: Any, max_age: int) -> Any:
        headers.get("Range")
        return original(document, method, headers, max_age)

    monkeypatch.setattr(fastpath, "feed_response", reads_range)
    application = fast.application
    _same(fast, flask, spy, "/topics/ai.rss")
    assert not application._memo[1]
    monkeypatch.setattr(fastpath, "feed_response", original)
    _same(fast, flask, spy, "/topics/ai.rss")
    assert len(application._memo[1]) == 1

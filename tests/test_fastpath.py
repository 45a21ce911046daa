"""The WSGI fast path answers exactly like the Flask view: status, headers and body.

`create_app` puts `FastPath` in front of Flask as `app.wsgi_app`; it answers GET and
HEAD of the grammar's URLs when the answer is a 200 or 304 and hands everything else to
Flask (`app.wsgi_app.fallback`). The same requests go through one app's whole
`wsgi_app` (with a spy on its fallback, so a test cannot pass by the fast path quietly
handing everything to Flask) and through another app's Flask view path alone, both
with werkzeug's test Client, over one store the real loader wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Site, article_fields, make_site, write_config, write_seed
from werkzeug.test import Client

from feedservice.http.app import MAX_TARGET_BYTES, FastPath, create_app
from feedservice.store.db import Store

FEEDS = ["/topics/ai.rss", "/topics/ai.atom", "/topics/ai.json", "/feeds/all.json"]
LISTINGS = ["/", "/topics/ai/", "/topics/robots-ethics/", "/feeds.opml", "/topics.opml?format=rss"]


class Spy:
    """Wraps the fallback WSGI app and counts how often the fast path used it."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        return self.app(environ, start_response)


@dataclass
class Stacks:
    fast: Client  # an app's whole wsgi_app: FastPath, then (spied) Flask
    flask: Client  # another app's Flask view path alone, over the same store
    spy: Spy
    site: Site  # the loader that wrote the store


def stacks_over(state: Path) -> tuple[Client, Client, Spy]:
    app = create_app(Store.in_dir(state, writable=False))
    fast_path = app.wsgi_app
    assert isinstance(fast_path, FastPath)
    spy = Spy(fast_path.fallback)
    fast_path.fallback = spy
    reference = create_app(Store.in_dir(state, writable=False)).wsgi_app
    return Client(fast_path), Client(reference.fallback), spy


@pytest.fixture
def stacks(tmp_path: Path) -> Stacks:
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
    site = make_site(seeds, config, tmp_path / "state")
    fast, flask, spy = stacks_over(tmp_path / "state")
    return Stacks(fast, flask, spy, site)


def _same(stacks: Stacks, path: str, **kwargs: Any) -> Any:
    """The fast path's answer equals Flask's, the first time (from the store) and the
    second (from the worker's memo), and the fast path answered it itself."""
    before = stacks.spy.calls
    answer = stacks.fast.open(path, **kwargs)
    again = stacks.fast.open(path, **kwargs)
    assert stacks.spy.calls == before, f"{path}: the fast path handed the request to Flask"
    reference = stacks.flask.open(path, **kwargs)
    for response in (answer, again):
        assert response.status == reference.status
        assert list(response.headers.items()) == list(reference.headers.items())
        assert response.get_data() == reference.get_data()
    return answer


def test_get_head_and_gzip_are_identical(stacks: Stacks) -> None:
    for path in FEEDS + LISTINGS:
        full = _same(stacks, path)
        assert full.status_code == 200 and full.get_data()
        head = _same(stacks, path, method="HEAD")
        assert head.get_data() == b""
        assert head.headers["Content-Length"] == full.headers["Content-Length"]
        gz = _same(stacks, path, headers={"Accept-Encoding": "gzip, deflate"})
        assert gz.headers["Content-Encoding"] == "gzip"
        _same(stacks, path, headers={"Accept-Encoding": "gzip;q=0, br"})
        _same(stacks, path, method="HEAD", headers={"Accept-Encoding": "gzip"})


def test_html_answers_carry_the_page_policies(stacks: Stacks) -> None:
    for path in ("/", "/topics/ai/"):
        headers = _same(stacks, path).headers
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_revalidations_are_identical(stacks: Stacks) -> None:
    for path in FEEDS + LISTINGS:
        first = stacks.flask.get(path)
        etag = first.headers["ETag"]
        modified = first.headers["Last-Modified"]
        gz_etag = stacks.flask.get(path, headers={"Accept-Encoding": "gzip"}).headers["ETag"]
        for headers, expected in (
            ({"If-None-Match": etag}, 304),
            ({"If-None-Match": f"W/{etag}"}, 304),
            ({"If-None-Match": f'"nope", {etag}'}, 304),
            ({"If-None-Match": "*"}, 304),
            ({"If-None-Match": gz_etag, "Accept-Encoding": "gzip"}, 304),
            ({"If-None-Match": etag, "Accept-Encoding": "gzip"}, 200),  # the plain body's tag
            ({"If-Modified-Since": modified}, 304),
            ({"If-None-Match": '"stale"', "If-Modified-Since": modified}, 200),  # INM wins
            ({"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}, 200),
            ({"If-Modified-Since": "not a date"}, 200),
        ):
            answer = _same(stacks, path, headers=headers)
            assert answer.status_code == expected, (path, headers)
            if expected == 304:
                assert answer.get_data() == b""
                assert "Last-Modified" not in answer.headers
                assert answer.headers["ETag"] in (etag, gz_etag)
            else:
                assert answer.get_data()


def test_paging_is_identical(stacks: Stacks) -> None:
    pages = stacks.site.loader.catalog.feeds["topics/ai"].page_count
    assert pages == 3
    for number in range(1, pages + 1):
        for fmt in ("rss", "atom", "json"):
            answer = _same(stacks, f"/topics/ai.{fmt}?page={number}")
            assert answer.status_code == 200
        assert _same(stacks, f"/topics/ai/?page={number}").status_code == 200
    # Parameters the grammar does not use change nothing: still the fast path's answer.
    assert _same(stacks, "/topics/ai.rss?exclude=ml&page=2").status_code in (200, 404)


def test_everything_else_falls_through_to_flask(stacks: Stacks) -> None:
    fast, flask, spy = stacks.fast, stacks.flask, stacks.spy
    for path, status in (
        ("/topics/ai.rss?page=4", 404),  # past the last page
        ("/topics/ai.rss?page=99999999999999999999", 404),
        ("/topics/ai.rss?page=0", 400),
        ("/topics/ai.rss?page=two", 400),
        ("/topics/ai.rss?page=2&page=3", 400),
        ("/feeds.opml?format=json", 400),
        ("/topics/nope.rss", 404),
        ("/topics/nope/", 404),
        ("/topics/ai.xml", 404),
        ("/topics/AI.rss", 301),  # a topic's display name: to its slug URL
        ("/topics/ai.rss?page=2&x=1", 400),  # an unknown parameter
        ("/topics/ai.rss?page=2&topics=AI", 301),  # filters in another spelling
        ("/topics/ai", 404),
        ("/healthz", 200),
        ("/static/style.css", 200),
    ):
        before = spy.calls
        answer = fast.get(path)
        assert spy.calls == before + 1, path
        reference = flask.get(path)
        assert answer.status_code == reference.status_code == status, path
        assert list(answer.headers.items()) == list(reference.headers.items()), path
        assert answer.get_data() == reference.get_data(), path
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        before = spy.calls
        answer = fast.open("/topics/ai.rss", method=method)
        assert spy.calls == before + 1, method
        reference = flask.open("/topics/ai.rss", method=method)
        assert answer.status_code == reference.status_code, method
        assert answer.headers.get("Allow") == reference.headers.get("Allow"), method


def test_a_target_over_the_limit_falls_through_to_flask(stacks: Stacks) -> None:
    """Flask refuses a request target over 8 KiB with 414; the fast path must not answer
    such a request with a feed."""
    path = "/topics/ai.rss?x=" + "a" * MAX_TARGET_BYTES
    reference = stacks.flask.get(path)
    assert reference.status_code == 414
    before = stacks.spy.calls
    answer = stacks.fast.get(path)
    assert (answer.status_code, answer.get_data()) == (414, reference.get_data())
    assert stacks.spy.calls == before + 1


def test_a_reload_is_seen_by_both(stacks: Stacks, tmp_path: Path) -> None:
    """Documents a worker memoised for the old generation are not served for the new."""
    old = stacks.flask.get("/topics/ai.rss").headers["ETag"]
    assert _same(stacks, "/topics/ai.rss", headers={"If-None-Match": old}).status_code == 304
    before = _same(stacks, "/topics/ai.rss").get_data()
    later = _same(stacks, "/topics/ai.rss?page=2").get_data()
    write_seed(tmp_path / "seeds", "new.md", **article_fields(99, topics=["AI"]))
    assert stacks.site.reload() is not None
    answer = _same(stacks, "/topics/ai.rss", headers={"If-None-Match": old})
    assert answer.status_code == 200
    assert b"Article number 99" in answer.get_data()
    assert _same(stacks, "/topics/ai.rss").get_data() == answer.get_data() != before
    assert _same(stacks, "/topics/ai.rss?page=2").get_data() != later  # rendered anew


def test_every_client_gets_the_answer_to_its_own_validators(stacks: Stacks) -> None:
    """Many clients with different validators, interleaved: each gets its own answer
    (the worker keeps documents, never answers to someone else's headers)."""
    etag = stacks.flask.get("/topics/ai.json").headers["ETag"]
    for n in range(40):
        mine = etag if n % 3 == 0 else f'"client-{n}"'
        answer = _same(stacks, "/topics/ai.json", headers={"If-None-Match": mine})
        assert answer.status_code == (304 if mine == etag else 200), n


def test_before_the_first_generation_both_answer_503(tmp_path: Path) -> None:
    """A worker can start before the loader's first commit: the fast path declines
    (it answers only 200 and 304) and Flask says 503 with Retry-After."""
    Store.in_dir(tmp_path / "state").close()  # the schema, no generation yet
    fast, flask, spy = stacks_over(tmp_path / "state")
    for path in ("/topics/ai.rss", "/", "/feeds.opml", "/healthz"):
        before = spy.calls
        answer = fast.get(path)
        assert spy.calls == before + 1, path
        reference = flask.get(path)
        assert answer.status_code == reference.status_code == 503, path
        assert answer.headers.get("Retry-After") == reference.headers.get("Retry-After")
        assert answer.get_data() == reference.get_data()
    assert fast.get("/topics/ai.rss").headers["Retry-After"] == "1"

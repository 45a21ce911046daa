"""Incremental rendering: after a one-file change only the feeds that contain or
contained that article are rendered again; every other document is carried over in
the store, byte for byte."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Site, article_fields, bump_mtime, write_config, write_seed
from consumers import read_feed

from feedservice.http import urls
from feedservice.render import documents
from feedservice.render.page import FeedPage

TOPICS = {0: ["AI"], 1: ["Robotics"], 2: ["Vision"], 3: ["AI", "Vision"], 4: ["Robotics"]}
KINDS_OF_DOCUMENT = len(documents.RENDERERS)  # rss, atom, json and the HTML page


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many documents the renderers made, by feed key ("topics/ai")."""
    counts: Counter[str] = Counter()

    def counted(render: Callable[[FeedPage], bytes]) -> Callable[[FeedPage], bytes]:
        def wrapper(page: FeedPage) -> bytes:
            counts[f"{page.kind}/{page.name}"] += 1
            return render(page)

        return wrapper

    for fmt, render in list(documents.RENDERERS.items()):
        monkeypatch.setitem(documents.RENDERERS, fmt, counted(render))
    return counts


@pytest.fixture
def site(tmp_path: Path, site_factory, renders: Counter[str]) -> Site:
    seeds = tmp_path / "seeds"
    for n, topics in TOPICS.items():
        write_seed(seeds, f"{n}.md", **article_fields(n, topics=topics, quality=10 * n))
    config = write_config(
        tmp_path / "feeds.yaml",
        feeds=[
            {"name": "all", "title": "All", "description": "All", "topics": "*"},
            {"name": "robots", "title": "R", "description": "R", "topics": ["Robotics"]},
            {"name": "best", "title": "B", "description": "B", "topics": "*", "min_quality": 30},
        ],
    )
    return site_factory(seeds, config)


def _edit(site: Site, n: int, **overrides: object) -> None:
    path = write_seed(site.loader.seeds, f"{n}.md", **article_fields(n, **overrides))
    bump_mtime(path)


def _page_one_keys(site: Site) -> list[str]:
    catalog = site.loader.catalog
    assert catalog is not None
    return [
        route.key
        for feed in catalog.feeds.values()
        for route in (
            *(urls.Route("feed", feed.kind, feed.name, fmt) for fmt in urls.FORMATS),
            urls.Route("page", feed.kind, feed.name),
        )
    ]


def _stored(site: Site) -> dict[str, tuple[str, bytes]]:
    """Every stored page-1 document: (ETag, body) by URL."""
    found = {}
    for key in _page_one_keys(site):
        document = site.store.document(key)
        assert document is not None, key
        found[key] = (document.etag, document.body)
    return found


def _feed_of(key: str) -> str:
    route = urls.parse(*key.partition("?")[::2])  # "/topics/ai.rss" -> "topics/ai"
    return route.feed_key if route else key


def test_the_first_generation_renders_page_one_of_every_feed(
    site: Site, renders: Counter[str]
) -> None:
    catalog = site.loader.catalog
    assert catalog is not None
    assert set(renders) == set(catalog.feeds)
    assert set(renders.values()) == {KINDS_OF_DOCUMENT}
    assert len(_stored(site)) == len(catalog.feeds) * KINDS_OF_DOCUMENT
    for key in _page_one_keys(site):  # and they are what is served
        response = site.get(key)
        assert response.status_code == 200
        assert response.headers["ETag"] == f'"{site.store.document(key).etag}"'  # type: ignore[union-attr]


def test_a_reload_without_changes_renders_nothing(site: Site, renders: Counter[str]) -> None:
    before = _stored(site)
    renders.clear()
    assert site.reload() is None
    assert renders == {} and _stored(site) == before


def test_a_title_edit_re_renders_only_the_feeds_holding_that_article(
    site: Site, renders: Counter[str]
) -> None:
    before = _stored(site)
    renders.clear()
    _edit(site, 1, topics=["Robotics"], quality=10, title="Robots, edited")
    reloaded = site.reload()
    assert reloaded is not None
    expected = {"topics/robotics", "feeds/all", "feeds/robots", "providers/example.com"}
    assert set(reloaded.changed_feeds) == expected
    assert reloaded.rendered_feeds == len(expected)
    assert renders == {key: KINDS_OF_DOCUMENT for key in expected}
    after = _stored(site)
    assert after.keys() == before.keys()
    for key, (etag, body) in after.items():
        if _feed_of(key) in expected:
            assert etag != before[key][0], key
        else:
            assert (etag, body) == before[key], key  # carried over, not re-rendered
    titles = [item.title for item in read_feed(site.get("/feeds/robots.atom").data, "atom")[1]]
    assert "Robots, edited" in titles


def test_moving_an_article_re_renders_the_feeds_it_left_and_joined(site: Site) -> None:
    _edit(site, 2, topics=["Robotics"], quality=20)  # leaves Vision, joins Robotics
    reloaded = site.reload()
    assert reloaded is not None
    assert set(reloaded.changed_feeds) == {
        "topics/vision",
        "topics/robotics",
        "feeds/all",
        "feeds/robots",
        "providers/example.com",  # (every article here is from example.com)
    }
    assert reloaded.rendered_feeds == 5


def test_deleting_an_article_re_renders_the_feeds_that_contained_it(site: Site) -> None:
    (site.loader.seeds / "3.md").unlink()  # AI + Vision, quality 30 → also "best"
    reloaded = site.reload()
    assert reloaded is not None and reloaded.removed == 1
    assert set(reloaded.changed_feeds) == {
        "topics/ai",
        "topics/vision",
        "feeds/all",
        "feeds/best",
        "providers/example.com",
    }
    assert reloaded.rendered_feeds == 5


def test_a_feed_that_disappears_is_dropped_from_the_store(site: Site) -> None:
    _edit(site, 2, topics=["AI"], quality=20)  # Vision keeps only article 3
    _edit(site, 3, topics=["AI"], quality=30)  # and now no article at all
    reloaded = site.reload()
    assert reloaded is not None and "topics/vision" in reloaded.changed_feeds
    assert site.get("/topics/vision.rss").status_code == 404
    assert site.store.document("/topics/vision.rss") is None
    assert b"/topics/vision.rss" not in site.get("/topics.opml").data


def test_a_touched_but_unchanged_file_renders_nothing(site: Site, renders: Counter[str]) -> None:
    renders.clear()
    bump_mtime(site.loader.seeds / "0.md")  # re-parsed, same content: same revision
    reloaded = site.reload()
    assert reloaded is not None and reloaded.changed == 1
    assert reloaded.rendered_feeds == 0 and reloaded.changed_feeds == ()
    assert renders == {}


def test_a_feed_setting_change_re_renders_that_feed_only(site: Site, renders: Counter[str]) -> None:
    renders.clear()
    write_config(
        site.loader.config_path,  # type: ignore[arg-type]
        feeds=[
            {"name": "all", "title": "All", "description": "All", "topics": "*"},
            {"name": "robots", "title": "Robots!", "description": "R", "topics": ["Robotics"]},
            {"name": "best", "title": "B", "description": "B", "topics": "*", "min_quality": 30},
        ],
    )
    reloaded = site.reload()
    assert reloaded is not None
    assert reloaded.changed_feeds == ("feeds/robots",)
    assert renders == {"feeds/robots": KINDS_OF_DOCUMENT}
    assert read_feed(site.get("/feeds/robots.rss").data, "rss")[0]["title"] == "Robots!"


def _ai_site(tmp_path: Path, site_factory, newest_elsewhere: bool) -> Site:
    """Nine articles; the AI feed has three pages of three (article 0 is elsewhere if
    `newest_elsewhere`)."""
    seeds = tmp_path / "seeds"
    for n in range(9):
        topics = ["Other"] if newest_elsewhere and n == 0 else ["AI"]
        write_seed(seeds, f"{n}.md", **article_fields(n, topics=topics))
    config = write_config(tmp_path / "feeds.yaml", topic_limit=3, feeds=[])
    return site_factory(seeds, config)


def test_later_pages_keep_their_bytes_when_their_items_are_unchanged(
    tmp_path: Path, site_factory
) -> None:
    site = _ai_site(tmp_path, site_factory, newest_elsewhere=True)
    old_last = site.get("/topics/ai.rss?page=3")
    assert old_last.status_code == 200 and read_feed(old_last.data, "rss")[1]
    # Article 0 (the oldest) is only in "other" and on the last page of "all": the AI
    # feed's pages keep their bytes and ETags, and so does page 1 of "all".
    _edit(site, 0, topics=["Other"], title="Other, edited")
    reloaded = site.reload()
    assert reloaded is not None
    assert set(reloaded.changed_feeds) == {"topics/other", "feeds/all", "providers/example.com"}
    assert reloaded.rendered_feeds == 1  # page 1 of "other"; "all" changed on page 3 only
    new_last = site.get("/topics/ai.rss?page=3")
    assert new_last.data == old_last.data
    assert new_last.headers["ETag"] == old_last.headers["ETag"]
    revalidated = site.get(
        "/topics/ai.rss?page=3", headers={"If-None-Match": new_last.headers["ETag"]}
    )
    assert revalidated.status_code == 304


def test_a_later_page_survives_an_edit_on_page_one_but_not_a_shift(
    tmp_path: Path, site_factory
) -> None:
    """An edit elsewhere in the feed keeps a later page's bytes; a new newest article
    shifts every page, so the later pages change."""
    site = _ai_site(tmp_path, site_factory, newest_elsewhere=False)
    feed = site.loader.catalog.feeds["topics/ai"]  # type: ignore[union-attr]
    newest = feed.entries[0].source
    old_last = site.get("/topics/ai.rss?page=3")
    assert old_last.status_code == 200
    assert site.get("/topics/ai.rss?page=4").status_code == 404
    _edit(site, int(newest.split(".")[0]), title="Newest, edited")
    reloaded = site.reload()
    assert reloaded is not None and "topics/ai" in reloaded.changed_feeds
    page_one = read_feed(site.get("/topics/ai.rss").data, "rss")[1]
    assert page_one[0].title == "Newest, edited"
    kept = site.get("/topics/ai.rss?page=3")
    assert (kept.data, kept.headers["ETag"]) == (old_last.data, old_last.headers["ETag"])
    write_seed(
        site.loader.seeds,
        "new.md",
        **article_fields(99, topics=["AI"], publishedDateTime="2025-01-01T00:00:00Z"),
    )
    assert site.reload() is not None
    shifted = site.get("/topics/ai.rss?page=3")
    assert shifted.status_code == 200 and shifted.data != old_last.data
    assert site.get("/topics/ai.rss?page=4").status_code == 200  # ten items: a fourth page

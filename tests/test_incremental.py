"""Incremental rendering: after a one-file change only the feeds that contain or
contained that article are rendered again; every other document is carried over."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import article_fields, bump_mtime, write_config, write_seed

from feedservice import documents
from feedservice.catalog import SeedStore
from feedservice.documents import Document, DocumentSet
from feedservice.feeds import FORMATS, FeedPage
from feedservice.service import Service

TOPICS = {0: ["AI"], 1: ["Robotics"], 2: ["Vision"], 3: ["AI", "Vision"], 4: ["Robotics"]}


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.setenv("FEEDSERVICE_CACHE_DIR", "off")
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
    return Service(seeds, config)


def _edit(service: Service, n: int, **overrides: object) -> None:
    path = write_seed(service.seeds_dir, f"{n}.md", **article_fields(n, **overrides))
    bump_mtime(path)


def _documents(service: Service) -> dict[tuple[str, str, str], object]:
    snap = service.snapshot
    return {
        (fmt, kind, name): snap.documents.get(fmt, kind, name)
        for (kind, name) in snap.catalog.feeds
        for fmt in FORMATS
    }


def test_the_first_snapshot_renders_page_one_of_every_feed(service: Service) -> None:
    documents = service.snapshot.documents
    assert documents.rendered_feeds == set(service.snapshot.catalog.feeds)
    assert documents.renders == len(service.snapshot.catalog.feeds) * len(FORMATS)


def test_a_reload_without_changes_renders_nothing(service: Service) -> None:
    before = service.snapshot
    after = service.reload()
    assert after.documents is before.documents


def test_a_title_edit_re_renders_only_the_feeds_holding_that_article(service: Service) -> None:
    before = _documents(service)
    _edit(service, 1, topics=["Robotics"], quality=10, title="Robots, edited")
    documents = service.reload().documents
    expected = {("topics", "robotics"), ("feeds", "all"), ("feeds", "robots")}
    assert documents.rendered_feeds == expected
    assert documents.renders == len(expected) * len(FORMATS)
    after = _documents(service)
    for key, document in after.items():
        if (key[1], key[2]) in expected:
            assert document is not before[key]
            assert document.etag != before[key].etag  # type: ignore[attr-defined]
        else:
            assert document is before[key], key  # carried over, not re-rendered


def test_moving_an_article_re_renders_the_feeds_it_left_and_joined(service: Service) -> None:
    _edit(service, 2, topics=["Robotics"], quality=20)  # leaves Vision, joins Robotics
    documents = service.reload().documents
    assert documents.rendered_feeds == {
        ("topics", "vision"),
        ("topics", "robotics"),
        ("feeds", "all"),
        ("feeds", "robots"),
    }


def test_deleting_an_article_re_renders_the_feeds_that_contained_it(service: Service) -> None:
    (service.seeds_dir / "3.md").unlink()  # AI + Vision, quality 30 → also "best"
    documents = service.reload().documents
    assert documents.rendered_feeds == {
        ("topics", "ai"),
        ("topics", "vision"),
        ("feeds", "all"),
        ("feeds", "best"),
    }


def test_a_touched_but_unchanged_file_renders_nothing(service: Service) -> None:
    bump_mtime(service.seeds_dir / "0.md")  # re-parsed, same content: same revision
    snapshot = service.reload()
    assert snapshot.stats.changed == 1
    assert snapshot.documents.renders == 0
    assert snapshot.documents.rendered_feeds == set()


def test_later_pages_are_carried_over_when_unchanged(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    for n in range(9):
        write_seed(seeds, f"{n}.md", **article_fields(n, topics=["AI"] if n else ["Other"]))
    config = write_config(tmp_path / "feeds.yaml", topic_limit=3, feeds=[])
    service = Service(seeds, config)
    old_last = service.snapshot.documents.get("rss", "topics", "ai", 3)
    assert old_last is not None
    # Article 0 is only in "other": the AI feed's pages keep their bytes and objects.
    _edit(service, 0, topics=["Other"], title="Other, edited")
    snapshot = service.reload()
    assert snapshot.documents.rendered_feeds == {("topics", "other")}
    assert snapshot.documents.get("rss", "topics", "ai", 3) is old_last


def test_a_later_page_survives_an_edit_on_page_one_but_not_a_shift(tmp_path: Path) -> None:
    """Later pages are fingerprinted on demand: an edit elsewhere in the feed keeps them;
    a new newest article shifts every page, so they render again when asked for."""
    seeds = tmp_path / "seeds"
    for n in range(9):
        write_seed(seeds, f"{n}.md", **article_fields(n, topics=["AI"]))
    config = write_config(tmp_path / "feeds.yaml", topic_limit=3, feeds=[])
    service = Service(seeds, config)
    documents = service.snapshot.documents
    newest = service.snapshot.catalog.feed("topics", "ai").items[0].source  # type: ignore[union-attr]
    old_last = documents.get("rss", "topics", "ai", 3)
    assert old_last is not None and documents.get("rss", "topics", "ai", 4) is None
    _edit(service, int(newest.split(".")[0]), title="Newest, edited")
    snapshot = service.reload()
    assert ("topics", "ai") in snapshot.documents.rendered_feeds
    assert snapshot.documents.get("rss", "topics", "ai", 3) is old_last
    write_seed(
        seeds,
        "new.md",
        **article_fields(99, topics=["AI"], publishedDateTime="2030-01-01T00:00:00Z"),
    )
    snapshot = service.reload()
    shifted = snapshot.documents.get("rss", "topics", "ai", 3)
    assert shifted is not None and shifted.body != old_last.body


# --- the first render on two cores (serve's first load) --------------------------------------


@pytest.fixture
def many_feeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Service:
    """Ten topic feeds and one configured feed: 33 page-1 documents."""
    monkeypatch.setenv("FEEDSERVICE_CACHE_DIR", "off")
    seeds = tmp_path / "seeds"
    for n in range(30):
        write_seed(seeds, f"{n}.md", **article_fields(n, topics=[f"Topic {n % 10}"]))
    config = write_config(
        tmp_path / "feeds.yaml",
        feeds=[{"name": "all", "title": "All", "description": "All", "topics": "*"}],
    )
    return Service(seeds, config)


def _rendered_here(monkeypatch: pytest.MonkeyPatch, *, child_fails: bool = False) -> list[int]:
    """Record each render done by this process; optionally make a forked child's fail."""
    parent = os.getpid()
    here: list[int] = []
    make = documents._make

    def recorded(page: FeedPage, fmt: str) -> Document:
        if os.getpid() == parent:
            here.append(1)
        elif child_fails:
            raise RuntimeError("a child that fails")
        return make(page, fmt)

    monkeypatch.setattr(documents, "_make", recorded)
    return here


@pytest.mark.parametrize("child_fails", [False, True])
def test_a_first_render_beside_a_child_equals_one_done_here(
    many_feeds: Service, monkeypatch: pytest.MonkeyPatch, child_fails: bool
) -> None:
    catalog = many_feeds.snapshot.catalog
    alone = DocumentSet(catalog)
    here = _rendered_here(monkeypatch, child_fails=child_fails)
    beside = DocumentSet(catalog, beside=True)
    total = len(catalog.feeds) * len(FORMATS)
    assert total >= documents.MIN_RENDERS_BESIDE
    assert beside.renders == alone.renders == total
    assert beside.rendered_feeds == alone.rendered_feeds
    assert beside.rendered_documents() == alone.rendered_documents()  # bytes, ETags, prints
    # About half were rendered in the child, unless it failed: then all of them here.
    assert len(here) == total if child_fails else 0 < len(here) < total


def test_serves_first_load_renders_beside_a_child_and_later_reloads_do_not(
    many_feeds: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = _rendered_here(monkeypatch)
    store = SeedStore(many_feeds.seeds_dir)
    store.use_children = True  # as `serve`'s parent sets it
    served = Service(many_feeds.seeds_dir, many_feeds.config_path, store=store)
    assert 0 < len(here) < served.snapshot.documents.renders
    assert served.snapshot.documents.rendered_documents() == (
        many_feeds.snapshot.documents.rendered_documents()
    )
    here.clear()
    many_feeds.store.use_children = True
    _edit(many_feeds, 3, title="Changed")
    many_feeds.reload()  # a later reload renders the few changed pages here
    assert len(here) == many_feeds.snapshot.documents.renders > 0

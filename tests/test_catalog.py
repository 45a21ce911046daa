"""The catalog snapshot and the incremental seed store, on real files in temp dirs."""

from __future__ import annotations

import gc
import os
from pathlib import Path

from conftest import article_fields, bump_mtime, seed_text, write_seed

from feedservice.catalog import CONFIGURED_KIND, TOPIC_KIND, SeedStore, build_catalog
from feedservice.config import parse_config
from feedservice.seeds import UNSTAMPED, scan


def catalog_of(seeds: Path, **config: object):
    store = SeedStore(seeds)
    store.refresh()
    return build_catalog(store.articles(), parse_config(config), store.problems())


def test_order_is_newest_first_with_deterministic_ties(seeds: Path) -> None:
    write_seed(seeds, "old.md", **article_fields(1, publishedDateTime="2020-01-01T00:00:00Z"))
    write_seed(seeds, "new.md", **article_fields(2, publishedDateTime="2022-01-01T00:00:00Z"))
    write_seed(seeds, "tie-b.md", **article_fields(4, publishedDateTime="2021-01-01T00:00:00Z"))
    write_seed(seeds, "tie-a.md", **article_fields(3, publishedDateTime="2021-01-01T00:00:00Z"))
    catalog = catalog_of(seeds)
    titles = [article.title for article in catalog.articles]
    assert titles == [
        "Article number 2",
        "Article number 3",
        "Article number 4",
        "Article number 1",
    ]


def test_drafts_are_in_no_feed(seeds: Path) -> None:
    write_seed(seeds, "draft.md", **article_fields(1, published=False))
    write_seed(seeds, "live.md", **article_fields(2))
    catalog = catalog_of(seeds)
    assert [a.source for a in catalog.articles] == ["live.md"]
    assert catalog.drafts == {"draft.md"}
    assert all("draft.md" not in [a.source for a in feed.items] for feed in catalog.feeds.values())


def test_duplicates_keep_newest_then_path_and_are_reported(seeds: Path) -> None:
    same = "https://example.com/same"
    write_seed(seeds, "b.md", **article_fields(1, webUrl=same, title="B"))
    write_seed(seeds, "a.md", **article_fields(1, webUrl=same, title="A"))
    write_seed(
        seeds,
        "c.md",
        **article_fields(
            1, webUrl=same, title="C (older)", publishedDateTime="2019-01-01T00:00:00Z"
        ),
    )
    catalog = catalog_of(seeds)
    assert [a.title for a in catalog.articles] == ["A"]
    assert dict(catalog.duplicates) == {"b.md": "a.md", "c.md": "a.md"}
    assert {p.source for p in catalog.problems if "duplicate" in p.message} == {"b.md", "c.md"}


def test_topic_feeds_slugs_and_shared_slugs(seeds: Path) -> None:
    write_seed(seeds, "1.md", **article_fields(1, topics=["AI in Autos", "AI"]))
    write_seed(seeds, "2.md", **article_fields(2, topics=["ai-in-autos"]))
    write_seed(seeds, "3.md", **article_fields(3, topics=["Robotics"]))
    catalog = catalog_of(seeds)
    topic_names = {feed.name: feed for feed in catalog.feeds_of(TOPIC_KIND)}
    assert set(topic_names) == {"ai", "ai-in-autos", "robotics"}
    assert len(topic_names["ai-in-autos"].items) == 2  # two spellings, one feed
    assert [a.title for a in topic_names["ai"].items] == ["Article number 1"]


def test_configured_feeds_filters(seeds: Path) -> None:
    write_seed(seeds, "1.md", **article_fields(1, topics=["AI", "Robotics"], quality=90))
    write_seed(seeds, "2.md", **article_fields(2, topics=["AI"], quality=10))
    write_seed(seeds, "3.md", **article_fields(3, topics=["Biology"], quality=95))
    catalog = catalog_of(
        seeds,
        feeds=[
            {"name": "ai-good", "title": "Good AI", "topics": ["ai"], "min_quality": 50},
            {
                "name": "no-robots",
                "title": "No robots",
                "topics": ["AI"],
                "exclude_topics": ["Robotics"],
            },
            {"name": "empty", "title": "Nothing yet", "topics": ["Quantum"]},
        ],
    )

    def titles(name: str) -> list[str]:
        feed = catalog.feed(CONFIGURED_KIND, name)
        assert feed is not None
        return [a.title for a in feed.items]

    assert titles("ai-good") == ["Article number 1"]
    assert titles("no-robots") == ["Article number 2"]
    assert titles("empty") == []
    assert len(titles("all")) == 3  # the all-articles feed exists by default


def test_limits_page_feeds(seeds: Path) -> None:
    for n in range(7):
        write_seed(seeds, f"{n}.md", **article_fields(n))
    catalog = catalog_of(seeds, topic_limit=3)
    feed = catalog.feed(TOPIC_KIND, "ai")
    assert feed is not None
    assert feed.page_count == 3
    assert [len(feed.page(n)) for n in (1, 2, 3)] == [3, 3, 1]
    assert [a for n in (1, 2, 3) for a in feed.page(n)] == list(feed.items)


def test_store_parses_only_changed_files(seeds: Path, monkeypatch) -> None:
    for n in range(3):
        write_seed(seeds, f"{n}.md", **article_fields(n))
    store = SeedStore(seeds)
    assert (store.refresh().added, len(store.articles())) == (3, 3)
    parsed: list[str] = []
    import feedservice.catalog as catalog_module

    original = catalog_module.read_seed_stamped  # every file the store reads
    monkeypatch.setattr(
        catalog_module,
        "read_seed_stamped",
        lambda root, rel: parsed.append(rel) or original(root, rel),
    )
    stats = store.refresh()
    assert (stats.added, stats.changed, stats.removed, parsed) == (0, 0, 0, [])
    write_seed(seeds, "1.md", **article_fields(1, title="Changed"))
    bump_mtime(seeds / "1.md")
    (seeds / "2.md").unlink()
    write_seed(seeds, "sub/dir/9.txt", **article_fields(9))
    stats = store.refresh()
    assert (stats.added, stats.changed, stats.removed) == (1, 1, 1)
    assert sorted(parsed) == ["1.md", "sub/dir/9.txt"]
    assert sorted(a.title for a in store.articles()) == [
        "Article number 0",
        "Article number 9",
        "Changed",
    ]


def test_a_good_file_turned_bad_keeps_its_last_good_version(seeds: Path) -> None:
    path = write_seed(seeds, "a.md", **article_fields(1))
    store = SeedStore(seeds)
    store.refresh()
    path.write_text("---\ntitle: [half-written\n")  # a save caught mid-write
    bump_mtime(path)
    store.refresh()
    assert [a.title for a in store.articles()] == ["Article number 1"]
    problems = store.problems()
    assert len(problems) == 1 and "last good version" in problems[0].message
    path.unlink()
    store.refresh()
    assert store.articles() == [] and store.problems() == []


def test_only_md_and_txt_files_are_read(seeds: Path) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    write_seed(seeds, "b.yaml", **article_fields(2))
    write_seed(seeds, ".hidden.md", **article_fields(3))
    (seeds / "notes.md").mkdir()  # a directory with a seed-like name is not a file
    catalog = catalog_of(seeds)
    assert [a.source for a in catalog.articles] == ["a.md"]


def test_same_input_same_catalog(seeds: Path) -> None:
    for n in range(5):
        write_seed(seeds, f"{n}.md", **article_fields(n, topics=["AI", f"T{n % 2}"]))
    first, second = catalog_of(seeds), catalog_of(seeds)
    assert first.articles == second.articles
    assert list(first.feeds) == list(second.feeds)


def test_a_listing_without_stat_finds_what_a_scan_finds(seeds: Path, tmp_path: Path) -> None:
    """A cold load lists the directory without a stat per file; it must find the same
    files, and still stat (and check) symlinks, whose targets may leave the directory."""
    for n in range(3):
        write_seed(seeds, f"{n}.md", **article_fields(n))
    write_seed(seeds / "nested" / "deeper", "inner.txt", **article_fields(50))
    (seeds / "folder.md").mkdir()  # a directory with a seed's name is entered, not read
    write_seed(seeds / "folder.md", "x.md", **article_fields(51))
    (seeds / "link.md").symlink_to(seeds / "0.md")
    outside = tmp_path / "outside.md"
    outside.write_text(seed_text(**article_fields(52)), encoding="utf-8")
    (seeds / "escape.md").symlink_to(outside)
    os.mkfifo(seeds / "pipe.md")
    stamps, problems = scan(seeds)
    listed, listed_problems = scan(seeds, stat_files=False)
    assert list(listed) == list(stamps)
    assert {relative for relative, stamp in listed.items() if stamp == UNSTAMPED} == {
        "0.md",
        "1.md",
        "2.md",
        "nested/deeper/inner.txt",
        "folder.md/x.md",
    }
    assert listed["link.md"] == stamps["link.md"]  # stat'ed and checked, as always
    assert [p.describe() for p in listed_problems] == [p.describe() for p in problems]
    assert any("symlink points outside" in p.message for p in problems)


def test_a_cold_load_stamps_each_file_as_it_read_it(seeds: Path, monkeypatch) -> None:
    """Stamps come from the reads: the next reload reads nothing, even for a file that
    changed between the listing and its read (its new content is what was parsed)."""
    import feedservice.catalog as catalog_module

    for n in range(4):
        write_seed(seeds, f"{n}.md", **article_fields(n))
    real_scan = catalog_module.scan

    def scan_then_edit(directory: Path, **options: bool) -> object:
        listed = real_scan(directory, **options)
        write_seed(seeds, "1.md", **article_fields(1, title="Edited after the listing"))
        bump_mtime(seeds / "1.md")
        return listed

    monkeypatch.setattr(catalog_module, "scan", scan_then_edit)
    store = SeedStore(seeds, cache=None)
    store.refresh()
    monkeypatch.setattr(catalog_module, "scan", real_scan)
    assert "Edited after the listing" in {article.title for article in store.articles()}
    assert all(stamp != UNSTAMPED for stamp in store._stamps.values())
    assert store._stamps == scan(seeds)[0]
    read: list[str] = []
    original = catalog_module.read_seed_stamped
    monkeypatch.setattr(
        catalog_module,
        "read_seed_stamped",
        lambda root, rel: read.append(rel) or original(root, rel),
    )
    assert not store.refresh().any_change and read == []


def test_serve_s_store_freezes_its_first_load_only(seeds: Path) -> None:
    """`serve`'s parent freezes its heap before forking anyway; freezing the first load at
    once spares the catalog and first render collections over it. Later loads are not."""
    for n in range(3):
        write_seed(seeds, f"{n}.md", **article_fields(n))
    store = SeedStore(seeds, cache=None)
    store.freeze_first_load = True
    before = gc.get_freeze_count()
    try:
        store.refresh()
        frozen = gc.get_freeze_count()
        assert frozen > before
        write_seed(seeds, "3.md", **article_fields(3))
        assert store.refresh().added == 1
        assert gc.get_freeze_count() <= frozen  # (frozen objects may be freed; none added)
    finally:
        gc.unfreeze()

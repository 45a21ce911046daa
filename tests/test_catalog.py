"""The catalog (articles → feeds) and the loader's incremental reads, on real files in
temp dirs."""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import article_fields, bump_mtime, seed_text, write_config, write_seed
from hypothesis import given, settings
from hypothesis import strategies as st

import feedservice.runtime.loader as loader_module
import feedservice.runtime.parsing as parsing
from feedservice import settings as feed_settings
from feedservice.catalog import FEEDS, TOPICS, Catalog, Entry, build_catalog, why_not
from feedservice.ingest.files import scan
from feedservice.runtime.loader import Loader
from feedservice.runtime.seedfiles import published_part
from feedservice.settings import FeedSpec
from feedservice.store.db import Store


def load(seeds: Path, config: Path | None = None) -> Loader:
    """What `check` does: one reload into an in-memory store, without rendering."""
    loader = Loader(Store.memory(), seeds, config, environ={}, render=False)
    loader.reload()
    return loader


def catalog_of(seeds: Path, tmp_path: Path, **config: Any) -> Catalog:
    path = write_config(tmp_path / "config" / "feeds.yaml", **config) if config else None
    catalog = load(seeds, path).catalog
    assert catalog is not None
    return catalog


def sources(entries: Any) -> list[str]:
    return [entry.source for entry in entries]


@pytest.fixture
def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every seed file the loader parses, by relative path."""
    parsed: list[str] = []
    original = parsing.parse_file

    def counted(root: str, path: str, *site: Any) -> parsing.ParseResult:
        parsed.append(path)
        return original(root, path, *site)

    monkeypatch.setattr(parsing, "parse_file", counted)
    return parsed


def test_order_is_newest_first_with_deterministic_ties(seeds: Path, tmp_path: Path) -> None:
    write_seed(seeds, "old.md", **article_fields(1, publishedDateTime="2020-01-01T00:00:00Z"))
    write_seed(seeds, "new.md", **article_fields(2, publishedDateTime="2022-01-01T00:00:00Z"))
    write_seed(seeds, "tie-b.md", **article_fields(4, publishedDateTime="2021-01-01T00:00:00Z"))
    write_seed(seeds, "tie-a.md", **article_fields(3, publishedDateTime="2021-01-01T00:00:00Z"))
    catalog = catalog_of(seeds, tmp_path)
    # Ties are broken by identity (the canonical link: .../3 before .../4), never by I/O.
    assert sources(catalog.articles) == ["new.md", "tie-a.md", "tie-b.md", "old.md"]
    assert sources(catalog.feeds["feeds/all"].entries) == sources(catalog.articles)


def test_drafts_are_in_no_feed(seeds: Path, tmp_path: Path) -> None:
    write_seed(seeds, "draft.md", **article_fields(1, published=False))
    write_seed(seeds, "live.md", **article_fields(2))
    catalog = catalog_of(seeds, tmp_path)
    assert sources(catalog.articles) == ["live.md"]
    assert catalog.drafts == {"draft.md"}
    assert all("draft.md" not in sources(feed.entries) for feed in catalog.feeds.values())


def test_duplicates_keep_newest_then_path_and_are_reported(seeds: Path, tmp_path: Path) -> None:
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
    loader = load(seeds)
    catalog = loader.catalog
    assert catalog is not None
    assert sources(catalog.articles) == ["a.md"]
    assert dict(catalog.duplicates) == {"b.md": "a.md", "c.md": "a.md"}
    reported = [p for p in loader.problems() if "duplicate" in p.message]
    assert {p.source for p in reported} == {"b.md", "c.md"}
    assert not any(p.fatal for p in reported)  # a warning: the winner is served


def test_topic_feeds_slugs_and_shared_slugs(seeds: Path, tmp_path: Path) -> None:
    write_seed(seeds, "1.md", **article_fields(1, topics=["AI in Autos", "AI"]))
    write_seed(seeds, "2.md", **article_fields(2, topics=["ai-in-autos"]))
    write_seed(seeds, "3.md", **article_fields(3, topics=["Robotics"]))
    catalog = catalog_of(seeds, tmp_path)
    topics = {feed.name: feed for feed in catalog.of_kind(TOPICS)}
    assert set(topics) == {"ai", "ai-in-autos", "robotics"}
    assert len(topics["ai-in-autos"].entries) == 2  # two spellings, one feed
    assert topics["ai-in-autos"].title == "AI in Autos"  # a tie: the first spelling by name
    assert sources(topics["ai"].entries) == ["1.md"]


def test_configured_feeds_filters(seeds: Path, tmp_path: Path) -> None:
    write_seed(seeds, "1.md", **article_fields(1, topics=["AI", "Robotics"], quality=90))
    write_seed(seeds, "2.md", **article_fields(2, topics=["AI"], quality=10))
    write_seed(seeds, "3.md", **article_fields(3, topics=["Biology"], quality=95))
    catalog = catalog_of(
        seeds,
        tmp_path,
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

    def members(name: str) -> list[str]:
        feed = catalog.feeds.get(f"{FEEDS}/{name}")
        assert feed is not None
        return sources(feed.entries)

    assert members("ai-good") == ["1.md"]
    assert members("no-robots") == ["2.md"]
    assert members("empty") == []
    assert len(members("all")) == 3  # the all-articles feed exists by default


def test_limits_page_feeds(seeds: Path, tmp_path: Path) -> None:
    for n in range(7):
        write_seed(seeds, f"{n}.md", **article_fields(n))
    catalog = catalog_of(seeds, tmp_path, topic_limit=3)
    feed = catalog.feeds["topics/ai"]
    assert feed.page_count == 3
    assert [len(feed.page(n)) for n in (1, 2, 3)] == [3, 3, 1]
    assert [entry for n in (1, 2, 3) for entry in feed.page(n)] == list(feed.entries)


def test_the_loader_parses_only_changed_files(seeds: Path, count_parses: list[str]) -> None:
    for n in range(3):
        write_seed(seeds, f"{n}.md", **article_fields(n))
    loader = Loader(Store.memory(), seeds, None, environ={}, render=False)
    first = loader.reload()
    assert first is not None and (first.added, len(first.catalog.articles)) == (3, 3)
    count_parses.clear()
    assert loader.reload() is None and count_parses == []  # nothing changed: no generation
    write_seed(seeds, "1.md", **article_fields(1, title="Changed"))
    bump_mtime(seeds / "1.md")
    (seeds / "2.md").unlink()
    write_seed(seeds, "sub/dir/9.txt", **article_fields(9))
    reloaded = loader.reload()
    assert reloaded is not None
    assert (reloaded.added, reloaded.changed, reloaded.removed) == (1, 1, 1)
    assert sorted(count_parses) == ["1.md", "sub/dir/9.txt"]
    assert sorted(sources(reloaded.catalog.articles)) == ["0.md", "1.md", "sub/dir/9.txt"]
    revisions = {entry.source: entry.revision for entry in reloaded.catalog.articles}
    assert revisions["1.md"] != first.catalog.articles[1].revision  # the edit was read


def test_a_good_file_turned_bad_keeps_its_last_good_version(seeds: Path) -> None:
    path = write_seed(seeds, "a.md", **article_fields(1))
    loader = load(seeds)
    good = loader.catalog
    assert good is not None
    path.write_text("---\ntitle: [half-written\n")  # a save caught mid-write
    bump_mtime(path)
    reloaded = loader.reload()
    assert reloaded is not None
    # The same article, same revision: only its file's stamp and problems moved.
    assert list(map(published_part, reloaded.catalog.articles)) == list(
        map(published_part, good.articles)
    )
    assert reloaded.catalog.articles[0].carried
    problems = loader.problems()
    assert len(problems) == 1 and problems[0].fatal
    assert "last good version" in problems[0].message
    path.unlink()
    reloaded = loader.reload()
    assert reloaded is not None
    assert reloaded.catalog.articles == () and loader.problems() == []


def test_only_md_and_txt_files_are_read(seeds: Path, tmp_path: Path) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    write_seed(seeds, "b.yaml", **article_fields(2))
    write_seed(seeds, ".hidden.md", **article_fields(3))
    write_seed(seeds, "c.txt", **article_fields(4))
    (seeds / "notes.md").mkdir()  # a directory with a seed-like name is not a file
    catalog = catalog_of(seeds, tmp_path)
    assert sorted(sources(catalog.articles)) == ["a.md", "c.txt"]


def test_same_input_same_catalog(seeds: Path, tmp_path: Path) -> None:
    for n in range(5):
        write_seed(seeds, f"{n}.md", **article_fields(n, topics=["AI", f"T{n % 2}"]))
    first, second = catalog_of(seeds, tmp_path), catalog_of(seeds, tmp_path)
    assert first == second
    assert list(first.feeds) == list(second.feeds)
    # Pure: the order the entries come in (directory order, a pool's) changes nothing.
    entries = list(first.articles)
    random.Random(3).shuffle(entries)
    config = feed_settings.resolve({}, {})
    assert build_catalog(entries, config) == build_catalog(first.articles, config)
    assert list(build_catalog(entries, config).feeds) == list(first.feeds)


def test_the_scan_finds_nested_files_and_checks_symlinks(seeds: Path, tmp_path: Path) -> None:
    """Nested directories are entered (one named like a seed too); a symlink is followed
    only inside the seed directory; a FIFO is not a seed file."""
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
    assert set(stamps) == {
        "0.md",
        "1.md",
        "2.md",
        "link.md",
        "nested/deeper/inner.txt",
        "folder.md/x.md",
    }
    assert stamps["link.md"] == stamps["0.md"]  # the target's stamp: its edits are seen
    assert [(p.source, p.fatal) for p in problems] == [("escape.md", True)]
    assert "symlink points outside" in problems[0].message
    loader = load(seeds)
    assert any("symlink points outside" in p.message for p in loader.problems())
    assert len(loader.catalog.articles) == 5  # type: ignore[union-attr]  # link.md duplicates 0.md


def test_a_load_stamps_each_file_as_it_read_it(
    seeds: Path, monkeypatch: pytest.MonkeyPatch, count_parses: list[str]
) -> None:
    """Stamps come from the reads: the next reload reads nothing, even for a file that
    changed between the listing and its read (its new content is what was parsed)."""
    for n in range(4):
        write_seed(seeds, f"{n}.md", **article_fields(n))

    def scan_then_edit(directory: Path, **options: Any) -> Any:
        listed = scan(directory, **options)
        write_seed(seeds, "1.md", **article_fields(1, title="Edited after the listing"))
        bump_mtime(seeds / "1.md")
        return listed

    monkeypatch.setattr(loader_module, "scan", scan_then_edit)
    loader = Loader(Store.memory(), seeds, None, environ={}, render=False)
    loader.reload()
    monkeypatch.setattr(loader_module, "scan", scan)
    stored = {path: row.stamp for path, row in loader.files.items()}
    assert stored == scan(seeds)[0]  # the edited file's stamp is that of what was read
    assert "Edited after the listing" in (loader.store.record("1.md") or "")
    count_parses.clear()
    assert loader.reload() is None and count_parses == []


TOPIC_NAMES = ["AI", "ai", "Robots", "Vision", "Go", "Sponsored"]
topic_lists = st.lists(st.sampled_from(TOPIC_NAMES), max_size=3).map(tuple)
entries_strategy = st.lists(
    st.tuples(topic_lists, st.one_of(st.none(), st.integers(-5, 100)), st.integers(0, 50)),
    max_size=40,
)
specs_strategy = st.lists(
    st.tuples(
        st.one_of(st.just(("*",)), st.lists(st.sampled_from(TOPIC_NAMES), min_size=1).map(tuple)),
        st.lists(st.sampled_from(TOPIC_NAMES), max_size=2).map(tuple),
        st.one_of(st.none(), st.integers(-5, 100)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(entries_strategy, specs_strategy)
def test_a_configured_feed_holds_exactly_what_why_not_lets_in(raw: Any, raw_specs: Any) -> None:
    """The set arithmetic that builds feeds fast agrees with the one-article rule that
    `explain` quotes, for any articles and any topic, exclusion and quality rules."""
    entries = [
        Entry(f"{n}.md", f"https://x.test/{n}", -published, topics, quality, False, "r")
        for n, (topics, quality, published) in enumerate(raw)
    ]
    specs = [
        FeedSpec(name=f"f{n}", title="F", topics=topics, exclude_topics=excluded,
                 min_quality=quality, description=None, limit=10)
        for n, (topics, excluded, quality) in enumerate(raw_specs)
    ]  # fmt: skip
    config = dataclasses.replace(feed_settings.load(None, {}, {}), feeds=tuple(specs))
    catalog = build_catalog(entries, config)
    for spec in specs:
        expected = [entry for entry in catalog.articles if why_not(spec, entry) is None]
        assert list(catalog.feeds[f"feeds/{spec.name}"].entries) == expected

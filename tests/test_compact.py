"""Compact stored articles (compact.py): what the catalog keeps must expand back to
exactly the Article the parser produced, for every real file and every field."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime
from pathlib import Path

from conftest import SAMPLE_SEEDS, article_fields, realworld_and_samples, write_seed

from feedservice import compact
from feedservice.catalog import load_seed_file
from feedservice.seeds import scan


def test_every_real_article_expands_to_what_was_parsed(tmp_path: Path) -> None:
    seeds = realworld_and_samples(tmp_path)
    stamps, _ = scan(seeds)
    checked = 0
    for relative in stamps:
        article, _ = load_seed_file(str(seeds), relative)
        if article is None:
            continue
        stored = compact.store(article)
        if article.is_draft:  # never rendered: kept without its content
            assert not stored.packed and stored.provider_fields is None
            continue
        assert stored.expand() == article, relative
        assert pickle.loads(pickle.dumps(stored)).expand() == article
        checked += 1
    assert checked >= len(list(SAMPLE_SEEDS.iterdir()))


def test_articles_stored_together_share_packed_groups_and_expand_exactly(tmp_path: Path) -> None:
    seeds = realworld_and_samples(tmp_path)
    stamps, _ = scan(seeds)
    loaded = [load_seed_file(str(seeds), relative)[0] for relative in sorted(stamps)]
    parsed = [article for article in loaded if article is not None]
    assert sum(not article.is_draft for article in parsed) > 2 * compact.PACK_GROUP
    stored = compact.store_all([(article, 1.5) for article in parsed])
    file_date = datetime.fromtimestamp(1.5, UTC)
    published = [s for s in stored if not s.is_draft]
    for start in range(0, len(published), compact.PACK_GROUP):
        group = published[start : start + compact.PACK_GROUP]
        assert len({id(s.packed) for s in group}) == 1  # one blob, kept once
        assert [s.slot for s in group] == list(range(len(group)))
    assert len({id(s.packed) for s in published}) == -(-len(published) // compact.PACK_GROUP)
    for article, kept in zip(parsed, stored, strict=True):
        if article.is_draft:
            assert not kept.packed and kept.provider_fields is None
            continue
        assert kept.expand() == dataclasses.replace(article, modified=file_date)
    # Pickling (the pool's results, the parse cache) keeps one blob per group.
    again = pickle.loads(pickle.dumps(stored))
    assert again == stored
    assert len({id(s.packed) for s in again if s.packed}) == len({id(s.packed) for s in published})


def test_cold_fields_read_one_at_a_time_and_links_are_not_stored_twice(seeds: Path) -> None:
    write_seed(
        seeds,
        "a.md",
        **article_fields(
            1,
            originalUrl="https://example.com/articles/1",  # the same as webUrl
            related=[
                {
                    "title": "R",
                    "webUrl": "https://r.example/",
                    "publishedDateTime": "2020-01-01T05:30:00-03:30",
                }
            ],
        ),
    )
    article, _ = load_seed_file(str(seeds), "a.md")
    assert article is not None
    stored = compact.store(article)
    assert stored.title == article.title and stored.provider == article.provider
    assert stored.related[0].published.utcoffset() == article.related[0].published.utcoffset()
    bigger = compact.store(article.__class__(**{**_fields(article), "link": "https://x.example/"}))
    assert len(stored.packed) < len(bigger.packed)  # link == identity is not stored again
    try:
        stored.no_such_field  # noqa: B018
    except AttributeError as error:
        assert "no_such_field" in str(error)
    else:
        raise AssertionError("unknown attributes must raise")


def _fields(article: object) -> dict[str, object]:
    return {name: getattr(article, name) for name in article.__slots__}  # type: ignore[attr-defined]

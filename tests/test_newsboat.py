"""A real feed reader: newsboat subscribes to our feeds over loopback.

The server serves the real-world corpus plus the bundled seeds. newsboat keeps
one row per GUID across its whole cache, so an article that sits in ten feeds is
stored once; to compare each feed with the catalog, every feed gets a cache of
its own, and one shared cache checks the union. newsboat exits 0 even when a
feed fails, so its log (`-d log -l 4`) is read for USERERROR and ERROR lines.
The truth is a Loader of the test's own, over a store in a temp dir, reading the
same files and config (the feeds' items in order), and the real seed parser (each
item's title, link and date).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, bump_mtime, realworld_and_samples, start_server, wait_for
from consumers import load_truth, seed_article

from feedservice.catalog import Catalog, Feed

NEWSBOAT = shutil.which("newsboat")
RELOAD_ARGS = (
    "-u",
    "urls",
    "-c",
    "cache.db",
    "-C",
    "config",
    "-x",
    "reload",
    "-d",
    "log",
    "-l",
    "4",
)
pytestmark = pytest.mark.skipif(
    NEWSBOAT is None, reason="newsboat is not installed (apt-get install newsboat)"
)


@dataclass
class Reader:
    """One newsboat cache, its log, and the feeds it subscribes to."""

    directory: Path
    urls: list[str]

    def reload(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "home").mkdir(exist_ok=True)
        (self.directory / "urls").write_text("".join(url + "\n" for url in self.urls))
        (self.directory / "config").write_text("reload-threads 4\nmax-items 0\n")
        log = self.directory / "log"
        log.unlink(missing_ok=True)
        result = subprocess.run(
            [NEWSBOAT, *RELOAD_ARGS],
            cwd=self.directory,
            env={**os.environ, "HOME": str(self.directory / "home")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        problems = [
            line
            for line in (log.read_text() if log.exists() else "").splitlines()
            if "USERERROR" in line or "ERROR:" in line
        ]
        assert problems == [], problems

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.directory / "cache.db") as db:
            return db.execute(sql, args).fetchall()


def make_site(tmp: Path) -> tuple[Path, Path]:
    """A copy of realworld + bundled seeds (so a test may edit it) and the shipped config."""
    seeds = realworld_and_samples(tmp)
    config = yaml.safe_load((REPO / "config" / "feeds.yaml").read_text())
    config["reload_interval"] = 1
    path = tmp / "feeds.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return seeds, path


@dataclass(frozen=True)
class Page:
    """Page 1 of one feed as a reader should see it at `base_url`."""

    feed: Feed
    site_title: str
    base_url: str
    seeds: Path

    def url(self, fmt: str) -> str:
        return f"{self.base_url}/{self.feed.kind}/{self.feed.name}.{fmt}"

    @property
    def html_url(self) -> str:
        return f"{self.base_url}/{self.feed.kind}/{self.feed.name}/"

    @property
    def title(self) -> str:
        """Topic and provider feeds are titled `<name> — <site title>`; configured feeds by
        their title."""
        if self.feed.kind in ("topics", "providers"):
            return f"{self.feed.title} — {self.site_title}"
        return self.feed.title

    @property
    def identities(self) -> list[str]:
        return [entry.identity for entry in self.feed.page(1)]

    def expected_items(self) -> list[tuple[str, str, str, int]]:
        """(guid, title, link, pubDate) per item, from the seed files themselves."""
        articles = [seed_article(self.seeds, entry.source) for entry in self.feed.page(1)]
        return [(a.identity, a.title, a.link, int(a.published.timestamp())) for a in articles]


@dataclass(frozen=True)
class Truth:
    catalog: Catalog
    pages: list[Page]


def truth_for(seeds: Path, config: Path, base_url: str, tmp: Path) -> Truth:
    catalog, settings = load_truth(seeds, config, tmp, environ={"FEEDSERVICE_BASE_URL": base_url})
    pages = [Page(feed, settings.title, base_url, seeds) for feed in catalog.feeds.values()]
    return Truth(catalog, pages)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("newsboat")
    seeds, config = make_site(tmp)
    server = start_server(seeds, config, tmp)
    try:
        yield truth_for(seeds, config, server.url, tmp), tmp
    finally:
        server.stop()


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_each_feed_matches_the_catalog(site: Any, fmt: str) -> None:
    truth, tmp = site
    checked = 0
    for page in truth.pages:
        url = page.url(fmt)
        reader = Reader(tmp / fmt / page.feed.kind / page.feed.name, [url])
        reader.reload()
        assert reader.rows("SELECT rssurl, url, title FROM rss_feed") == [
            (url, page.html_url, page.title)
        ]
        items = reader.rows(
            "SELECT guid, title, url, pubDate FROM rss_item WHERE feedurl = ? ORDER BY pubDate",
            url,
        )
        assert sorted(items) == sorted(page.expected_items()), url
        assert len(items) == len(page.feed.page(1))
        checked += 1
    assert checked == len(truth.catalog.feeds) >= 10


def test_one_cache_with_every_feed(site: Any) -> None:
    truth, tmp = site
    urls = [page.url(fmt) for page in truth.pages for fmt in ("rss", "atom")]
    reader = Reader(tmp / "everything", urls)
    reader.reload()
    assert sorted(row[0] for row in reader.rows("SELECT rssurl FROM rss_feed")) == sorted(urls)
    guids = [row[0] for row in reader.rows("SELECT guid FROM rss_item")]
    assert len(guids) == len(set(guids))
    shown = {identity for page in truth.pages for identity in page.identities}
    assert set(guids) == shown == {entry.identity for entry in truth.catalog.articles}


def test_no_duplicates_after_a_seed_edit(tmp_path: Path) -> None:
    seeds, config = make_site(tmp_path)
    server = start_server(seeds, config, tmp_path)
    try:
        truth = truth_for(seeds, config, server.url, tmp_path)
        victim = next(e for e in truth.catalog.articles if e.source.startswith("bundled/"))
        watched = [page for page in truth.pages if victim.identity in page.identities]
        assert len(watched) >= 3  # all, a configured feed and its topics
        readers = [
            Reader(tmp_path / "nb" / fmt / page.feed.kind / page.feed.name, [page.url(fmt)])
            for page in watched
            for fmt in ("rss", "atom")
        ]
        together = Reader(tmp_path / "nb" / "together", [r.urls[0] for r in readers])
        for reader in [*readers, together]:
            reader.reload()
        before = {id(r): r.rows("SELECT count(*) FROM rss_item")[0][0] for r in readers}

        path = seeds / victim.source
        text = path.read_text(encoding="utf-8")
        old_line = next(line for line in text.splitlines() if line.startswith("title:"))
        path.write_text(text.replace(old_line, 'title: "Edited: a new title"'), encoding="utf-8")
        bump_mtime(path)
        generation = server.health()["generation"]
        wait_for(
            lambda: b"Edited: a new title" in server.get("/feeds/all.json")[2],
            "the edit to be served",
            timeout=30,
        )
        assert server.health()["generation"] > generation

        for reader in [*readers, together]:
            reader.reload()
            guids = [row[0] for row in reader.rows("SELECT guid FROM rss_item")]
            assert len(guids) == len(set(guids)), f"duplicate items in {reader.urls}"
            titles = reader.rows("SELECT title FROM rss_item WHERE guid = ?", victim.identity)
            assert titles == [("Edited: a new title",)], reader.urls
        for reader in readers:
            assert reader.rows("SELECT count(*) FROM rss_item")[0][0] == before[id(reader)]
    finally:
        server.stop()

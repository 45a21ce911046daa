"""Edits reach readers (issue 18): each article's updated time, kept in the store, is its
Atom `<updated>` and JSON Feed `date_modified`. A title or excerpt edit moves it to the
reload that saw the edit; a change nothing publishes (a comment, `secured`) and a
restart do not; a seed that gives its own last change wins. Read with feedparser."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import feedparser
from conftest import article_fields, bump_mtime, make_site, seed_text, write_config, write_seed

from feedservice.ingest.clean import utc_micros
from feedservice.runtime.parsing import parse_file
from feedservice.runtime.seedfiles import next_row

LINK = "https://example.com/articles/1"


def entry_times(site, path: str = "/topics/ai") -> dict[str, tuple[str, str]]:
    """(published, updated) per item, as feedparser reads the Atom feed and as JSON says."""
    atom = feedparser.parse(site.get(f"{path}.atom").data)
    assert atom.bozo == 0
    items = json.loads(site.get(f"{path}.json").data)["items"]
    modified = {item["id"]: item["date_modified"] for item in items}
    for entry in atom.entries:  # the same instant in both formats
        assert datetime.fromisoformat(entry.updated) == datetime.fromisoformat(modified[entry.id])
    return {entry.id: (entry.published, entry.updated) for entry in atom.entries}


def test_an_edit_moves_updated_and_nothing_else_does(seeds: Path, tmp_path: Path) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    write_seed(seeds, "b.md", **article_fields(2))
    config = write_config(tmp_path / "feeds.yaml", base_url="http://feeds.test")
    site = make_site(seeds, config, tmp_path / "state")
    published, updated = entry_times(site)[LINK]
    assert updated == published  # new to the store: as it was published
    before = time.time()
    write_seed(seeds, "a.md", **article_fields(1, title="A better title"))
    bump_mtime(seeds / "a.md")
    assert site.reload() is not None
    published_after, edited = entry_times(site)[LINK]
    assert published_after == published
    assert datetime.fromisoformat(edited).timestamp() >= before - 0.01  # the reload's time
    atom = feedparser.parse(site.get("/topics/ai.atom").data)
    assert atom.feed.updated == edited  # the feed moved with it
    # A comment and a new `secured` publish nothing: the updated time stays.
    text = seed_text(**article_fields(1, title="A better title", secured="rotated"))
    (seeds / "a.md").write_text(text.replace("---\n", "---\n# a note\n", 1), encoding="utf-8")
    bump_mtime(seeds / "a.md")
    body = site.get("/topics/ai.atom").data
    site.reload()
    assert entry_times(site)[LINK][1] == edited
    assert site.get("/topics/ai.atom").data == body
    # The time is the store's: a restart (a new loader, a new worker) serves the same.
    site.store.close()
    again = make_site(seeds, config, tmp_path / "state")
    assert entry_times(again)[LINK] == (published, edited)


def test_a_seed_that_says_when_it_changed_wins(seeds: Path, tmp_path: Path) -> None:
    """A Jekyll post's `last_modified_at` is the item's updated time, whatever the store
    would say: when first met, and after an edit that moves no time of its own."""
    post = seeds / "_posts" / "2021-03-01-hello.md"
    post.parent.mkdir(parents=True)
    text = "---\ntitle: Hello\ntags: [ai]\nlast_modified_at: {when}\n---\nBody {n}.\n"
    post.write_text(text.format(when="2021-06-01T12:00:00Z", n=1), encoding="utf-8")
    config = write_config(tmp_path / "feeds.yaml", base_url="https://blog.example")
    site = make_site(seeds, config, tmp_path / "state")
    link = "https://blog.example/2021/03/01/hello.html"
    published, updated = entry_times(site)[link]
    assert datetime.fromisoformat(published) == datetime(2021, 3, 1, tzinfo=UTC)
    assert datetime.fromisoformat(updated) == datetime(2021, 6, 1, 12, tzinfo=UTC)
    post.write_text(text.format(when="2021-06-01T12:00:00Z", n=2), encoding="utf-8")
    bump_mtime(post)
    assert site.reload() is not None  # an edit, but the seed still says when it changed
    assert datetime.fromisoformat(entry_times(site)[link][1]) == datetime(
        2021, 6, 1, 12, tzinfo=UTC
    )
    parsed = parse_file(str(seeds), "_posts/2021-03-01-hello.md")
    assert next_row(None, parsed, {}, time.time()).updated == utc_micros(
        datetime(2021, 6, 1, 12, tzinfo=UTC)
    )

"""A real `feedservice serve` on a loopback port: what a new user and a poller see."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO, article_fields, bump_mtime, wait_for, write_config, write_seed
from consumers import read_feed


def test_bundled_seeds_with_default_config(live_server_factory, tmp_path: Path) -> None:
    server = live_server_factory(REPO / "seeds", REPO / "config" / "feeds.yaml")
    status, headers, body = server.get("/topics/machine-learning.rss")
    assert status == 200 and headers["Content-Type"].startswith("application/rss+xml")
    _, items = read_feed(body, "rss")
    assert [item.title for item in items] == [
        "Google Research: Self-supervised learning is transforming medical imaging",
        "Google Research changes the game for medical imaging with self-supervised learning",
    ]
    assert server.health()["articles"] == 2
    assert b"secured" not in body.lower()


def test_changes_show_within_the_interval(live_server_factory, seeds: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", reload_interval=1)
    write_seed(seeds, "a.md", **article_fields(1))
    write_seed(seeds, "b.md", **article_fields(2))
    server = live_server_factory(seeds, config, workers=2)

    def titles() -> list[str]:
        return [item.title for item in read_feed(server.get("/topics/ai.json")[2], "json")[1]]

    write_seed(seeds, "c.md", **article_fields(3, publishedDateTime="2025-01-01T00:00:00Z"))
    assert wait_for(lambda: titles()[:1] == ["Article number 3"], timeout=3) < 3
    write_seed(seeds, "a.md", **article_fields(1, title="Edited"))
    bump_mtime(seeds / "a.md")
    wait_for(lambda: "Edited" in titles(), timeout=3)
    (seeds / "b.md").unlink()
    wait_for(lambda: "Article number 2" not in titles(), timeout=3)


def test_etags_are_stable_across_reloads_and_workers(
    live_server_factory, seeds: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "feeds.yaml", reload_interval=1)
    for n in range(5):
        write_seed(seeds, f"{n}.md", **article_fields(n))
    server = live_server_factory(seeds, config, workers=2)
    etags = {server.get("/topics/ai.atom")[1]["ETag"] for _ in range(20)}
    # Two reloads that commit a generation without changing the feed's content: an
    # article of the feed rewritten as it was, and an article of another topic.
    for change in (
        lambda: bump_mtime(seeds / "0.md"),
        lambda: write_seed(seeds, "other.md", **article_fields(9, topics=["Other"])),
    ):
        generation = server.health()["generation"]
        change()
        wait_for(lambda g=generation: server.health()["generation"] > g, "a new generation", 10)
    assert server.get("/topics/other.atom")[0] == 200
    etags |= {server.get("/topics/ai.atom")[1]["ETag"] for _ in range(20)}
    assert len(etags) == 1  # every worker, before and after reloads: the same bytes
    etag = etags.pop()
    status, _headers, body = server.get("/topics/ai.atom", {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    modified = server.get("/topics/ai.atom")[1]["Last-Modified"]
    assert server.get("/topics/ai.atom", {"If-Modified-Since": modified})[0] == 304

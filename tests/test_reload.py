"""Reloads: add, modify, delete, bad files and bad configs, through the loader and HTTP."""

from __future__ import annotations

import threading
from pathlib import Path

from conftest import Site, article_fields, bump_mtime, write_config, write_seed
from consumers import read_feed
from lxml import etree


def site_title(site: Site) -> str:
    """The site title, as the OPML list a reader imports shows it."""
    head = etree.fromstring(site.get("/feeds.opml").data).find("head/title")
    assert head is not None and head.text
    return head.text.removesuffix(": All feeds")


def titles(site: Site, path: str = "/feeds/all.atom") -> list[str]:
    response = site.get(path)
    assert response.status_code == 200, path
    return [item.title for item in read_feed(response.data, path.rsplit(".", 1)[1])[1]]


def test_add_modify_delete(seeds: Path, config_file: Path, site_factory) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    write_seed(seeds, "b.md", **article_fields(2))
    site = site_factory(seeds, config_file)
    assert titles(site) == ["Article number 2", "Article number 1"]
    write_seed(seeds, "c.md", **article_fields(3))
    write_seed(seeds, "a.md", **article_fields(1, title="Edited title"))
    bump_mtime(seeds / "a.md")
    (seeds / "b.md").unlink()
    reloaded = site.reload()
    assert reloaded is not None
    assert (reloaded.added, reloaded.changed, reloaded.removed) == (1, 1, 1)
    assert titles(site) == ["Article number 3", "Edited title"]
    assert titles(site, "/topics/ai.rss") == ["Article number 3", "Edited title"]


def test_bad_file_is_isolated_and_last_good_version_served(
    seeds: Path, config_file: Path, site_factory
) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    write_seed(seeds, "b.md", **article_fields(2))
    site = site_factory(seeds, config_file)
    (seeds / "a.md").write_text("---\ntitle: 'unterminated\n---\n")
    bump_mtime(seeds / "a.md")
    (seeds / "new-bad.md").write_text("no front matter at all\n")
    site.reload()
    assert titles(site) == ["Article number 2", "Article number 1"]
    errors = {p.source: p for p in site.loader.problems() if p.fatal}
    assert set(errors) == {"a.md", "new-bad.md"}
    assert errors["a.md"].field == "(yaml)" and errors["a.md"].line is not None
    assert "last good version" in errors["a.md"].message
    health = site.get("/healthz").get_json()
    assert health["seed_errors"]["count"] == 2
    assert any("new-bad.md" in line for line in health["seed_errors"]["first"])
    assert any("last good version" in line for line in health["seed_errors"]["first"])
    write_seed(seeds, "a.md", **article_fields(1, title="Fixed"))
    bump_mtime(seeds / "a.md")
    site.reload()
    assert titles(site) == ["Article number 2", "Fixed"]
    assert site.get("/healthz").get_json()["seed_errors"]["count"] == 1  # new-bad.md only


def test_invalid_config_at_reload_keeps_last_good(
    seeds: Path, tmp_path: Path, site_factory
) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Good title")
    write_seed(seeds, "a.md", **article_fields(1))
    site = site_factory(seeds, config)
    config.write_text("title: Good\nfeeds:\n  - name: Bad Name!\n    title: x\n    topics: [a]\n")
    assert site.reload() is not None  # the error itself is news: /healthz must show it
    assert site.loader.config.title == "Good title"
    assert site_title(site) == "Good title"
    health = site.get("/healthz").get_json()
    assert health["status"] == "degraded" and "feeds[Bad Name!].name" in health["config_error"]
    assert site.reload() is None  # the same error again is not a change
    write_config(config, title="New title")
    site.reload()
    assert site.loader.config.title == "New title"
    assert site_title(site) == "New title"
    health = site.get("/healthz").get_json()
    assert health["status"] == "ok" and health["config_error"] is None


def test_unchanged_reload_keeps_bytes_and_etags(
    seeds: Path, config_file: Path, site_factory
) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    site = site_factory(seeds, config_file)
    before = site.get("/topics/ai.rss")
    generation = site.get("/healthz").get_json()["generation"]
    assert site.reload() is None  # nothing changed: nothing committed
    assert site.get("/healthz").get_json()["generation"] == generation
    (seeds / "a.md").touch()
    bump_mtime(seeds / "a.md")  # touched but identical content
    reloaded = site.reload()
    assert reloaded is not None and reloaded.changed == 1
    assert reloaded.changed_feeds == () and reloaded.rendered_feeds == 0
    after = site.get("/topics/ai.rss")
    assert after.data == before.data and after.headers["ETag"] == before.headers["ETag"]
    assert after.headers["Last-Modified"] == before.headers["Last-Modified"]


def test_readers_never_see_a_half_built_generation(
    seeds: Path, config_file: Path, site_factory
) -> None:
    for n in range(30):
        write_seed(seeds, f"{n}.md", **article_fields(n))
    site = site_factory(seeds, config_file)
    stop = threading.Event()
    failures: list[str] = []
    seen: set[int] = set()

    def reader() -> None:
        while not stop.is_set():
            for path in ("/feeds/all.json", "/topics/ai.json"):
                response = site.get(path)
                if response.status_code != 200:
                    failures.append(f"{path}: status {response.status_code}")
                    continue
                count = len(read_feed(response.data, "json")[1])
                seen.add(count)
                if count not in (30, 31):
                    failures.append(f"{path}: saw {count} items")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(20):
            path = write_seed(seeds, "extra.md", **article_fields(100))
            assert site.reload() is not None
            path.unlink()
            assert site.reload() is not None
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert 30 in seen

"""Reloads: add, modify, delete, bad files and bad configs, through Service and HTTP."""

from __future__ import annotations

import threading
from pathlib import Path

from conftest import article_fields, bump_mtime, write_config, write_seed
from consumers import read_feed

from feedservice.service import Service
from feedservice.web import create_app


def titles(service: Service, path: str = "/feeds/all.atom") -> list[str]:
    response = create_app(service).test_client().get(path)
    return [item.title for item in read_feed(response.data, path.rsplit(".", 1)[1])[1]]


def test_add_modify_delete(seeds: Path, config_file: Path) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    write_seed(seeds, "b.md", **article_fields(2))
    service = Service(seeds, config_file)
    assert titles(service) == ["Article number 2", "Article number 1"]
    write_seed(seeds, "c.md", **article_fields(3))
    write_seed(seeds, "a.md", **article_fields(1, title="Edited title"))
    bump_mtime(seeds / "a.md")
    (seeds / "b.md").unlink()
    service.reload()
    assert titles(service) == ["Article number 3", "Edited title"]


def test_bad_file_is_isolated_and_last_good_version_served(seeds: Path, config_file: Path) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    write_seed(seeds, "b.md", **article_fields(2))
    service = Service(seeds, config_file)
    (seeds / "a.md").write_text("---\ntitle: 'unterminated\n---\n")
    bump_mtime(seeds / "a.md")
    (seeds / "new-bad.md").write_text("no front matter at all\n")
    service.reload()
    assert titles(service) == ["Article number 2", "Article number 1"]
    errors = {p.source: p for p in service.snapshot.catalog.errors}
    assert set(errors) == {"a.md", "new-bad.md"}
    assert errors["a.md"].field == "(yaml)" and errors["a.md"].line is not None
    assert "last good version" in errors["a.md"].message
    health = create_app(service).test_client().get("/healthz").get_json()
    assert health["seed_errors"]["count"] == 2
    assert any("new-bad.md" in line for line in health["seed_errors"]["first"])
    write_seed(seeds, "a.md", **article_fields(1, title="Fixed"))
    bump_mtime(seeds / "a.md")
    service.reload()
    assert titles(service) == ["Article number 2", "Fixed"]


def test_invalid_config_at_reload_keeps_last_good(seeds: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Good title")
    write_seed(seeds, "a.md", **article_fields(1))
    service = Service(seeds, config)
    config.write_text("title: Good\nfeeds:\n  - name: Bad Name!\n    title: x\n    topics: [a]\n")
    service.reload()
    snapshot = service.snapshot
    assert snapshot.config.title == "Good title"
    assert "feeds[0].name" in (snapshot.config_error or "")
    health = create_app(service).test_client().get("/healthz").get_json()
    assert health["status"] == "degraded" and "feeds[0].name" in health["config_error"]
    write_config(config, title="New title")
    service.reload()
    assert service.snapshot.config.title == "New title"
    assert service.snapshot.config_error is None


def test_unchanged_reload_keeps_bytes_and_etags(seeds: Path, config_file: Path) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    service = Service(seeds, config_file)
    client = create_app(service).test_client()
    before = client.get("/topics/ai.rss")
    documents = service.snapshot.documents
    service.reload()
    assert service.snapshot.documents is documents  # nothing changed: nothing rebuilt
    (seeds / "a.md").touch()
    bump_mtime(seeds / "a.md")  # touched but identical content
    service.reload()
    after = client.get("/topics/ai.rss")
    assert after.data == before.data and after.headers["ETag"] == before.headers["ETag"]


def test_readers_never_see_a_half_built_snapshot(seeds: Path, config_file: Path) -> None:
    for n in range(30):
        write_seed(seeds, f"{n}.md", **article_fields(n))
    service = Service(seeds, config_file)
    client = create_app(service).test_client()
    stop = threading.Event()
    failures: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            response = client.get("/feeds/all.json")
            count = len(read_feed(response.data, "json")[1])
            if count not in (30, 31):
                failures.append(f"saw {count} items")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(20):
            path = write_seed(seeds, "extra.md", **article_fields(100))
            service.reload()
            path.unlink()
            service.reload()
    finally:
        stop.set()
        thread.join()
    assert failures == []

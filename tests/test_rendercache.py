"""The persistent render cache: a restart reuses the pages the last run rendered (same
bytes, same ETags), re-renders only what changed, and never trusts a foreign file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from conftest import article_fields, bump_mtime, write_seed

from feedservice import parsecache, rendercache, service
from feedservice.service import Service


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(parsecache.ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.setattr(parsecache, "MIN_CACHED_FILES", 0)
    monkeypatch.setattr(service, "MIN_CACHED_RENDERS", 0)
    return tmp_path / "cache"


def _corpus(seeds: Path) -> None:
    for n in range(30):
        write_seed(seeds, f"{n:02d}.md", **article_fields(n, topics=["AI", f"T{n % 3}"]))


def _bodies(svc: Service) -> dict[tuple[str, ...], tuple[bytes, str]]:
    docs = svc.snapshot.documents.rendered_documents()
    return {key: (doc.body, doc.etag) for key, (_, doc) in docs.items()}


def test_a_restart_reuses_every_rendered_page(seeds: Path, config_file: Path, cached: Path) -> None:
    _corpus(seeds)
    first = Service(seeds, config_file)
    assert first.snapshot.documents.renders > 0
    assert any(path.name.startswith("renders-") for path in cached.iterdir())
    again = Service(seeds, config_file)
    assert again.snapshot.documents.renders == 0
    assert _bodies(again) == _bodies(first)


def test_only_pages_whose_items_changed_render_again(
    seeds: Path, config_file: Path, cached: Path
) -> None:
    _corpus(seeds)
    first = Service(seeds, config_file)
    path = write_seed(seeds, "05.md", **article_fields(5, title="Edited", topics=["T2"]))
    bump_mtime(path)
    again = Service(seeds, config_file)
    rendered = again.snapshot.documents.rendered_feeds
    assert rendered and len(rendered) < len(again.snapshot.catalog.feeds)
    assert ("topics", "t2") in rendered
    fresh = _bodies(again)
    (cached / next(p.name for p in cached.iterdir() if p.name.startswith("renders-"))).unlink()
    assert _bodies(Service(seeds, config_file)) == fresh  # the same bytes as rendering anew
    assert _bodies(first) != fresh


def test_a_foreign_damaged_or_outdated_render_cache_is_ignored(
    seeds: Path, config_file: Path, cached: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _corpus(seeds)
    reference = _bodies(Service(seeds, config_file))
    cache_file = next(p for p in cached.iterdir() if p.name.startswith("renders-"))
    data = cache_file.read_bytes()
    for damaged in (data[: len(data) // 2], data[:-7] + b"garbage", b""):
        cache_file.write_bytes(damaged)
        svc = Service(seeds, config_file)
        assert svc.snapshot.documents.renders > 0 and _bodies(svc) == reference
    cache_file.write_bytes(pickle.dumps(((rendercache.VERSION_KEY,), os.system)))
    assert rendercache.RenderCache(cache_file).load() == {}
    Service(seeds, config_file)  # rewrites a good file
    os.chmod(cache_file, 0o666)
    assert rendercache.RenderCache(cache_file).load() == {}
    os.chmod(cache_file, 0o600)
    monkeypatch.setattr(rendercache, "VERSION_KEY", "other renderers")
    assert Service(seeds, config_file).snapshot.documents.renders > 0


def test_new_parsing_code_never_serves_old_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    """An item's revision digests its seed's bytes, so unchanged seeds keep their page
    fingerprints under new parsing code: the render cache's key must change with it."""
    before = rendercache._version_key()
    monkeypatch.setattr(parsecache, "VERSION_KEY", "a different parser")
    assert rendercache._version_key() != before

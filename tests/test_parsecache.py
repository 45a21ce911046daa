"""The persistent parse cache: reused only for unchanged files, crash-safe, safe to delete,
never trusted blindly; and the parallel parse that fills it."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import article_fields, bump_mtime, seed_text, write_seed

from feedservice import catalog, compact, parsecache, progress
from feedservice.catalog import SeedStore
from feedservice.parsecache import ParseCache
from feedservice.seeds import ScanInChild, SeedError, make_stamp, scan


def _corpus(directory: Path, count: int = 12) -> Path:
    for n in range(count):
        write_seed(directory, f"{n:03d}.md", **article_fields(n, topics=["AI", f"T{n % 3}"]))
    (directory / "bad.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    return directory


def _state(store: SeedStore) -> tuple[list[object], list[object]]:
    """What a store holds, as values: a published article expanded, since the same
    article may share its packed record with other files in one store and not another."""
    articles = [
        article.expand() if article.packed else article
        for article in sorted(store.articles(), key=lambda article: article.source)
    ]
    problems = sorted(store.problems(), key=repr)
    return articles, problems


@pytest.fixture
def cache(tmp_path: Path) -> ParseCache:
    return ParseCache(tmp_path / "cache" / "seeds.cache", min_files=0)


def test_a_warm_start_parses_nothing_and_equals_a_cold_one(seeds: Path, cache: ParseCache) -> None:
    _corpus(seeds)
    cold = SeedStore(seeds, cache=cache)
    stats = cold.refresh()
    assert (stats.parsed, stats.cached) == (13, 0)
    assert cache.path.exists() and oct(cache.path.stat().st_mode & 0o777) == "0o600"
    warm = SeedStore(seeds, cache=cache)
    stats = warm.refresh()
    assert (stats.parsed, stats.cached) == (0, 13)
    uncached = SeedStore(seeds, cache=None)
    uncached.refresh()
    assert _state(warm) == _state(cold) == _state(uncached)
    assert any(problem.field == "(yaml)" for problem in warm.problems())
    # The articles' packed groups come back from the cache each kept once, as parsed.
    assert sorted(warm.articles()) == sorted(cold.articles())
    groups = -(-len(warm.articles()) // compact.PACK_GROUP)
    assert len({id(article.packed) for article in warm.articles()}) == groups > 1


def test_each_file_is_invalidated_by_size_mtime_or_inode(seeds: Path, cache: ParseCache) -> None:
    _corpus(seeds)
    SeedStore(seeds, cache=cache).refresh()
    # Same size, new mtime: the title changes by one character.
    path = seeds / "001.md"
    path.write_text(path.read_text().replace("number 1", "number 7"), encoding="utf-8")
    bump_mtime(path)
    # New inode, same size and mtime: replaced by rename, as editors do.
    other = seeds / "002.md"
    info = other.stat()
    replacement = seeds / ".tmp-002"
    replacement.write_text(other.read_text().replace("number 2", "number 8"), encoding="utf-8")
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(replacement, other)
    assert other.stat().st_ino != info.st_ino and other.stat().st_size == info.st_size
    # Different size.
    write_seed(seeds, "003.md", **article_fields(3, title="A much longer title than before"))
    store = SeedStore(seeds, cache=cache)
    stats = store.refresh()
    assert (stats.parsed, stats.cached) == (3, 10)
    titles = {article.source: article.title for article in store.articles()}
    assert titles["001.md"] == "Article number 7"
    assert titles["002.md"] == "Article number 8"
    assert titles["003.md"] == "A much longer title than before"
    # The rewritten cache now knows the new versions.
    assert SeedStore(seeds, cache=cache).refresh().parsed == 0


def test_deleting_or_corrupting_the_cache_only_costs_a_parse(
    seeds: Path, cache: ParseCache
) -> None:
    _corpus(seeds)
    reference = SeedStore(seeds, cache=cache)
    reference.refresh()
    data = cache.path.read_bytes()
    for damaged in (data[: len(data) // 2], b"", b"garbage" * 10, data[:-1]):
        cache.path.write_bytes(damaged)
        store = SeedStore(seeds, cache=cache)
        assert store.refresh().parsed == 13
        assert _state(store) == _state(reference)
    cache.path.unlink()
    store = SeedStore(seeds, cache=cache)
    assert store.refresh().parsed == 13
    assert _state(store) == _state(reference)
    assert SeedStore(seeds, cache=cache).refresh().parsed == 0


def test_a_cache_for_another_directory_or_version_is_ignored(
    tmp_path: Path, seeds: Path, cache: ParseCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    _corpus(seeds)
    SeedStore(seeds, cache=cache).refresh()
    other = _corpus(tmp_path / "other")
    assert SeedStore(other, cache=cache).refresh().parsed == 13
    SeedStore(seeds, cache=cache).refresh()
    monkeypatch.setattr(parsecache, "VERSION_KEY", "a different parser")
    assert SeedStore(seeds, cache=cache).refresh().parsed == 13


def test_a_planted_or_foreign_cache_runs_no_code(
    seeds: Path, cache: ParseCache, tmp_path: Path
) -> None:
    _corpus(seeds)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(pickle.dumps(((parsecache.VERSION_KEY, str(seeds)), Exploit())))
    os.chmod(cache.path, 0o600)
    assert SeedStore(seeds, cache=cache).refresh().parsed == 13
    assert not marker.exists()
    # A cache file others may write is refused outright.
    os.chmod(cache.path, 0o666)
    assert cache.load(seeds) is None


def test_saving_is_atomic_and_leaves_no_temp_files(seeds: Path, cache: ParseCache) -> None:
    _corpus(seeds)
    store = SeedStore(seeds, cache=cache)
    store.refresh()
    for n in range(3):
        write_seed(seeds, f"new{n}.md", **article_fields(100 + n))
        store.refresh()  # later changes go to the journal
    store.flush_cache()
    names = sorted(path.name for path in cache.path.parent.iterdir())
    assert names == [cache.path.name, cache.journal.name]
    contents = cache.load(seeds)
    assert contents is not None and len(contents.relatives) == 16


def test_a_broken_file_is_cached_as_broken_not_as_its_last_good_version(
    seeds: Path, cache: ParseCache
) -> None:
    _corpus(seeds)
    store = SeedStore(seeds, cache=cache)
    store.refresh()
    path = seeds / "004.md"
    path.write_text(seed_text(title="no date or link"), encoding="utf-8")
    bump_mtime(path)
    store.refresh()
    assert "004.md" in {article.source for article in store.articles()}  # last good kept
    assert any("last good version" in problem.message for problem in store.problems())
    store.flush_cache()
    restarted = SeedStore(seeds, cache=cache)
    stats = restarted.refresh()
    assert stats.parsed == 0
    uncached = SeedStore(seeds, cache=None)
    uncached.refresh()
    assert _state(restarted) == _state(uncached)  # a restart gives what a fresh parse gives


def test_small_directories_write_no_cache_by_default(tmp_path: Path, seeds: Path) -> None:
    _corpus(seeds)
    small = ParseCache(tmp_path / "c" / "x.cache")  # default min_files
    SeedStore(seeds, cache=small).refresh()
    assert not small.path.exists()


def test_the_default_location_is_outside_the_seeds_and_can_be_switched_off(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(parsecache.ENV_CACHE_DIR, str(tmp_path / "somewhere"))
    path = parsecache.default_cache_path(seeds)
    assert path is not None and path.parent == tmp_path / "somewhere"
    assert seeds not in path.parents
    monkeypatch.setenv(parsecache.ENV_CACHE_DIR, "off")
    assert parsecache.default_cache_path(seeds) is None
    assert SeedStore(seeds).cache is None


def test_a_parallel_parse_equals_a_serial_one_and_fills_the_cache(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _corpus(seeds, 40)
    monkeypatch.setattr(catalog, "PARALLEL_PARSE_THRESHOLD", 10)
    monkeypatch.setattr(catalog, "MIN_CHUNK", 5)  # several chunks, as with many files
    monkeypatch.setattr(parsecache, "MIN_CACHED_FILES", 0)
    monkeypatch.setenv(parsecache.ENV_CACHE_DIR, str(tmp_path / "cache"))
    chunks: list[list[str]] = []
    pool = catalog._parse_in_processes

    def counted(*args: object) -> Iterator[tuple[bytes, list[str]]]:
        for blob, relatives in pool(*args):  # type: ignore[arg-type]
            chunks.append(relatives)
            yield blob, relatives

    monkeypatch.setattr(catalog, "_parse_in_processes", counted)
    parallel = SeedStore(seeds, workers=2)
    assert parallel.refresh().parsed == 41
    assert chunks  # the pool did the parsing
    serial = SeedStore(seeds, workers=1, cache=None)
    serial.refresh()
    assert _state(parallel) == _state(serial)
    assert len(chunks) > 1 and sum(map(len, chunks)) == 41
    # Equal values are one object across chunks; each path is the store's own string.
    articles = parallel.articles()
    assert len({id(article.topics) for article in articles}) == len(
        {article.topics for article in articles}
    )
    assert len({id(article.provider_fields) for article in articles}) == 1
    keys = {relative: relative for relative in parallel._stamps}
    assert all(article.source is keys[article.source] for article in articles)
    assert parallel._stamps == scan(seeds)[0]  # stamped as read
    warm = SeedStore(seeds, workers=2)
    assert warm.refresh().parsed == 0
    assert _state(warm) == _state(serial)


def test_parsing_falls_back_to_one_process_when_no_pool_can_start(
    seeds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _corpus(seeds, 30)
    monkeypatch.setattr(catalog, "PARALLEL_PARSE_THRESHOLD", 10)

    def no_pool(*args: object) -> list[bytes]:
        raise AssertionError("daemonic processes are not allowed to have children")

    monkeypatch.setattr(catalog, "_parse_in_processes", no_pool)
    store = SeedStore(seeds, workers=2, cache=None)
    assert store.refresh().parsed == 31
    assert len(store.articles()) == 30


def test_stored_articles_round_trip_every_field_through_the_cache(
    seeds: Path, cache: ParseCache
) -> None:
    write_seed(
        seeds,
        "full.md",
        **article_fields(
            1,
            publishedDateTime="1969-07-20T20:17:40.123456-05:30",  # before 1970, offset, µs
            originalUrl="https://example.com/original",
            ampWebUrl="https://example.com/amp",
            images=[{"url": "https://example.com/i.png", "width": 10, "height": 5, "title": "t"}],
            provider={
                "name": "P",
                "domain": "p.example",
                "images": [{"url": "https://p.example/logo.png"}],
            },
            related=[
                {
                    "title": "R",
                    "webUrl": "https://r.example/",
                    "provider": {"name": "RP"},
                    "publishedDateTime": "2020-01-01T00:00:00+02:00",
                }
            ],
        ),
    )
    article, _ = catalog.load_seed_file(str(seeds), "full.md")
    assert article is not None and article.related and article.provider.image  # type: ignore[union-attr]
    stored = compact.store(article)
    assert stored.expand() == article
    cache.save(seeds, parsecache.Contents(["full.md"], [make_stamp(1, 2, 3)], [stored], {}))
    contents = cache.load(seeds)
    assert contents is not None and contents.articles is not None
    loaded = contents.articles[0]
    assert loaded == stored and loaded is not None
    assert loaded.published.utcoffset() == stored.published.utcoffset()
    assert loaded.published.isoformat() == "1969-07-20T20:17:40.123456-05:30"
    expanded = loaded.expand()
    assert expanded == article
    assert expanded.related[0].published.utcoffset() == article.related[0].published.utcoffset()


def test_serve_writes_a_cold_loads_cache_in_a_child(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve`'s parent parses across processes itself; once its first snapshot is built,
    a child writes the cache. Then a restart is warm and equals a plain serial parse,
    bad files included."""
    _corpus(seeds, 40)
    monkeypatch.setattr(catalog, "PARALLEL_PARSE_THRESHOLD", 10)
    monkeypatch.setattr(parsecache, "MIN_CACHED_FILES", 0)
    monkeypatch.setenv(parsecache.ENV_CACHE_DIR, str(tmp_path / "cache"))
    savers = tmp_path / "savers"
    save = ParseCache.save

    def recorded(self: ParseCache, *args: object) -> bool:
        savers.write_text(str(os.getpid()))
        return save(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ParseCache, "save", recorded)
    store = SeedStore(seeds, workers=2)
    store.use_children = True
    stats = store.refresh()
    assert (stats.parsed, stats.cached) == (41, 0)
    assert store.cold_save is None and not savers.exists()  # not before the snapshot is built
    store.start_cold_save()
    assert store.cold_save is not None and store.cold_save.pid
    store.flush_cache()
    assert int(savers.read_text()) != os.getpid()  # written by the child
    serial = SeedStore(seeds, workers=1, cache=None)
    serial.refresh()
    assert _state(store) == _state(serial)
    again = SeedStore(seeds, workers=2)
    again.use_children = True
    assert again.refresh().parsed == 0  # warm: one bulk load
    assert _state(again) == _state(serial)


def test_a_cold_save_in_a_child_outlives_a_stop_signal(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopping the server (SIGTERM or Ctrl-C reach the whole process group) right after
    a cold start must not cut the cache write short: the next start would be cold."""
    _corpus(seeds)
    cache = ParseCache(tmp_path / "cache" / "seeds.cache", min_files=0)
    store = SeedStore(seeds, cache=cache)
    store.refresh()
    contents = store._contents()
    cache.path.unlink()
    started = tmp_path / "started"
    save = ParseCache.save

    def slow(self: ParseCache, *args: object) -> bool:
        started.touch()
        time.sleep(1.0)
        return save(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ParseCache, "save", slow)
    saving = parsecache.SaveInChild(cache, seeds, contents)
    deadline = time.monotonic() + 10
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert saving.pid and started.exists()
    os.kill(saving.pid, signal.SIGTERM)
    os.kill(saving.pid, signal.SIGINT)
    saving.wait()
    assert cache.load(seeds) == contents
    saving.wait()  # again: returns at once


def test_a_few_changes_are_journaled_and_a_restart_sees_them(
    seeds: Path, cache: ParseCache
) -> None:
    _corpus(seeds)
    store = SeedStore(seeds, cache=cache)
    store.refresh()
    before = cache.path.stat().st_mtime_ns, cache.path.stat().st_ino
    write_seed(seeds, "new.md", **article_fields(100))
    (seeds / "003.md").unlink()
    edited = write_seed(seeds, "004.md", **article_fields(4, title="Edited title"))
    bump_mtime(edited)
    (seeds / "005.md").write_text("---\ntitle: [broken\n---\n", encoding="utf-8")
    bump_mtime(seeds / "005.md")
    store.refresh()
    assert (cache.path.stat().st_mtime_ns, cache.path.stat().st_ino) == before  # not rewritten
    assert cache.journal.stat().st_size > 0
    restarted = SeedStore(seeds, cache=cache)
    assert restarted.refresh().parsed == 0
    fresh = SeedStore(seeds, cache=None)
    fresh.refresh()
    assert _state(restarted) == _state(fresh)


def test_a_torn_journal_costs_only_the_parses_it_lost(seeds: Path, cache: ParseCache) -> None:
    _corpus(seeds)
    store = SeedStore(seeds, cache=cache)
    store.refresh()
    for n in range(2):
        path = write_seed(seeds, f"00{n}.md", **article_fields(n, title=f"Changed {n}"))
        bump_mtime(path)
        store.refresh()
    data = cache.journal.read_bytes()
    for damaged in (data[:-3], data + b"\x00garbage", data[: len(data) // 2]):
        cache.journal.write_bytes(damaged)
        restarted = SeedStore(seeds, cache=cache)
        assert restarted.refresh().parsed <= 2
        fresh = SeedStore(seeds, cache=None)
        fresh.refresh()
        assert _state(restarted) == _state(fresh)
    cache.journal.write_bytes(data)
    os.chmod(cache.journal, 0o666)  # a journal others may write is not read at all
    restarted = SeedStore(seeds, cache=cache)
    assert restarted.refresh().parsed == 2


def test_a_large_journal_is_folded_into_a_rewrite(
    seeds: Path, cache: ParseCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    _corpus(seeds)
    store = SeedStore(seeds, cache=cache)
    store.refresh()
    write_seed(seeds, "new.md", **article_fields(100))
    store.refresh()
    assert cache.journal.exists()
    monkeypatch.setattr(catalog, "JOURNAL_MAX_BYTES", 0)
    write_seed(seeds, "newer.md", **article_fields(101))
    store.refresh()
    store.flush_cache()
    assert not cache.journal.exists()
    restarted = SeedStore(seeds, cache=cache)
    assert restarted.refresh().parsed == 0 and len(restarted.articles()) == 14


def test_a_scan_in_a_child_gives_exactly_what_scan_gives(seeds: Path, tmp_path: Path) -> None:
    """Nested directories, a name that is not UTF-8 and a symlink out of the seed
    directory (a scan problem) all come back from the child unchanged."""
    _corpus(seeds, 5)
    (seeds / "nested" / "deeper").mkdir(parents=True)
    write_seed(seeds / "nested" / "deeper", "inner.md", **article_fields(50))
    write_seed(seeds, os.fsdecode(b"caf\xe9.md"), **article_fields(51))
    outside = tmp_path / "outside.md"
    outside.write_text(seed_text(**article_fields(52)), encoding="utf-8")
    (seeds / "escape.md").symlink_to(outside)
    stamps, problems = scan(seeds)
    child_stamps, child_problems = ScanInChild(seeds).result()
    assert child_stamps == stamps and list(child_stamps) == list(stamps)
    assert [p.describe() for p in child_problems] == [p.describe() for p in problems]
    assert any("symlink points outside" in p.message for p in child_problems)


def test_a_scan_in_a_child_raises_as_scan_does_when_the_root_is_gone(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="cannot be listed"):
        ScanInChild(tmp_path / "missing").result()


def test_serve_scans_in_a_child_while_it_loads_the_cache(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm start in `serve`'s parent: the scan runs in a child beside the cache load,
    and the result is the same as a plain warm start's, problems included. A file
    changed while the server was down is still seen."""
    _corpus(seeds, 20)
    monkeypatch.setattr(parsecache, "MIN_CACHED_FILES", 0)
    monkeypatch.setattr(catalog, "SCAN_BESIDE_LOAD_BYTES", 0)
    monkeypatch.setenv(parsecache.ENV_CACHE_DIR, str(tmp_path / "cache"))
    SeedStore(seeds).refresh()  # writes the cache
    forked: list[Path] = []

    class Counted(ScanInChild):
        def __init__(self, root: Path) -> None:
            forked.append(root)
            super().__init__(root)

    monkeypatch.setattr(catalog, "ScanInChild", Counted)
    warm = SeedStore(seeds)
    warm.use_children = True
    assert (warm.refresh().parsed, len(forked)) == (0, 1)
    plain = SeedStore(seeds, cache=None)
    plain.refresh()
    assert _state(warm) == _state(plain)
    edited = write_seed(seeds, "004.md", **article_fields(4, title="Edited while down"))
    bump_mtime(edited)
    again = SeedStore(seeds)
    again.use_children = True
    stats = again.refresh()
    assert (stats.parsed, len(forked)) == (1, 2)
    assert {a.source: a.title for a in again.articles()}["004.md"] == "Edited while down"
    assert not SeedStore(seeds).use_children  # off unless `serve` turns it on


def test_a_load_bar_counts_the_pools_files_and_starts_no_thread(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a terminal the first load draws a bar advanced as pool chunks arrive. The bar
    must start no thread (tqdm's monitor): with one, the pool could not simply fork."""
    _corpus(seeds, 120)
    monkeypatch.setattr(catalog, "PARALLEL_PARSE_THRESHOLD", 10)
    monkeypatch.setattr(progress, "MIN_FILES", 10)
    monkeypatch.setattr(progress, "wanted", lambda stream=None: True)
    threads: list[int] = []
    pool = catalog._parse_in_processes

    def counted(*args: object) -> Iterator[bytes]:
        threads.append(threading.active_count())
        yield from pool(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog, "_parse_in_processes", counted)
    advanced: list[int] = []
    advance = progress.ProgressSeedStore._advance

    def recorded(self: progress.ProgressSeedStore, count: int) -> None:
        advanced.append(count)
        advance(self, count)

    monkeypatch.setattr(progress.ProgressSeedStore, "_advance", recorded)
    store = progress.seed_store(seeds)
    store.workers = 2
    store.cache = None
    assert store.refresh().parsed == 121
    assert threads == [1]
    assert "loading seeds" in capsys.readouterr().err
    assert sum(advanced) == 121 and len(advanced) > 1  # one step per chunk


@pytest.mark.parametrize(
    ("total", "workers"), [(1, 2), (41, 2), (2000, 2), (100_000, 2), (9999, 8)]
)
def test_pool_chunks_cover_every_file_and_shrink_towards_the_end(total: int, workers: int) -> None:
    sizes = catalog._chunk_sizes(total, workers)
    assert sum(sizes) == total and all(size > 0 for size in sizes)
    assert all(size <= catalog.MAX_CHUNK for size in sizes)
    assert all(size >= catalog.MIN_CHUNK for size in sizes[:-1])
    assert sizes == sorted(sizes, reverse=True)
    if total >= catalog.MAX_CHUNK * workers * 4:
        assert sizes[0] == catalog.MAX_CHUNK and max(sizes[-workers:]) <= catalog.MIN_CHUNK


def test_serve_stopped_right_after_a_cold_start_leaves_a_complete_cache(
    live_server_factory: Any, seeds: Path, config_file: Path, tmp_path: Path
) -> None:
    """The cold load's cache is written by a child after the first snapshot; a stop right
    after the server answers waits for it, so the next start finds every file cached."""
    count = parsecache.MIN_CACHED_FILES + 20
    for n in range(count):
        write_seed(seeds, f"{n:04d}.md", **article_fields(n))
    cache_dir = tmp_path / "cache"
    env = {parsecache.ENV_CACHE_DIR: str(cache_dir)}
    server = live_server_factory(seeds, config_file, workers=2, env=env, wait_articles=count)
    server.stop()
    assert server.process.returncode == 0
    (path,) = cache_dir.glob("seeds-*.cache")
    saved = ParseCache(path).load(seeds)
    assert saved is not None and len(saved.relatives) == count

"""The persistent store: a restart re-parses and re-renders nothing unchanged, answers as
before it (last good versions included), sees what changed while it was down, and never
trusts a store written for another schema, another seed directory or other code. A
reload that fails or is killed mid-way leaves the previous generation whole."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import (
    REPO,
    Site,
    article_fields,
    bump_mtime,
    make_site,
    wait_for,
    write_config,
    write_seed,
)
from consumers import read_feed
from lxml import etree

import feedservice.runtime.loader as loader_module
import feedservice.runtime.parsing as parsing
import feedservice.runtime.processes as processes
from feedservice.http.app import create_app
from feedservice.ingest.article import parse_seed
from feedservice.ingest.record import from_record_text
from feedservice.render import documents
from feedservice.render.page import FeedPage
from feedservice.runtime.loader import Loader
from feedservice.runtime.metrics import instrument
from feedservice.store import db
from feedservice.store.db import Store

CORPUS = 12  # articles, plus one bad file


def corpus(directory: Path, count: int = CORPUS, first: int = 0) -> Path:
    for n in range(first, first + count):
        write_seed(directory, f"{n:03d}.md", **article_fields(n, topics=["AI", f"T{n % 3}"]))
    (directory / "bad.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    return directory


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every seed file parsed in this process, by relative path."""
    parsed: list[str] = []
    original = parsing.parse_file

    def counted(root: str, path: str, *site: Any) -> parsing.ParseResult:
        parsed.append(path)
        return original(root, path, *site)

    monkeypatch.setattr(parsing, "parse_file", counted)
    return parsed


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Documents rendered in this process, by feed key."""
    counts: Counter[str] = Counter()

    def counted(render: Callable[[FeedPage], bytes]) -> Callable[[FeedPage], bytes]:
        def wrapper(page: FeedPage) -> bytes:
            counts[f"{page.kind}/{page.name}"] += 1
            return render(page)

        return wrapper

    for fmt, render in list(documents.RENDERERS.items()):
        monkeypatch.setitem(documents.RENDERERS, fmt, counted(render))
    return counts


def restart(seeds: Path, config: Path | None, state: Path, old: Site | None = None) -> Site:
    """A new loader and a new worker on the same state directory (the old loader, if
    given, is stopped first); no reload yet: the test runs it."""
    if old is not None:
        old.store.close()
    store = Store.in_dir(state)
    loader = Loader(store, seeds, config, environ={})
    reader = Store.in_dir(state, writable=False)
    return Site(loader, store, instrument(create_app(reader), reader).test_client())


def served(site: Site) -> dict[str, tuple[int, str, bytes]]:
    """(status, ETag, body) of every page-1 document, index and OPML list the store holds."""
    keys = sorted(site.store.fingerprints())
    assert keys
    found = {}
    for key in keys:
        response = site.get(key)
        found[key] = (response.status_code, response.headers.get("ETag", ""), response.data)
    return found


def titles(site: Site, path: str = "/feeds/all.atom") -> dict[str, str]:
    """Item title by link, as a feed reader sees them."""
    response = site.get(path)
    assert response.status_code == 200
    return {item.link: item.title for item in read_feed(response.data, "atom")[1]}


def link(n: int) -> str:
    return f"https://example.com/articles/{n}"


def site_title(site: Site) -> str:
    head = etree.fromstring(site.get("/feeds.opml").data).find("head/title")
    assert head is not None and head.text
    return head.text.removesuffix(": All feeds")


def unchanged(reloaded: Any) -> bool:
    """A reload that found nothing to do: none, or one that changed and rendered nothing."""
    return reloaded is None or (
        (reloaded.added, reloaded.changed, reloaded.removed, reloaded.changed_feeds)
        == (0, 0, 0, ())
        and reloaded.rendered_feeds == 0
    )


def stored_rows(store: Store) -> list[tuple[Any, ...]]:
    return (
        store.reader()
        .execute(
            "SELECT path, stamp, problems, carried, record, identity, sort, topics, quality,"
            " draft, revision, updated FROM files ORDER BY path"
        )
        .fetchall()
    )


# --- a restart ------------------------------------------------------------------------


def test_a_restart_parses_nothing_and_renders_nothing_unchanged(
    seeds: Path, config_file: Path, tmp_path: Path, parses: list[str], renders: Counter[str]
) -> None:
    corpus(seeds)
    state = tmp_path / "state"
    first = make_site(seeds, config_file, state)
    assert len(parses) == CORPUS + 1 and renders
    before, problems = served(first), first.loader.problems()
    generation = first.store.generation()
    parses.clear()
    renders.clear()
    again = restart(seeds, config_file, state, first)
    assert unchanged(again.reload())
    assert parses == [] and renders == {}
    assert served(again) == before  # the same bytes and ETags
    assert again.loader.problems() == problems
    assert any(p.source == "bad.md" and p.field == "(yaml)" for p in again.loader.problems())
    now = again.store.generation()
    assert now is not None and generation is not None
    counts = ("articles", "feeds", "topics", "files", "errors", "warnings", "first_errors")
    assert [now.summary[key] for key in counts] == [generation.summary[key] for key in counts]
    # ... and equals what a load into a fresh store gives.
    fresh = make_site(seeds, config_file, tmp_path / "fresh")
    assert served(fresh) == before
    assert stored_rows(fresh.store) == stored_rows(again.store)


def test_each_file_is_invalidated_by_size_mtime_ctime_or_inode(
    seeds: Path, config_file: Path, tmp_path: Path, parses: list[str]
) -> None:
    corpus(seeds)
    state = tmp_path / "state"
    first = make_site(seeds, config_file, state)
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
    # Same size, inode and mtime (put back, as `touch -r` does): only the ctime moved.
    third = seeds / "004.md"
    info = third.stat()
    third.write_text(third.read_text().replace("number 4", "number 9"), encoding="utf-8")
    os.utime(third, ns=(info.st_atime_ns, info.st_mtime_ns))
    after = third.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        info.st_size,
        info.st_mtime_ns,
        info.st_ino,
    )
    # A different size.
    write_seed(seeds, "003.md", **article_fields(3, title="A much longer title than before"))
    parses.clear()
    again = restart(seeds, config_file, state, first)
    reloaded = again.reload()
    assert reloaded is not None and (reloaded.added, reloaded.changed) == (0, 4)
    assert sorted(parses) == ["001.md", "002.md", "003.md", "004.md"]
    shown = titles(again)
    assert shown[link(1)] == "Article number 7"
    assert shown[link(2)] == "Article number 8"
    assert shown[link(3)] == "A much longer title than before"
    assert shown[link(4)] == "Article number 9"
    parses.clear()
    assert unchanged(restart(seeds, config_file, state, again).reload()) and parses == []


def test_a_restart_sees_what_changed_while_it_was_down(
    seeds: Path, config_file: Path, tmp_path: Path, parses: list[str]
) -> None:
    corpus(seeds)
    state = tmp_path / "state"
    first = make_site(seeds, config_file, state)
    write_seed(seeds, "new.md", **article_fields(100))
    (seeds / "003.md").unlink()
    bump_mtime(write_seed(seeds, "004.md", **article_fields(4, title="Edited title")))
    (seeds / "005.md").write_text("---\ntitle: [broken\n---\n", encoding="utf-8")
    bump_mtime(seeds / "005.md")
    parses.clear()
    again = restart(seeds, config_file, state, first)
    reloaded = again.reload()
    assert reloaded is not None
    assert (reloaded.added, reloaded.changed, reloaded.removed) == (1, 2, 1)
    assert sorted(parses) == ["004.md", "005.md", "new.md"]
    shown = titles(again)
    assert shown[link(100)] == "Article number 100"
    assert shown[link(4)] == "Edited title"
    assert link(3) not in shown
    assert shown[link(5)] == "Article number 5"  # broken while down: its last good version
    # Apart from 005.md's last good version, what a load into a fresh store gives.
    fresh = make_site(seeds, config_file, tmp_path / "fresh")
    assert titles(fresh) == {key: value for key, value in shown.items() if key != link(5)}


def test_a_file_turned_bad_keeps_its_last_good_version_after_a_restart(
    seeds: Path, config_file: Path, tmp_path: Path, parses: list[str]
) -> None:
    corpus(seeds)
    state = tmp_path / "state"
    first = make_site(seeds, config_file, state)
    path = seeds / "004.md"
    path.write_text("---\ntitle: no date or link\n---\n", encoding="utf-8")
    bump_mtime(path)
    assert first.reload() is not None
    assert titles(first)[link(4)] == "Article number 4"
    before = served(first)
    parses.clear()
    again = restart(seeds, config_file, state, first)
    assert unchanged(again.reload()) and parses == []
    assert served(again) == before
    assert titles(again)[link(4)] == "Article number 4"
    carried = [p for p in again.loader.problems() if p.source == "004.md"]
    assert carried and all("last good version" in p.message for p in carried)
    health = again.get("/healthz").get_json()
    assert health["seed_errors"]["count"] == 3  # bad.md, and 004.md: no date, no link
    first_errors = health["seed_errors"]["first"]
    assert any("004.md" in line and "last good version" in line for line in first_errors)
    # Fixed: served as it now is; deleted: gone, and so are its problems.
    bump_mtime(write_seed(seeds, "004.md", **article_fields(4, title="Fixed")))
    assert again.reload() is not None and titles(again)[link(4)] == "Fixed"
    path.unlink()
    assert again.reload() is not None and link(4) not in titles(again)
    assert not [p for p in again.loader.problems() if p.source == "004.md"]


def test_a_config_change_while_down_is_served_after_a_restart(
    seeds: Path, config_file: Path, tmp_path: Path, parses: list[str]
) -> None:
    corpus(seeds)
    state = tmp_path / "state"
    first = make_site(seeds, config_file, state)
    assert site_title(first) == "Test feeds"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    write_config(config_file, **{**config, "title": "Renamed while down"})
    parses.clear()
    again = restart(seeds, config_file, state, first)
    again.reload()
    assert parses == []  # the seeds did not change
    assert site_title(again) == "Renamed while down"
    topic = read_feed(again.get("/topics/ai.rss").data, "rss")[0]
    assert topic["title"] == "AI — Renamed while down"


def test_a_deleted_state_directory_only_costs_a_parse(
    seeds: Path, config_file: Path, tmp_path: Path, parses: list[str]
) -> None:
    corpus(seeds)
    state = tmp_path / "state"
    first = make_site(seeds, config_file, state)
    before = served(first)
    first.store.close()
    shutil.rmtree(state)
    parses.clear()
    again = restart(seeds, config_file, state)
    assert again.reload() is not None
    assert len(parses) == CORPUS + 1
    assert served(again) == before


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_state_database_only_costs_a_parse(
    seeds: Path, config_file: Path, tmp_path: Path, parses: list[str], damage: str
) -> None:
    """The store holds nothing the seeds and config cannot give again: a damaged
    database is started over, never a reason to stop serving."""
    corpus(seeds)
    before = served(make_site(seeds, config_file, tmp_path / "reference"))
    state = tmp_path / "state"
    store = Store.in_dir(state)  # a loader alone: no reader holds the files open
    Loader(store, seeds, config_file, environ={}).reload()
    store.close()
    database = state / db.DATABASE_NAME
    for leftover in state.glob(db.DATABASE_NAME + "-*"):  # the WAL and its index, if left
        leftover.unlink()
    data = database.read_bytes()
    database.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"garbage" * 1000, "empty": b""}[damage]
    )
    parses.clear()
    again = restart(seeds, config_file, state)
    again.reload()
    assert len(parses) == CORPUS + 1
    assert served(again) == before


# --- what is not trusted ---------------------------------------------------------------


def test_a_store_of_another_seed_directory_is_not_trusted(
    seeds: Path, config_file: Path, tmp_path: Path, parses: list[str]
) -> None:
    corpus(seeds)
    other = corpus(tmp_path / "other", first=100)
    state = tmp_path / "state"
    first = make_site(seeds, config_file, state)
    parses.clear()
    elsewhere = restart(other, config_file, state, first)
    assert elsewhere.reload() is not None
    assert len(parses) == CORPUS + 1
    assert set(titles(elsewhere)) == {link(n) for n in range(100, 100 + CORPUS)}
    for key, (status, _, _) in served(elsewhere).items():
        assert status == 200, key
        if key.endswith(".atom"):
            assert set(titles(elsewhere, key)) <= {link(n) for n in range(100, 100 + CORPUS)}
    assert elsewhere.get("/topics/t0.rss").status_code == 200
    assert len(read_feed(elsewhere.get("/topics/ai.rss").data, "rss")[1]) == CORPUS
    parses.clear()
    back = restart(seeds, config_file, state, elsewhere)
    assert back.reload() is not None and len(parses) == CORPUS + 1
    assert set(titles(back)) == {link(n) for n in range(CORPUS)}


def test_a_store_of_another_schema_version_is_not_trusted(
    seeds: Path,
    config_file: Path,
    tmp_path: Path,
    parses: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus(seeds)
    state = tmp_path / "state"
    first = make_site(seeds, config_file, state)
    before = served(first)
    monkeypatch.setattr(db, "SCHEMA_VERSION", "a later schema")
    parses.clear()
    again = restart(seeds, config_file, state, first)
    assert again.store.generation() is None  # emptied: nothing of the old one is served
    assert again.get("/topics/ai.rss").status_code == 503
    assert again.reload() is not None
    assert len(parses) == CORPUS + 1
    assert served(again) == before


def test_new_code_re_renders_every_document(
    seeds: Path,
    config_file: Path,
    tmp_path: Path,
    renders: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Documents rendered by other code are never served: after an upgrade every page is
    rendered again (the same bytes here, since the renderers did not really change)."""
    corpus(seeds)
    state = tmp_path / "state"
    first = make_site(seeds, config_file, state)
    before = served(first)
    feeds = set(renders)
    renders.clear()
    versions = loader_module._code_versions()
    next_release = {**versions, "code": "the next release"}
    monkeypatch.setattr(loader_module, "_code_versions", lambda: next_release)
    again = restart(seeds, config_file, state, first)
    again.reload()
    assert set(renders) == feeds
    assert served(again) == before


def test_new_parsing_code_re_parses_every_file(
    seeds: Path,
    config_file: Path,
    tmp_path: Path,
    parses: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An article's record is what the parser made of its file: records made by other
    code are not trusted, or a parsing fix would never reach unchanged files."""
    corpus(seeds)
    state = tmp_path / "state"
    first = make_site(seeds, config_file, state)
    before = served(first)
    next_parser = {"parse": "the next parser", "code": "the next release"}
    monkeypatch.setattr(loader_module, "_code_versions", lambda: next_parser)
    parses.clear()
    again = restart(seeds, config_file, state, first)
    again.reload()
    assert len(parses) == CORPUS + 1
    assert served(again) == before  # same content: same updated times, same bytes


# --- a failed or killed reload ---------------------------------------------------------


def test_a_reload_that_fails_leaves_the_previous_generation_whole(
    seeds: Path, config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus(seeds)
    state = tmp_path / "state"
    site = make_site(seeds, config_file, state)
    before, generation = served(site), site.store.generation()
    bump_mtime(write_seed(seeds, "001.md", **article_fields(1, title="Edited")))
    write_seed(seeds, "new.md", **article_fields(100))
    atom = documents.RENDERERS["atom"]

    def failing(page: FeedPage) -> bytes:
        raise RuntimeError("a renderer that fails half-way through a reload")

    monkeypatch.setitem(documents.RENDERERS, "atom", failing)
    with pytest.raises(RuntimeError):
        site.reload()
    assert site.store.generation() == generation
    assert served(site) == before  # not one file, member or document of the failed reload
    assert "new.md" not in {row.path for row in site.store.files()}
    monkeypatch.setitem(documents.RENDERERS, "atom", atom)
    reloaded = site.reload()  # the next reload does it all again
    assert reloaded is not None and (reloaded.added, reloaded.changed) == (1, 1)
    shown = titles(site)
    assert shown[link(1)] == "Edited" and link(100) in shown


KILLED_RELOAD = """
import os, signal, sys
from pathlib import Path
from feedservice.render import documents
from feedservice.runtime.loader import Loader
from feedservice.store.db import Store

def killed(page):
    os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction: files written, nothing committed

for fmt in list(documents.RENDERERS):
    documents.RENDERERS[fmt] = killed
state, seeds, config = map(Path, sys.argv[1:])
Loader(Store.in_dir(state), seeds, config, environ={}).reload()
"""


def test_a_killed_reload_leaves_the_previous_generation_whole(
    seeds: Path, config_file: Path, tmp_path: Path, parses: list[str]
) -> None:
    corpus(seeds)
    state = tmp_path / "state"
    site = make_site(seeds, config_file, state)
    before, generation = served(site), site.store.generation()
    site.store.close()
    bump_mtime(write_seed(seeds, "001.md", **article_fields(1, title="Edited")))
    command = [sys.executable, "-c", KILLED_RELOAD, str(state), str(seeds), str(config_file)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    parses.clear()
    again = restart(seeds, config_file, state)
    assert again.store.generation() == generation
    assert served(again) == before
    reloaded = again.reload()  # the edit is still news: the killed reload never committed
    assert reloaded is not None and reloaded.changed == 1 and parses == ["001.md"]
    assert titles(again)[link(1)] == "Edited"


# --- what the store keeps of each file ---------------------------------------------------


def test_stored_articles_round_trip_every_field(seeds: Path, tmp_path: Path) -> None:
    path = write_seed(
        seeds,
        "full.md",
        **article_fields(
            1,
            publishedDateTime="1969-07-20T20:17:40.123456-05:30",  # before 1970, offset, µs
            originalUrl="https://example.com/original",
            ampWebUrl="https://example.com/amp",
            heat=7,
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
    article = parse_seed(path.read_bytes(), "full.md").article
    assert article.related and article.provider and article.provider.image and article.images
    state = tmp_path / "state"
    make_site(seeds, None, state).store.close()
    store = Store.in_dir(state, writable=False)  # as a worker reads it, after a restart
    record = store.record("full.md")
    assert record is not None
    loaded = from_record_text(record, "full.md")
    assert loaded == article
    assert loaded.published.isoformat() == "1969-07-20T20:17:40.123456-05:30"
    assert loaded.related[0].published.utcoffset() == article.related[0].published.utcoffset()
    assert "SECRET" not in record


def test_a_parallel_parse_equals_a_serial_one(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus(seeds, 40)
    monkeypatch.setattr(loader_module, "POOL_THRESHOLD", 10)
    monkeypatch.setattr(parsing, "CHUNK", 5)  # several chunks, as with many files
    started: list[bool] = []
    init = processes.Pool.__init__

    def counted(self: processes.Pool, workers: int) -> None:
        init(self, workers)
        started.append(self.executor is not None)

    monkeypatch.setattr(processes.Pool, "__init__", counted)
    parallel = Store.in_dir(tmp_path / "parallel")
    loaders = [Loader(parallel, seeds, None, environ={}, workers=2)]
    loaders[0].reload()
    assert started == [True]  # 41 files: parsed (and page 1 rendered) by two processes
    serial = Store.in_dir(tmp_path / "serial")
    loaders.append(Loader(serial, seeds, None, environ={}, workers=1))
    loaders[1].reload()
    assert started == [True, False]
    for loader in loaders:  # what the reloads' render budget left
        while loader.render_deferred(60):
            pass
    rows = stored_rows(parallel)
    assert len(rows) == 41 and rows == stored_rows(serial)
    documents = "SELECT key, etag FROM documents ORDER BY key"
    assert list(parallel.reader().execute(documents)) == list(serial.reader().execute(documents))


# --- a real server ----------------------------------------------------------------------


def test_a_server_restart_parses_and_renders_nothing(
    seeds: Path, config_file: Path, tmp_path: Path, live_server_factory: Any
) -> None:
    """Stopped right after its first load, a restarted server answers as before without
    a reload that parsed or rendered anything."""
    corpus(seeds, 30)
    state = ("--state-dir", str(tmp_path / "state"))
    first = live_server_factory(seeds, config_file, extra_args=state, wait_articles=30)
    before = {path: first.get(path) for path in ("/topics/ai.rss", "/feeds/all.json", "/")}
    generation = first.health()["generation"]
    first.stop()
    assert first.process.returncode == 0
    again = live_server_factory(seeds, config_file, extra_args=state, port=first.port)
    wait_for(lambda: "serving " in again.log(), "the restarted loader's first reload")
    lines = [line for line in again.log().splitlines() if "reload:" in line]
    assert all("+0 ~0 -0 files" in line and "0 feeds re-rendered" in line for line in lines), lines
    assert again.health()["generation"] in (generation, generation + 1)
    for path, (status, headers, body) in before.items():
        now = again.get(path)
        assert (now[0], now[1]["ETag"], now[2]) == (status, headers["ETag"], body), path

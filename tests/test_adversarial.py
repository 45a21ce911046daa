"""The adversarial corpus (tests/adversarial.py) against the real service.

For every case: the exact outcome (through `feedservice check --format json` and the
real loader's store), every good article still served, and every feed still readable
by feedparser, lxml and the JSON Feed checks. Then the whole corpus is dropped into a
live server. Neither the word `secured` nor any secret value may appear in any
response, log line, error message or the store on disk.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from adversarial import (
    CASE_NAMES,
    CASES,
    FORGED,
    OUTSIDE_TITLE,
    SECRET_MARK,
    Case,
    Good,
    case_named,
    front,
    good_articles,
    seed_bytes,
    write_corpus,
    write_good,
)
from conftest import REPO, Site, make_site, wait_for, write_config
from consumers import read_feed

from feedservice.ingest.article import Article, parse_seed
from feedservice.ingest.clean import slugify, utc_micros
from feedservice.ingest.files import read_seed
from feedservice.runtime.loader import Loader
from feedservice.store.db import Store

FORMATS = ("rss", "atom", "json")
pytestmark = pytest.mark.timeout(180)


def assert_no_secrets(text: str | bytes, where: str) -> None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    assert "secured" not in text, f"'secured' leaked into {where}"
    assert SECRET_MARK not in text, f"a secured value leaked into {where}"


@dataclass
class Served:
    """Everything the Flask app serves for one seed directory, read by real consumers."""

    responses: dict[str, tuple[int, dict[str, str], bytes]]
    items: dict[str, list[Any]]  # feed path with format → parsed items of every page
    logs: list[str]


def fetch_everything(client: Any, catalog: Any) -> Served:
    responses: dict[str, tuple[int, dict[str, str], bytes]] = {}
    items: dict[str, list[Any]] = {}

    def get(path: str) -> bytes:
        response = client.get(path)
        responses[path] = (response.status_code, dict(response.headers), response.get_data())
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data()

    for feed in catalog.feeds.values():
        for fmt in FORMATS:
            collected = []
            for number in range(1, feed.page_count + 1):
                query = f"?page={number}" if number > 1 else ""
                body = get(f"/{feed.key}.{fmt}{query}")
                collected.extend(read_feed(body, fmt)[1])
            items[f"/{feed.key}.{fmt}"] = collected
        get(f"/{feed.key}/")
    for path in ("/", "/feeds.opml", "/topics.opml", "/feeds.opml?format=rss", "/healthz"):
        get(path)
    return Served(responses, items, [])


@dataclass
class Checked:
    root: Path
    config: Path
    cases: list[Case]
    goods: list[Good]
    json: subprocess.CompletedProcess[str]
    text: subprocess.CompletedProcess[str] = dataclasses.field(init=False)


@dataclass
class Corpus:
    root: Path
    config: Path
    cases: list[Case]
    goods: list[Good]
    site: Site
    served: Served
    check: dict[str, Any]
    check_text: str
    check_exit: int


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def make_config(path: Path) -> Path:
    return write_config(
        path,
        title="Adversarial",
        base_url="http://feeds.test",
        reload_interval=1,
        future="publish",  # (dates are what is tested: 2999 is served; see test_schedule)
        feeds=[
            {"name": "ml", "title": "ML", "topics": ["Machine Learning"]},
            {"name": "adversarial", "title": "Adversarial", "topics": ["Adversarial"]},
        ],
    )


def run_check(root: Path, config: Path, fmt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "feedservice",
            "check",
            "--seeds",
            str(root),
            "--config",
            str(config),
            "--format",
            fmt,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """The corpus, checked by the real CLI first, in its own process: a crash (libyaml's
    C stack, -11) fails here with its exit status instead of taking the test run down
    with it. Every test that parses the corpus in this process depends on this."""
    base = tmp_path_factory.mktemp("adversarial")
    root = base / "seeds"
    cases, goods = write_corpus(root)
    config = make_config(base / "feeds.yaml")
    found = Checked(root, config, cases, goods, run_check(root, config, "json"))
    found.text = run_check(root, config, "text")
    for run in (found.json, found.text):
        assert run.returncode >= 0, f"check died of signal {-run.returncode}"
    return found


@pytest.fixture(scope="module")
def corpus(checked: Checked) -> Iterator[Corpus]:
    root, config, cases, goods = checked.root, checked.config, checked.cases, checked.goods
    for run in (checked.json, checked.text):  # 1 = invalid files found; a traceback also exits 1
        assert run.returncode == 1 and "Traceback" not in run.stderr, (
            run.returncode,
            run.stderr[-2000:],
        )
    base = root.parent
    handler = _Collect()
    service_log = logging.getLogger("feedservice")  # (whatever an earlier test configured)
    service_log.addHandler(handler)
    previous_level = service_log.level
    service_log.setLevel(logging.DEBUG)
    try:
        site = make_site(root, config, base / "state")
        assert site.loader.catalog is not None
        served = fetch_everything(site.client, site.loader.catalog)
    finally:
        service_log.removeHandler(handler)
        service_log.setLevel(previous_level)
    served.logs = handler.lines
    yield Corpus(
        root,
        config,
        cases,
        goods,
        site,
        served,
        json.loads(checked.json.stdout),
        checked.text.stdout + checked.text.stderr,
        checked.json.returncode,
    )
    site.store.close()


def stored_article(site: Site, case: Case) -> Article | None:
    """The article the loader keeps for the case's file (read back with the parser), or
    None if the file gives none."""
    row = site.loader.files.get(case.path)
    if row is None or row.identity is None:
        return None
    assert not row.carried  # nothing here ever had a good version
    article = parse_seed(read_seed(site.loader.seeds, case.path)[0], case.shown).article
    assert article.identity == row.identity and article.is_draft == row.draft
    return article


def findings_for(corpus: Corpus, case: Case) -> list[dict[str, Any]]:
    path = str(corpus.root / case.shown)
    return [finding for finding in corpus.check["findings"] if finding["path"] == path]


def served_links(served: Served, feed_path: str) -> dict[str, list[str]]:
    """Format → links of every item of the feed at `feed_path` (all pages)."""
    return {fmt: [item.link for item in served.items[f"{feed_path}.{fmt}"]] for fmt in FORMATS}


def all_served_links(served: Served) -> set[str]:
    return {item.link for feed_items in served.items.values() for item in feed_items}


# --- (a) the exact outcome of every case ---------------------------------------------------


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_outcome(corpus: Corpus, name: str) -> None:
    case = case_named(name)
    outcome = case.outcome
    catalog = corpus.site.loader.catalog
    assert catalog is not None
    found = findings_for(corpus, case)
    errors = [f for f in found if f["level"] == "error"]
    warnings = {f["field"] for f in found if f["level"] == "warning"}
    article = stored_article(corpus.site, case)
    links = all_served_links(corpus.served)
    problems = corpus.site.loader.problems()

    if outcome.status == "rejected":
        assert article is None, f"{name} must not produce an article"
        assert any(
            f["field"] == outcome.field and outcome.message in f["message"] for f in errors
        ), f"{name}: expected {outcome.field}: {outcome.message}; {found}"
        assert case.link not in links
        assert any(
            p.source == case.shown and p.field == outcome.field and p.fatal for p in problems
        )
    elif outcome.status == "accepted":
        assert not errors, errors
        assert warnings == set(outcome.warnings), found
        assert article is not None and not article.is_draft
        for key, value in outcome.values.items():
            assert getattr(article, key) == value, (key, getattr(article, key), value)
        assert any(
            entry.identity == article.identity and entry.sort == -utc_micros(article.published)
            for entry in catalog.articles
        )
        everything = served_links(corpus.served, "/feeds/all")
        for fmt in FORMATS:
            assert everything[fmt].count(article.link) == 1, (fmt, article.link)
        for topic in article.topics:
            topic_links = served_links(corpus.served, f"/topics/{slugify(topic)}")
            for fmt in FORMATS:
                assert article.link in topic_links[fmt], (topic, fmt)
        json_titles = {item.link: item.title for item in corpus.served.items["/feeds/all.json"]}
        assert json_titles[article.link] == article.title
    elif outcome.status == "draft":
        assert not found
        assert article is not None and article.is_draft
        assert case.link not in links
        assert case.shown in catalog.drafts or case.path in catalog.drafts
    else:
        assert outcome.status == "ignored"
        assert not found, found
        assert article is None and case.path not in corpus.site.loader.files


def test_every_case_is_reported_once_per_file(corpus: Corpus) -> None:
    """Every error names a file of the corpus, and the summary counts match."""
    paths = {str(corpus.root / case.shown) for case in corpus.cases}
    for finding in corpus.check["findings"]:
        assert finding["path"] in paths, finding
        assert finding["field"], finding
    rejected = sum(1 for case in corpus.cases if case.outcome.status == "rejected")
    assert corpus.check["errors"] == rejected
    served = sum(1 for case in corpus.cases if case.outcome.status == "accepted")
    assert corpus.check["articles"] == served + len(corpus.goods)
    drafts = sum(1 for case in corpus.cases if case.outcome.status == "draft")
    assert corpus.check["drafts"] == drafts
    health = json.loads(corpus.served.responses["/healthz"][2])
    assert health["articles"] == corpus.check["articles"]
    assert health["seed_errors"]["count"] == rejected


def test_file_names_cannot_forge_output_lines(corpus: Corpus) -> None:
    health = corpus.served.responses["/healthz"][2].decode()
    for output in (corpus.check_text, "\n".join(corpus.served.logs), health):
        for line in output.splitlines():
            assert not line.startswith(FORGED), line
    assert FORGED in corpus.check_text and FORGED in "\n".join(corpus.served.logs)


def test_text_check_names_file_and_field(corpus: Corpus) -> None:
    for case in corpus.cases:
        if case.outcome.status == "rejected":
            assert f"{corpus.root / case.shown}: {case.outcome.field}:" in corpus.check_text


def test_yaml_tags_ran_no_code() -> None:
    assert not Path("/tmp/feedservice-pwned").exists()


def test_symlink_target_outside_root_never_read(corpus: Corpus) -> None:
    for _status, _, body in corpus.served.responses.values():
        assert OUTSIDE_TITLE.encode() not in body


# --- (b) and (c): the good articles and every feed ------------------------------------------


def test_every_good_article_served_in_every_feed(corpus: Corpus) -> None:
    assert_goods_served(corpus.served, corpus.goods)


def assert_goods_served(served: Served, goods: list[Good]) -> None:
    everything = served_links(served, "/feeds/all")
    for good in goods:
        for fmt in FORMATS:
            assert good.link in everything[fmt], (good.path, fmt)
        for topic in good.topics:
            links = served_links(served, f"/topics/{slugify(topic)}")
            for fmt in FORMATS:
                assert good.link in links[fmt], (good.path, topic, fmt)
    ml = served_links(served, "/feeds/ml")
    for good in goods:
        if "Machine Learning" in good.topics:
            assert all(good.link in ml[fmt] for fmt in FORMATS)


def test_feeds_hold_only_published_articles_newest_first(corpus: Corpus) -> None:
    catalog = corpus.site.loader.catalog
    assert catalog is not None
    items = corpus.served.items["/feeds/all.json"]
    assert [item.id for item in items] == [entry.identity for entry in catalog.articles]
    dates = [datetime.fromisoformat(item.published) for item in items]
    assert dates == sorted(dates, reverse=True)
    served = served_links(corpus.served, "/feeds/all")
    for fmt in FORMATS:
        assert served[fmt] == [item.link for item in items], fmt
    published = {good.link for good in corpus.goods} | {
        case.link for case in corpus.cases if case.outcome.status == "accepted"
    }
    assert len(items) == len(published)
    same_slug = served_links(corpus.served, "/topics/same-slug")
    assert {case_named(n).link for n in ("same-slug-a", "same-slug-b", "same-slug-c")} <= set(
        same_slug["json"]
    )


def test_secured_never_in_responses_logs_or_errors(corpus: Corpus) -> None:
    for path, (_, headers, body) in corpus.served.responses.items():
        assert_no_secrets(body, path)
        assert_no_secrets(json.dumps(headers), f"headers of {path}")
    assert_no_secrets("\n".join(corpus.served.logs), "the service log")
    assert_no_secrets(json.dumps(corpus.check, ensure_ascii=False), "check --format json")
    assert_no_secrets(corpus.check_text, "check output")
    assert_no_state_secrets(Path(str(corpus.site.store.path)).parent)


def assert_no_state_secrets(state_dir: Path) -> None:
    """The store on disk (database, WAL) never holds a secret either."""
    files = [path for path in state_dir.rglob("*") if path.is_file()]
    assert any(path.name.startswith("feedservice.sqlite3") for path in files), files
    for path in files:
        assert_no_secrets(path.read_bytes().decode("latin-1"), str(path))


GROUPS = sorted({case.group for case in CASES})


@pytest.mark.parametrize("group", GROUPS)
def test_group_alone_breaks_nothing(checked: Checked, tmp_path: Path, group: str) -> None:
    """One group of cases next to only the good articles: exactly the good articles and
    the group's accepted cases are served, and every feed reads. (Needs `checked` so the
    crash check in its own process has passed before parsing anything in this one.)"""
    root = tmp_path / "seeds"
    cases = [case for case in CASES if case.group == group]
    _, goods = write_corpus(root, cases)
    site = make_site(root, make_config(tmp_path / "feeds.yaml"), tmp_path / "state")
    catalog = site.loader.catalog
    assert catalog is not None
    served = fetch_everything(site.client, catalog)
    assert_goods_served(served, goods)
    accepted = [case for case in cases if case.outcome.status == "accepted"]
    expected = {g.link for g in goods} | {
        stored_article(site, case).link  # type: ignore[union-attr]
        for case in accepted
    }
    assert all_served_links(served) == expected
    assert len(catalog.articles) == len(goods) + len(accepted)
    for path, (_, _, body) in served.responses.items():
        assert_no_secrets(body, path)
    site.store.close()


# --- the cases that need timing -------------------------------------------------------------


def loader_for(root: Path) -> Loader:
    """The real loader over `root`, writing a store in memory (as `check` does)."""
    return Loader(Store.memory(), root, None, environ={})


def links_of(loader: Loader) -> set[str]:
    """The identities (canonical links) of every published article."""
    assert loader.catalog is not None
    return {entry.identity for entry in loader.catalog.articles}


def problems_of(loader: Loader, source: str) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in loader.problems() if p.source == source]


def test_file_vanishing_between_listing_and_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import feedservice.runtime.loader as loader_module

    root = tmp_path / "seeds"
    goods = write_good(root)
    doomed = root / "doomed.md"
    doomed.write_bytes(seed_bytes({**goods[0].fields, "webUrl": "https://x.example/doomed"}))
    real_scan = loader_module.scan

    def scan_then_delete(directory: Any, *args: Any, **options: Any) -> Any:
        listed = real_scan(directory, *args, **options)
        doomed.unlink(missing_ok=True)  # gone after listing, before reading
        return listed

    monkeypatch.setattr(loader_module, "scan", scan_then_delete)
    loader = loader_for(root)
    loader.reload()
    assert problems_of(loader, "doomed.md") == [("(file)", "vanished while being read")]
    assert links_of(loader) == {g.link for g in goods}
    loader.reload()  # the next reload forgets it entirely
    assert problems_of(loader, "doomed.md") == []
    assert "doomed.md" not in loader.files


def test_file_caught_half_written_keeps_last_good_version(
    tmp_path: Path, site_factory: Any
) -> None:
    root = tmp_path / "seeds"
    goods = write_good(root)
    path = root / goods[0].path
    site = site_factory(root, make_config(tmp_path / "feeds.yaml"))

    def served_title() -> str:
        items = site.get("/feeds/all.json").get_json()["items"]
        return next(item["title"] for item in items if item["url"] == goods[0].link)

    assert served_title() == goods[0].title
    full = seed_bytes({**goods[0].fields, "title": "Edited title"})
    with path.open("wb") as handle:  # an editor saving: truncate, then write in pieces
        handle.write(full[: len(full) // 2])
        handle.flush()
        site.reload()
        assert served_title() == goods[0].title
        problems = [p for p in site.loader.problems() if p.source == goods[0].path]
        assert problems and all("serving the last good version" in p.message for p in problems)
        handle.write(full[len(full) // 2 :])
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000_000))
    site.reload()
    assert served_title() == "Edited title"
    assert not [p for p in site.loader.problems() if p.source == goods[0].path]
    assert len(site.get("/feeds/all.json").get_json()["items"]) == len(goods)


def test_unreadable_file_and_directory(tmp_path: Path) -> None:
    """chmod 000 does not stop root, so as root the check runs in a child that has dropped
    to `nobody`: the file and directory are then really unreadable, not simulated."""
    root = Path(tempfile.mkdtemp(prefix="feedservice-unreadable-"))
    seeds = root / "seeds"
    try:
        goods = write_good(seeds)
        locked = seeds / "locked.md"
        locked.write_bytes(seed_bytes({**goods[0].fields, "webUrl": "https://x.example/locked"}))
        hidden = seeds / "locked-dir" / "inside.md"
        hidden.parent.mkdir()
        hidden.write_bytes(seed_bytes({**goods[1].fields, "webUrl": "https://x.example/in"}))
        for directory in (root, seeds, seeds / "good"):
            directory.chmod(0o755)
        locked.chmod(0)
        hidden.parent.chmod(0)
        result = _reload_as_nobody(seeds)
    finally:
        hidden.parent.chmod(0o755)
        shutil.rmtree(root)
    assert sorted(result["problems"]) == [
        [
            "locked-dir",
            "(directory)",
            "cannot be listed (Permission denied); its files are left out",
        ],
        ["locked.md", "(file)", "cannot open: Permission denied"],
    ]
    assert sorted(result["links"]) == sorted(g.link for g in goods)


def test_directory_tree_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    """1,100 nested directories (a path still under PATH_MAX) once blew Python's
    recursion limit inside the scan, failing every reload."""
    root = tmp_path / "seeds"
    goods = write_good(root)
    fd = os.open(root, os.O_RDONLY)
    for _ in range(1100):  # one level at a time, relative to the last (no long paths)
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    file = os.open("x.md", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(file, seed_bytes(front("too-deep")))
    os.close(file)
    os.close(fd)
    try:
        loader = loader_for(root)
        loader.reload()
    finally:  # GNU rm walks deep trees iteratively; shutil.rmtree would recurse
        subprocess.run(["rm", "-rf", str(root / "d")], check=True)
    assert links_of(loader) == {g.link for g in goods}
    assert [p.field for p in loader.problems()] == ["(directory)"]


def test_vanished_seed_directory_is_not_an_empty_one(
    tmp_path: Path, site_factory: Any, live_server_factory: Any
) -> None:
    """If the whole seed directory disappears (a deploy swapping directories, a lost
    mount), the service keeps serving what it had instead of emptying every feed."""
    root = tmp_path / "seeds"
    goods = write_good(root)
    config = make_config(tmp_path / "feeds.yaml")
    site = site_factory(root, config)
    root.rename(tmp_path / "elsewhere")
    assert site.reload() is not None  # a generation that says so, with the articles kept
    health = site.get("/healthz").get_json()
    assert health["status"] == "degraded" and "cannot be listed" in health["seeds_error"]
    assert health["articles"] == len(goods)
    assert links_of(site.loader) == {g.link for g in goods}
    (tmp_path / "elsewhere").rename(root)
    site.reload()
    assert site.get("/healthz").get_json()["status"] == "ok"

    server = live_server_factory(root, config, wait_articles=len(goods))
    try:
        root.rename(tmp_path / "elsewhere")
        wait_for(lambda: server.health()["status"] == "degraded", "the missing directory")
        health = server.health()
        status, _, body = server.get("/feeds/all.json")
    finally:
        (tmp_path / "elsewhere").rename(root)
        server.stop()
    assert health["articles"] == len(goods)
    assert status == 200
    assert {item.link for item in read_feed(body, "json")[1]} == {g.link for g in goods}
    log = server.log()
    assert "cannot be listed" in log and "Traceback" not in log


def _reload_as_nobody(root: Path) -> dict[str, Any]:
    def reload() -> dict[str, Any]:
        loader = loader_for(root)
        loader.reload()
        return {
            "problems": [[p.source, p.field, p.message] for p in loader.problems()],
            "links": sorted(links_of(loader)),
        }

    if os.geteuid() != 0:
        return reload()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        status = 0
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            assert os.geteuid() == 65534
            payload = json.dumps(reload()).encode()
            os.write(writer, payload)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(writer)
    chunks = []
    while chunk := os.read(reader, 65536):
        chunks.append(chunk)
    os.close(reader)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(b"".join(chunks))


# --- the corpus dropped into a live server ---------------------------------------------------


def test_corpus_dropped_into_live_server(
    corpus: Corpus, tmp_path: Path, live_server_factory: Any
) -> None:
    root = tmp_path / "seeds"
    goods = write_good(root, good_articles())
    server = live_server_factory(root, corpus.config, workers=2, wait_articles=len(goods))
    catalog = corpus.site.loader.catalog
    assert catalog is not None
    try:
        write_corpus(root, corpus.cases)  # while it runs: the next reload reads it all
        expected = len(catalog.articles)
        wait_for(
            lambda: server.health()["articles"] == expected, "the server to serve the corpus", 60
        )
        statuses: list[int] = []
        served: dict[str, list[str]] = {}
        bodies = []
        for feed in catalog.feeds.values():
            for fmt in FORMATS:
                links: list[str] = []
                for number in range(1, feed.page_count + 1):
                    query = f"?page={number}" if number > 1 else ""
                    status, _headers, body = server.get(f"/{feed.key}.{fmt}{query}")
                    statuses.append(status)
                    assert status == 200, (feed.key, fmt, status)
                    links.extend(item.link for item in read_feed(body, fmt)[1])
                    bodies.append(body)
                expected_links = [item.link for item in corpus.served.items[f"/{feed.key}.{fmt}"]]
                assert links == expected_links, (feed.key, fmt)
                served[f"/{feed.key}.{fmt}"] = links
        for path in (
            "/",
            "/feeds.opml",
            "/topics.opml",
            "/healthz",
            "/topics/ai/",
            "/topics/..%2f..%2fetc%2fpasswd.rss",
            "/topics/ai.rss?page=x",
        ):
            status, _, body = server.get(path)
            statuses.append(status)
            bodies.append(body)
        assert not [s for s in statuses if s >= 500]
        for good in goods:
            assert all(good.link in served[f"/feeds/all.{fmt}"] for fmt in FORMATS), good.path
        assert server.process.poll() is None, "the server died"
    finally:
        server.stop()
    log = server.log()
    assert "Traceback" not in log
    assert "Segmentation" not in log
    assert_no_secrets(log, "the live server's log")
    for body in bodies:
        assert_no_secrets(body, "a live response")
    assert_no_state_secrets(server.log_path.parent / f"state-{server.port}")

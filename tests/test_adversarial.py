"""The adversarial corpus (tests/adversarial.py) against the real service.

For every case: the exact outcome (through `feedservice check --format json` and the
seed store), every good article still served, and every feed still readable by
feedparser, lxml and the JSON Feed checks. Then the whole corpus is dropped into a
live server. Neither the word `secured` nor any secret value may appear in any
response, log line or error message.
"""

from __future__ import annotations

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
from conftest import REPO, start_server, write_config
from consumers import read_feed

from feedservice.articles import slugify
from feedservice.catalog import SeedStore
from feedservice.seeds import SeedError
from feedservice.service import Service
from feedservice.web import create_app

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
                body = get(f"{feed.path}.{fmt}{query}")
                collected.extend(read_feed(body, fmt)[1])
            items[f"{feed.path}.{fmt}"] = collected
        get(f"{feed.path}/")
    for path in ("/", "/feeds.opml", "/topics.opml", "/feeds.opml?format=rss", "/healthz"):
        get(path)
    return Served(responses, items, [])


@dataclass
class Corpus:
    root: Path
    config: Path
    cases: list[Case]
    goods: list[Good]
    service: Service
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
        env={**os.environ, "FEEDSERVICE_CACHE_DIR": "off"},
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    base = tmp_path_factory.mktemp("adversarial")
    root = base / "seeds"
    cases, goods = write_corpus(root)
    config = make_config(base / "feeds.yaml")
    # The real CLI first, in its own process: a crash (libyaml's C stack, -11) fails
    # here with its exit status instead of taking the test run down with it.
    checked = run_check(root, config, "json")
    text = run_check(root, config, "text")
    for run in (checked, text):  # 1 = invalid files found; a traceback also exits 1
        assert run.returncode == 1 and "Traceback" not in run.stderr, (
            run.returncode,
            run.stderr[-2000:],
        )
    handler = _Collect()
    logging.getLogger().addHandler(handler)
    previous_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEEDSERVICE_CACHE_DIR", "off")
        try:
            service = Service(root, config)
            served = fetch_everything(create_app(service).test_client(), service.snapshot.catalog)
        finally:
            logging.getLogger().removeHandler(handler)
            logging.getLogger().setLevel(previous_level)
    served.logs = handler.lines
    yield Corpus(
        root,
        config,
        cases,
        goods,
        service,
        served,
        json.loads(checked.stdout),
        text.stdout + text.stderr,
        checked.returncode,
    )


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
    catalog = corpus.service.snapshot.catalog
    found = findings_for(corpus, case)
    errors = [f for f in found if f["level"] == "error"]
    warnings = {f["field"] for f in found if f["level"] == "warning"}
    article = next((a for a in corpus.service.store.articles() if a.source == case.shown), None)
    links = all_served_links(corpus.served)

    if outcome.status == "rejected":
        assert article is None, f"{name} must not produce an article"
        assert any(
            f["field"] == outcome.field and outcome.message in f["message"] for f in errors
        ), f"{name}: expected {outcome.field}: {outcome.message}; {found}"
        assert case.link not in links
        assert any(p.source == case.shown and p.field == outcome.field for p in catalog.errors)
    elif outcome.status == "accepted":
        assert not errors, errors
        assert warnings == set(outcome.warnings), found
        assert article is not None and not article.is_draft
        for key, value in outcome.values.items():
            assert getattr(article, key) == value, (key, getattr(article, key), value)
        assert article in catalog.articles
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
    else:
        assert outcome.status == "ignored"
        assert not found, found
        assert article is None


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
    catalog = corpus.service.snapshot.catalog
    expected = [article.link for article in catalog.articles]
    served = served_links(corpus.served, "/feeds/all")
    for fmt in FORMATS:
        assert served[fmt] == expected, fmt
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


GROUPS = sorted({case.group for case in CASES})


@pytest.mark.parametrize("group", GROUPS)
def test_group_alone_breaks_nothing(
    corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: str
) -> None:
    """One group of cases next to only the good articles: exactly the good articles and
    the group's accepted cases are served, and every feed reads. (Needs `corpus` so the
    crash check in its own process has passed before parsing anything in this one.)"""
    monkeypatch.setenv("FEEDSERVICE_CACHE_DIR", "off")
    root = tmp_path / "seeds"
    cases = [case for case in CASES if case.group == group]
    _, goods = write_corpus(root, cases)
    service = Service(root, make_config(tmp_path / "feeds.yaml"))
    served = fetch_everything(create_app(service).test_client(), service.snapshot.catalog)
    assert_goods_served(served, goods)
    expected = {g.link for g in goods} | {
        article.link
        for article in service.store.articles()
        if any(case.shown == article.source and case.outcome.status == "accepted" for case in cases)
    }
    assert {article.link for article in service.snapshot.catalog.articles} == expected
    assert len(expected) == len(goods) + sum(c.outcome.status == "accepted" for c in cases)
    for path, (_, _, body) in served.responses.items():
        assert_no_secrets(body, path)


# --- the cases that need timing -------------------------------------------------------------


def store_for(root: Path, monkeypatch: pytest.MonkeyPatch) -> SeedStore:
    monkeypatch.setenv("FEEDSERVICE_CACHE_DIR", "off")
    return SeedStore(root)


def test_file_vanishing_between_listing_and_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import feedservice.catalog as catalog_module

    root = tmp_path / "seeds"
    goods = write_good(root)
    doomed = root / "doomed.md"
    doomed.write_bytes(seed_bytes({**goods[0].fields, "webUrl": "https://x.example/doomed"}))
    real_scan = catalog_module.scan

    def scan_then_delete(directory: Any, **options: Any) -> Any:
        listed = real_scan(directory, **options)
        doomed.unlink(missing_ok=True)  # gone after listing, before reading
        return listed

    monkeypatch.setattr(catalog_module, "scan", scan_then_delete)
    store = store_for(root, monkeypatch)
    store.refresh()
    problems = [p for p in store.problems() if p.source == "doomed.md"]
    assert [(p.field, p.message) for p in problems] == [("(file)", "vanished while being read")]
    assert {a.link for a in store.articles()} == {g.link for g in goods}
    store.refresh()  # the next reload forgets it entirely
    assert not [p for p in store.problems() if p.source == "doomed.md"]


def test_file_caught_half_written_keeps_last_good_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "seeds"
    goods = write_good(root)
    path = root / goods[0].path
    store = store_for(root, monkeypatch)
    store.refresh()
    full = seed_bytes({**goods[0].fields, "title": "Edited title"})
    with path.open("wb") as handle:  # an editor saving: truncate, then write in pieces
        handle.write(full[: len(full) // 2])
        handle.flush()
        store.refresh()
        kept = next(a for a in store.articles() if a.source == goods[0].path)
        assert kept.title == goods[0].title
        problems = [p for p in store.problems() if p.source == goods[0].path]
        assert problems and all("serving the last good version" in p.message for p in problems)
        handle.write(full[len(full) // 2 :])
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000_000))
    store.refresh()
    assert next(a for a in store.articles() if a.source == goods[0].path).title == "Edited title"
    assert not [p for p in store.problems() if p.source == goods[0].path]
    assert len(store.articles()) == len(goods)


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
        result = _refresh_as_nobody(seeds)
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


def test_directory_tree_deeper_than_the_recursion_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
        store = store_for(root, monkeypatch)
        store.refresh()
    finally:  # GNU rm walks deep trees iteratively; shutil.rmtree would recurse
        subprocess.run(["rm", "-rf", str(root / "d")], check=True)
    assert len(store.articles()) == len(goods)
    assert [p.field for p in store.problems()] == ["(directory)"]


def test_vanished_seed_directory_is_not_an_empty_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the whole seed directory disappears (a deploy swapping directories, a lost
    mount), the service keeps serving what it had instead of emptying every feed."""
    root = tmp_path / "seeds"
    goods = write_good(root)
    store = store_for(root, monkeypatch)
    store.refresh()
    root.rename(tmp_path / "elsewhere")
    with pytest.raises(SeedError) as raised:
        store.refresh()
    assert raised.value.field == "(directory)"
    assert len(store.articles()) == len(goods)

    (tmp_path / "elsewhere").rename(root)
    config = make_config(tmp_path / "feeds.yaml")
    server = start_server(
        root, config, tmp_path, env={"FEEDSERVICE_CACHE_DIR": "off"}, wait_articles=len(goods)
    )
    try:
        root.rename(tmp_path / "elsewhere")
        time.sleep(2.5)  # two reloads with no seed directory at all
        health = server.health()
        status, _, body = server.get("/feeds/all.json")
        (tmp_path / "elsewhere").rename(root)
    finally:
        server.stop()
    assert health["articles"] == len(goods)
    assert status == 200
    assert {item.link for item in read_feed(body, "json")[1]} == {g.link for g in goods}
    log = server.log()
    assert "cannot be listed" in log and "Traceback" not in log


def _refresh_as_nobody(root: Path) -> dict[str, Any]:
    def refresh() -> dict[str, Any]:
        os.environ["FEEDSERVICE_CACHE_DIR"] = "off"
        store = SeedStore(root)
        store.refresh()
        return {
            "problems": [[p.source, p.field, p.message] for p in store.problems()],
            "links": [a.link for a in store.articles()],
        }

    if os.geteuid() != 0:
        return refresh()
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
            payload = json.dumps(refresh()).encode()
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


def test_corpus_dropped_into_live_server(corpus: Corpus, tmp_path: Path) -> None:
    root = tmp_path / "seeds"
    goods = write_good(root, good_articles())
    server = start_server(
        root,
        corpus.config,
        tmp_path,
        workers=2,
        env={"FEEDSERVICE_CACHE_DIR": "off"},
        wait_articles=len(goods),
    )
    try:
        write_corpus(root, corpus.cases)  # while it runs: the next reload reads it all
        expected = len(corpus.service.snapshot.catalog.articles)
        deadline = time.monotonic() + 60
        streak = 0
        while streak < 10:  # both workers must have reloaded
            assert time.monotonic() < deadline, "the server never served the corpus"
            streak = streak + 1 if server.health()["articles"] == expected else 0
            time.sleep(0.05 if streak else 0.3)
        statuses: list[int] = []
        served: dict[str, list[str]] = {}
        catalog = corpus.service.snapshot.catalog
        bodies = []
        for feed in catalog.feeds.values():
            for fmt in FORMATS:
                links: list[str] = []
                for number in range(1, feed.page_count + 1):
                    query = f"?page={number}" if number > 1 else ""
                    status, _headers, body = server.get(f"{feed.path}.{fmt}{query}")
                    statuses.append(status)
                    assert status == 200, (feed.path, fmt, status)
                    links.extend(item.link for item in read_feed(body, fmt)[1])
                    bodies.append(body)
                assert links == [a.link for a in feed.items], (feed.path, fmt)
                served[f"{feed.path}.{fmt}"] = links
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

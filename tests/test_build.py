"""`feedservice build --out DIR`: a deterministic, atomic static export that nginx serves
with the same bytes and the same reader conformance as the live service, and that never
replaces a directory it did not write."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import REPO, LiveServer, Site, article_fields, free_port, write_config, write_seed
from consumers import read_feed
from lxml import etree

from feedservice import settings
from feedservice.runtime.export import MARKER, BuildError, BuildReport, build, nginx_conf

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    seeds = tmp_path / "seeds"
    for n in range(7):
        topics = ["AI", "Machine Learning"] if n % 2 else ["AI"]
        write_seed(seeds, f"{n}.md", **article_fields(n, topics=topics))
    config = write_config(
        tmp_path / "feeds.yaml",
        title="Static",
        base_url="https://feeds.example",
        topic_limit=3,
        feeds=[{"name": "all", "title": "All", "description": "All", "topics": "*", "limit": 3}],
    )
    return seeds, config


def run_build(seeds: Path, config: Path, out: Path, state: Path) -> BuildReport:
    """`build()` as the command calls it, with no environment."""
    options = {"seeds_dir": seeds, "state_dir": state}
    return build(settings.load(config, {}, options, required=True), config, True, options, out)


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every published file's bytes and mtime (not the build's own mark)."""
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != MARKER
    }


def _leftovers(directory: Path) -> list[str]:
    """Temporary or retired directories a build left beside its output."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_the_build_holds_every_url_with_the_live_bytes(
    site: tuple[Path, Path], tmp_path: Path, site_factory: Callable[..., Site]
) -> None:
    seeds, config = site
    out = tmp_path / "out"
    report = run_build(seeds, config, out, tmp_path / "state")
    assert report.out == out and report.articles == 7
    client = site_factory(seeds, config).client  # a live worker over its own store
    expected = {
        "/": "index.html",
        "/topics/ai.rss": "topics/ai.rss",
        "/topics/ai.atom?page=3": "topics/ai/page-3.atom",
        "/topics/ai/?page=2": "topics/ai/page-2.html",
        "/topics/machine-learning.json": "topics/machine-learning.json",
        "/topics/machine-learning/": "topics/machine-learning/index.html",
        "/feeds/all.json?page=2": "feeds/all/page-2.json",
        "/feeds.opml": "feeds.opml",
        "/topics.opml?format=rss": "topics-rss.opml",
        "/static/style.css": "static/style.css",
    }
    for url, relative in expected.items():
        live = client.get(url)
        assert live.status_code == 200, url
        path = out / relative
        assert path.read_bytes() == live.get_data(), url
        assert gzip.decompress((out / (relative + ".gz")).read_bytes()) == live.get_data()
    tree = _tree(out)
    assert (out / MARKER).is_file()  # the mark that lets the next build replace it
    assert report.files * 2 == len(tree)  # every file has its .gz sibling
    assert _leftovers(tmp_path) == []
    assert not (out / "topics" / "ai" / "page-4.rss").exists()  # 7 items, 3 a page


def test_builds_are_deterministic_and_replace_atomically(
    site: tuple[Path, Path], tmp_path: Path
) -> None:
    seeds, config = site
    first, second = tmp_path / "a", tmp_path / "b"
    run_build(seeds, config, first, tmp_path / "state-a")
    run_build(seeds, config, second, tmp_path / "state-b")  # a store of its own
    assert _tree(first) == _tree(second)  # bytes and mtimes
    (first / "stale.txt").write_text("from an old build")
    write_seed(seeds, "7.md", **article_fields(7, topics=["New topic"]))
    run_build(seeds, config, first, tmp_path / "state-a")
    assert not (first / "stale.txt").exists()
    assert (first / "topics" / "new-topic.rss").exists()
    assert _leftovers(tmp_path) == []


def test_a_directory_that_is_not_a_build_is_never_replaced(
    site: tuple[Path, Path], tmp_path: Path
) -> None:
    seeds, config = site
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(BuildError, match="not a feedservice build"):
        run_build(seeds, config, precious, tmp_path / "state")
    assert [p.name for p in precious.iterdir()] == ["thesis.tex"]
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    with pytest.raises(BuildError):
        run_build(seeds, config, a_file, tmp_path / "state")
    assert a_file.read_text() == "not a directory"
    # A symlink to someone else's directory is refused too, and left as it was.
    link = tmp_path / "site"
    link.symlink_to(precious.name)
    with pytest.raises(BuildError, match="not a feedservice build"):
        run_build(seeds, config, link, tmp_path / "state")
    assert link.resolve() == precious and (precious / "thesis.tex").exists()
    assert _leftovers(tmp_path) == []


def test_an_empty_directory_may_receive_a_build(site: tuple[Path, Path], tmp_path: Path) -> None:
    """The refusal tells the admin to "choose a new or empty path": an empty directory
    (a web root made in advance) holds nothing to lose, so it is accepted."""
    seeds, config = site
    empty = tmp_path / "www"
    empty.mkdir()
    run_build(seeds, config, empty, tmp_path / "state")
    assert (empty / "index.html").exists() and (empty / MARKER).exists()


def test_a_symlinked_output_is_swapped_atomically(site: tuple[Path, Path], tmp_path: Path) -> None:
    seeds, config = site
    initial = tmp_path / "site.v0"
    run_build(seeds, config, initial, tmp_path / "state")
    link = tmp_path / "site"
    link.symlink_to(initial.name)
    run_build(seeds, config, link, tmp_path / "state")
    target = link.resolve()
    assert link.is_symlink() and target != initial and (target / "index.html").exists()
    assert not initial.exists()  # the previous build is retired
    run_build(seeds, config, link, tmp_path / "state")
    assert link.resolve() != target and not target.exists()
    assert (link / "feeds" / "all.rss").exists()
    assert _leftovers(tmp_path) == []


def test_build_command_uses_the_serve_defaults_and_fails_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    state = tmp_path / "state"

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "feedservice", "build", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = command("--out", str(out), "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert (out / "feeds" / "all.rss").exists()  # ./seeds and ./config/feeds.yaml
    assert f"into {out}" in done.stdout and "2 articles" in done.stdout
    assert (state / "feedservice.sqlite3").exists()  # the store it brought up to date
    bad = tmp_path / "bad.yaml"
    bad.write_text("reload_interval: soon\n")
    done = command("--config", str(bad), "--out", str(out), "--state-dir", str(state))
    assert done.returncode == 2 and "reload_interval" in done.stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    done = command("--out", str(foreign), "--state-dir", str(state))
    assert done.returncode == 2, done.stdout
    assert len(done.stderr.splitlines()) == 1 and str(foreign) in done.stderr
    assert (foreign / "keep.txt").read_text() == "mine"
    done = command("--seeds", str(tmp_path / "missing"), "--out", str(out),
                   "--state-dir", str(state))  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert (out / "feeds" / "all.rss").exists()  # the previous build is untouched


def test_build_beside_a_running_service_exports_what_it_serves(
    site: tuple[Path, Path], tmp_path: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    seeds, config = site
    state = tmp_path / "state"
    server = live_server_factory(seeds, config, extra_args=("--state-dir", str(state)))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "feedservice", "build", "--seeds", str(seeds), "--config",
         str(config), "--state-dir", str(state), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # the service holds the store: no second writer
    for url, relative in (
        ("/topics/ai.atom", "topics/ai.atom"),
        ("/feeds/all.json?page=2", "feeds/all/page-2.json"),
        ("/", "index.html"),
    ):
        status, _, body = server.get(url)
        assert status == 200 and (out / relative).read_bytes() == body, url
    assert server.process.poll() is None


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx package)")
    root = tmp_path / "www"
    work = tmp_path / "nginx"
    port = free_port()
    conf = work / "nginx.conf"
    work.mkdir()
    conf.write_text(nginx_conf(root, port, work))
    process = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(work), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield port, root
    finally:
        process.terminate()
        process.wait(timeout=10)


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, object, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_nginx_serving_the_build_passes_the_reader_checks(
    site: tuple[Path, Path],
    nginx: tuple[int, Path],
    tmp_path: Path,
    site_factory: Callable[..., Site],
) -> None:
    seeds, config = site
    port, root = nginx
    run_build(seeds, config, root, tmp_path / "state")
    deadline = time.monotonic() + 10
    while True:
        try:
            status, _, _ = _get(port, "/")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert status == 200
    client = site_factory(seeds, config).client
    for kind, name in (("topics", "ai"), ("topics", "machine-learning"), ("feeds", "all")):
        for fmt in ("rss", "atom", "json"):
            seen: list[str] = []
            for number in (1, 2, 3):
                url = f"/{kind}/{name}.{fmt}" + (f"?page={number}" if number > 1 else "")
                live = client.get(url)
                status, headers, body = _get(port, url)
                assert status == live.status_code, url
                if status != 200:
                    continue
                assert body == live.get_data(), url
                assert headers["Content-Type"] == live.headers["Content-Type"]  # type: ignore[index]
                _, items = read_feed(body, fmt)
                seen.extend(item.id for item in items)
            assert seen and len(seen) == len(set(seen))  # pages never repeat an item
    # gzip_static: the .gz sibling is served, and it is the same document.
    status, headers, body = _get(port, "/topics/ai.atom", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"  # type: ignore[index]
    read_feed(gzip.decompress(body), "atom")
    # Conditional requests work against the stable mtime-based validators.
    status, headers, _ = _get(port, "/topics/ai.rss")
    etag = headers["ETag"]  # type: ignore[index]
    assert _get(port, "/topics/ai.rss", {"If-None-Match": etag})[0] == 304
    for url in ("/feeds.opml", "/topics.opml?format=rss"):
        status, _, body = _get(port, url)
        assert status == 200 and body == client.get(url).get_data()
        outlines = etree.fromstring(body).findall(".//outline[@xmlUrl]")
        assert outlines
    assert _get(port, "/topics/ai/?page=2")[2] == client.get("/topics/ai/?page=2").get_data()
    assert _get(port, "/topics/nope.rss")[0] == 404
    assert _get(port, f"/{MARKER}")[0] == 404  # the build's mark is not published

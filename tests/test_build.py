"""`feedservice build --out DIR`: a deterministic, atomic static export that nginx serves
with the same bytes and the same reader conformance as the live service."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, article_fields, free_port, write_config, write_seed
from consumers import read_feed
from lxml import etree

from feedservice.build import build, nginx_conf
from feedservice.service import Service
from feedservice.web import create_app

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("FEEDSERVICE_CACHE_DIR", "off")
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


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_the_build_holds_every_url_with_the_live_bytes(
    site: tuple[Path, Path], tmp_path: Path
) -> None:
    seeds, config = site
    out = tmp_path / "out"
    report = build(seeds, config, out)
    client = create_app(Service(seeds, config)).test_client()
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
    assert report.files * 2 == len(tree)  # every file has its .gz sibling
    assert not any(name.startswith(".") for name in os.listdir(tmp_path) if "out" in name)


def test_builds_are_deterministic_and_replace_atomically(
    site: tuple[Path, Path], tmp_path: Path
) -> None:
    seeds, config = site
    first, second = tmp_path / "a", tmp_path / "b"
    build(seeds, config, first)
    build(seeds, config, second)
    assert _tree(first) == _tree(second)  # bytes and mtimes
    (first / "stale.txt").write_text("from an old build")
    write_seed(seeds, "7.md", **article_fields(7, topics=["New topic"]))
    build(seeds, config, first)
    assert not (first / "stale.txt").exists()
    assert (first / "topics" / "new-topic.rss").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_symlinked_output_is_swapped_atomically(site: tuple[Path, Path], tmp_path: Path) -> None:
    seeds, config = site
    initial = tmp_path / "site.v0"
    initial.mkdir()
    link = tmp_path / "site"
    link.symlink_to(initial.name)
    build(seeds, config, link)
    target = link.resolve()
    assert link.is_symlink() and target != initial and (target / "index.html").exists()
    build(seeds, config, link)
    assert link.resolve() != target and not target.exists()  # the previous build is retired


def test_build_command_uses_the_serve_defaults_and_fails_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "FEEDSERVICE_CACHE_DIR": "off"}
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "feedservice", "build", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "feeds" / "all.rss").exists()  # ./seeds and ./config/feeds.yaml
    bad = tmp_path / "bad.yaml"
    bad.write_text("reload_interval: soon\n")
    done = subprocess.run(
        [sys.executable, "-m", "feedservice", "build", "--config", str(bad), "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "reload_interval" in done.stderr


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
    site: tuple[Path, Path], nginx: tuple[int, Path]
) -> None:
    seeds, config = site
    port, root = nginx
    build(seeds, config, root)
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
    client = create_app(Service(seeds, config)).test_client()
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

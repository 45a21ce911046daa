"""Real Jekyll and Hugo sites (../shared/sites/, read in place) through `check`, the real
loader and app, and real readers: every post with its link, date, topics and full
content, as SOURCES.md and the files themselves say (tests/sites.py derives what each
post should be without feedservice's code)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from conftest import REPO, Site, make_site
from lxml import html
from sites import (
    SITES,
    WORKED_EXAMPLES,
    expected_post,
    expected_posts,
    post_paths,
    prose_lines,
    require_sites,
    site_config,
)

NAMES = sorted(SITES)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Site]:
    """Each site loaded with its own settings and served by the real app."""
    root = require_sites()
    tmp = tmp_path_factory.mktemp("sites")
    return {
        name: make_site(root / name, site_config(tmp, name), tmp / f"state-{name}")
        for name in NAMES
    }


def feed_json(site: Site, path: str = "/feeds/all.json") -> dict[str, Any]:
    response = site.get(path)
    assert response.status_code == 200, path
    return json.loads(response.data)


def text_of(fragment: str) -> str:
    return " ".join(html.fragment_fromstring(fragment, create_parent="div").text_content().split())


@pytest.mark.parametrize("name", NAMES)
def test_check_passes_on_every_file(name: str, tmp_path: Path) -> None:
    root = require_sites()
    result = subprocess.run(
        [sys.executable, "-m", "feedservice", "check", "--format", "json", "--seeds",
         str(root / name), "--config", str(site_config(tmp_path, name))],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    report = json.loads(result.stdout)
    files = len(post_paths(name))
    assert (report["files"], report["articles"], report["errors"]) == (files, files, 0)
    for finding in report["findings"]:  # only template tags are worth a word, once per file
        assert finding["field"] == "(body)" and "are not run" in finding["message"], finding
    paths = [finding["path"] for finding in report["findings"]]
    assert len(paths) == len(set(paths))
    marks = ("{{<", "{{%") if name.startswith(("hugo", "nats")) else ("{%", "{{")
    with_tags = {
        str(root / name / path)
        for path in post_paths(name)
        if any(mark in expected_post(name, path).body for mark in marks)
    }
    assert set(paths) == with_tags


@pytest.mark.parametrize("name", NAMES)
def test_the_worked_example_of_sources_md(served: dict[str, Site], name: str) -> None:
    path, link, published = WORKED_EXAMPLES[name]
    items = {item["url"]: item for item in feed_json(served[name])["items"]}
    assert link in items, sorted(items)[:5]
    assert datetime.fromisoformat(items[link]["date_published"]) == published
    assert expected_post(name, path).link == link  # (the test's own rule agrees)


def test_hugo_slug_and_jekyll_malformed_date(served: dict[str, Site]) -> None:
    hugo = {item["url"] for item in feed_json(served["hugo-news"])["items"]}
    assert "https://gohugo.io/news/no-more-releasenotes-here/" in hugo
    assert "https://gohugo.io/news/hugo-macos-intel-vs-arm/" in hugo  # the .html page
    jekyll = {item["url"]: item for item in feed_json(served["jekyll-docs"])["items"]}
    item = jekyll["https://jekyllrb.com/news/2023/01/29/jekyll-3-9-3-released/"]
    assert item["date_published"] == "2023-01-30T02:30:22Z"


@pytest.mark.parametrize("name", NAMES)
def test_every_post_with_its_link_date_and_topics(served: dict[str, Site], name: str) -> None:
    posts = expected_posts(name)
    got = {item["url"]: item for item in _all_items(served[name])}
    assert len(got) == len(posts)
    for post in posts:
        item = got.get(post.link)
        assert item is not None, (post.path, post.link)
        assert datetime.fromisoformat(item["date_published"]) == post.published, post.path
        assert {tag.lower() for tag in item.get("tags", [])} == post.topics, post.path
        assert item["id"] == post.link


def _all_items(site: Site) -> list[dict[str, Any]]:
    items, page = [], 1
    while site.get(f"/feeds/all.json?page={page}").status_code == 200:
        items += feed_json(site, f"/feeds/all.json?page={page}")["items"]
        page += 1
    return items


@pytest.mark.parametrize("name", NAMES)
def test_every_post_carries_its_full_content(served: dict[str, Site], name: str) -> None:
    """In all three formats, read by feedparser: each post's prose is in its content,
    every URL in it is absolute, and the summary is beside it."""
    site = served[name]
    posts = {post.link: post for post in expected_posts(name)}
    pages = -(-len(posts) // 50)
    checked = 0
    for fmt in ("rss", "atom", "json"):
        for page in range(1, pages + 1):
            body = site.get(f"/feeds/all.{fmt}?page={page}").data
            for link, content, summary in _contents(body, fmt):
                post = posts[link]
                text = text_of(content)
                for line in prose_lines(post.body)[:3]:
                    assert " ".join(line.split()) in text, (fmt, post.path, line)
                    checked += 1
                assert summary and text_of(summary)[:60] in text, (fmt, post.path)
                _assert_absolute(content, post.path)
    assert checked >= 3 * len(posts) // 2


def _contents(body: bytes, fmt: str) -> list[tuple[str, str, str]]:
    if fmt == "json":
        return [
            (item["url"], item["content_html"], item.get("summary", ""))
            for item in json.loads(body)["items"]
        ]
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return [(entry.link, entry.content[0].value, entry.summary) for entry in parsed.entries]


def _assert_absolute(content: str, where: str) -> None:
    tree = html.fragment_fromstring(content, create_parent="div")
    for element in tree.iter():
        for attribute in ("href", "src", "cite"):
            value = element.get(attribute)
            if value is not None:
                assert value.startswith(("http://", "https://", "mailto:")), (where, value)
        for candidate in (element.get("srcset") or "").split(","):
            if candidate.strip():
                assert candidate.strip().startswith(("http://", "https://")), where


def test_relative_links_in_real_posts_resolve_against_the_post(served: dict[str, Site]) -> None:
    """jekyll-docs' `[history]: /docs/history/#v1-0-0` and hugo-news' bundle images."""
    jekyll = {item["url"]: item for item in feed_json(served["jekyll-docs"])["items"]}
    first = jekyll["https://jekyllrb.com/news/2013/05/05/jekyll-1-0-0-released/"]
    assert 'href="https://jekyllrb.com/docs/history/#v1-0-0"' in first["content_html"]
    hugo = feed_json(served["hugo-news"])["items"]
    images = [item["image"] for item in hugo if "image" in item]
    assert images and all(
        url == "https://gohugo.io/images/blog/hugo-bug-poster.png" for url in images
    )


def test_raw_html_embeds_are_dropped_and_frames_become_links(served: dict[str, Site]) -> None:
    """nats-blog bodies carry YouTube iframes and tweet scripts (Hugo's unsafe mode)."""
    items = _all_items(served["nats-blog"])
    everything = "".join(item["content_html"] for item in items)
    assert "<script" not in everything and "<iframe" not in everything
    assert 'href="https://www.youtube.com/embed/' in everything
    assert "platform.twitter.com/widgets.js" not in everything


def test_hugo_more_marker_makes_the_summary(served: dict[str, Site]) -> None:
    post = expected_post("nats-blog", "content/blog/nats-recover-quorum.md")
    before = " ".join(post.body.split("<!--more-->")[0].split())
    items = {item["url"]: item for item in feed_json(served["nats-blog"])["items"]}
    assert items[post.link]["summary"] == before

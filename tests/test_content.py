"""Jekyll and Hugo pages in temp dirs, through the real loader and app: front matter of
each kind, permalinks, full content in every format, summaries, drafts, template tags,
bounds and the everyday-cc format left as it was."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import feedparser
import pytest
from conftest import Site, article_fields, make_site, wait_for, write_config, write_seed
from lxml import etree

from feedservice.ingest.body import MAX_CONTENT_CHARS
from feedservice.settings import ConfigError, resolve

BASE = "https://blog.example"
ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"


def page(seeds: Path, path: str, text: str) -> Path:
    target = seeds / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def site(tmp: Path, seeds: Path, **config: Any) -> Site:
    keys = {"title": "Blog", "base_url": BASE, "reload_interval": 1, **config}
    return make_site(seeds, write_config(tmp / "feeds.yaml", **keys), tmp / "state")


def items(site: Site, path: str = "/feeds/all.json") -> dict[str, dict[str, Any]]:
    return {item["url"]: item for item in json.loads(site.get(path).data)["items"]}


def findings(site: Site) -> list[tuple[str, str, str, bool]]:
    return [(p.source, p.field, p.message, p.fatal) for p in site.loader.problems()]


JEKYLL_POST = """---
title: "Hello, Jekyll"
date: 2024-03-01 23:30:00 -0800
categories: [Release Notes]
tags: ruby web
author: {name: Ada, url: "https://ada.example/"}
image: {path: /assets/hello.png}
last_modified_at: 2024-03-05T10:00:00Z
---

First paragraph with [a relative link](../docs/) and ![a picture](pic.png).

| a | b |
|---|---|
| 1 | ~~two~~ |

A claim.[^1]

[^1]: The footnote.
"""


def test_a_jekyll_post_in_every_format(tmp_path: Path, seeds: Path) -> None:
    page(seeds, "blog/_posts/2024-03-01-hello-jekyll.markdown", JEKYLL_POST)
    served = site(tmp_path, seeds, permalink="pretty", timezone="America/New_York")
    assert findings(served) == []
    link = f"{BASE}/blog/release%20notes/2024/03/02/hello-jekyll/"  # 02:30 in New York
    item = items(served)[link]
    assert item["date_published"] == "2024-03-02T07:30:00Z"
    assert item["date_modified"] == "2024-03-05T10:00:00Z"
    assert set(item["tags"]) == {"blog", "Release Notes", "ruby", "web"}  # dirs, lists, words
    assert item["authors"] == [{"name": "Ada", "url": "https://ada.example/"}]
    assert item["image"] == f"{BASE}/assets/hello.png"
    assert item["summary"] == "First paragraph with a relative link and ."
    content = item["content_html"]
    assert f'<a href="{BASE}/blog/release%20notes/2024/03/02/docs/"' in content
    assert f'<img src="{link}pic.png" alt="a picture">' in content
    assert "<table>" in content and "<s>two</s>" in content and "The footnote." in content
    rss = feedparser.parse(served.get("/feeds/all.rss").data).entries[0]
    assert rss.link == link and "The footnote." in rss.content[0].value
    raw = etree.fromstring(served.get("/feeds/all.rss").data).find("channel/item")
    assert raw.findtext(CONTENT) == content
    assert rss.summary == "<p>First paragraph with a relative link and .</p>"
    assert rss.author == "Ada"
    atom = etree.fromstring(served.get("/feeds/all.atom").data).find(f"{ATOM}entry")
    assert atom.findtext(f"{ATOM}content") == content
    assert atom.find(f"{ATOM}content").get("type") == "html"
    assert atom.findtext(f"{ATOM}updated") == "2024-03-05T10:00:00+00:00"
    assert atom.findtext(f"{ATOM}author/{ATOM}uri") == "https://ada.example/"


def test_jekyll_date_from_the_file_name_and_default_permalink(tmp_path: Path, seeds: Path) -> None:
    page(seeds, "_posts/2023-07-04-No-Date.md", "---\ntitle: x\n---\nBody.\n")
    page(seeds, "_posts/2023-07-05-untitled.md", "---\nlayout: post\n---\nBody.\n")
    page(seeds, "_posts/undated.md", "---\ntitle: y\n---\nBody.\n")
    served = site(tmp_path, seeds, timezone="Asia/Tokyo")
    found = items(served)
    item = found[f"{BASE}/2023/07/04/No-Date.html"]  # Jekyll's default style, `date`
    assert item["date_published"] == "2023-07-03T15:00:00Z"  # midnight in Tokyo
    assert found[f"{BASE}/2023/07/05/untitled.html"]["title"] == "Untitled"  # named as Jekyll does
    errors = [(s, f) for s, f, _, fatal in findings(served) if fatal]
    assert errors == [("_posts/undated.md", "date")]


HUGO_TOML = """+++
title = "Hugo in TOML"
publishDate = 2024-05-01T08:00:00Z
date = 2020-01-01
lastmod = "2024-05-02"
tags = ["Go"]
series = ["Static"]
authors = ["Bo", "Cy"]
images = ["img/cover.png"]
+++
Intro text.

<!--more-->

More text with {{< gh 1 >}} and {{</* escaped */>}}.

{{< highlight go >}}
func main() {}
{{< /highlight >}}
"""


def test_a_hugo_page_in_toml_with_more_marker_and_shortcodes(tmp_path: Path, seeds: Path) -> None:
    page(seeds, "content/posts/toml-page/index.md", HUGO_TOML)
    page(seeds, "content/posts/_index.md", "---\ntitle: The section\n---\n")
    served = site(tmp_path, seeds, timezone="Europe/Oslo", taxonomies=["series"])
    item = items(served)[f"{BASE}/posts/toml-page/"]
    assert item["date_published"] == "2024-05-01T08:00:00Z"  # publishDate wins over date
    assert item["date_modified"] == "2024-05-01T22:00:00Z"  # a date alone: Oslo's midnight
    assert set(item["tags"]) == {"Go", "Static"}
    assert [author["name"] for author in item["authors"]] == ["Bo", "Cy"]
    assert item["image"] == f"{BASE}/img/cover.png"
    assert item["summary"] == "Intro text."
    content = item["content_html"]
    assert "More text with  and {{&lt; escaped &gt;}}." in content
    assert "<pre><code>func main() {}\n</code></pre>" in content
    warnings = [f for f in findings(served) if f[0] == "content/posts/toml-page/index.md"]
    assert [(field, fatal) for _, field, _, fatal in warnings] == [("(body)", False)]
    assert "Hugo shortcodes" in warnings[0][2] and "not run" in warnings[0][2]
    assert len(items(served)) == 1  # the section page is not an article


def test_json_front_matter_url_slug_and_html_body(tmp_path: Path, seeds: Path) -> None:
    page(seeds, "news/a.md", '{"title": "JSON", "date": "2024-01-02", "url": "/custom/path/"}\nB.')
    page(
        seeds,
        "news/Long Name.md",
        "\n\n---\ntitle: Slugged\ndate: 2024-01-03\nslug: Short\n---\nB.",
    )
    page(seeds, "news/p.html", "---\ntitle: H\ndate: 2024-01-04\n---\n<p>An <b>HTML</b> body</p>")
    served = site(tmp_path, seeds)
    found = items(served)
    assert set(found) == {
        f"{BASE}/custom/path/",  # Hugo's `url` is the whole path, as written
        f"{BASE}/news/short/",  # `slug` replaces the file name; paths lower-cased
        f"{BASE}/news/p/",
    }
    assert found[f"{BASE}/news/p/"]["content_html"] == "<p>An <b>HTML</b> body</p>"


def test_drafts_expiry_and_scheduled_pages(tmp_path: Path, seeds: Path) -> None:
    page(seeds, "_drafts/idea.md", "---\ntitle: Idea\n---\nB.")
    page(seeds, "_posts/2020-01-01-off.md", "---\ntitle: Held\npublished: false\n---\nB.")
    page(seeds, "posts/draft.md", "---\ntitle: D\ndate: 2020-01-01\ndraft: true\n---\nB.")
    page(seeds, "posts/gone.md", "---\ntitle: G\ndate: 2020-01-01\nexpiryDate: 2021-01-01\n---\n")
    page(seeds, "posts/live.md", "---\ntitle: L\ndate: 2020-01-01\n---\nB.")
    soon = time.time() + 6  # (ahead of the first load, however slow the machine)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(soon))
    page(seeds, "posts/soon.md", f"---\ntitle: S\ndate: 2020-01-01\npublishDate: {when}\n---\n")
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(soon + 1))
    page(seeds, "posts/ends.md", f"---\ntitle: E\ndate: 2020-01-01\nexpiryDate: {later}\n---\n")
    served = site(tmp_path, seeds)
    assert set(items(served)) == {f"{BASE}/posts/live/", f"{BASE}/posts/ends/"}
    catalog = served.loader.catalog
    assert catalog.drafts == {"_drafts/idea.md", "_posts/2020-01-01-off.md", "posts/draft.md"}
    assert set(catalog.scheduled) == {"posts/soon.md"} and set(catalog.expired) == {"posts/gone.md"}

    def settled() -> bool:
        served.reload()
        return set(items(served)) == {f"{BASE}/posts/live/", f"{BASE}/posts/soon/"}

    wait_for(settled, "the scheduled page published and the expiring one gone", timeout=15)


def test_feed_content_setting_and_topic_feeds(tmp_path: Path, seeds: Path) -> None:
    page(seeds, "posts/p.md", "---\ntitle: P\ndate: 2024-01-01\ntags: [T]\n---\nOne.\n\nTwo.\n")
    feeds = [{"name": "short", "title": "Short", "topics": "*", "content": "summary"}]
    served = site(tmp_path, seeds, feeds=feeds)
    full = json.loads(served.get("/topics/t.json").data)["items"][0]
    assert full["content_html"] == "<p>One.</p>\n<p>Two.</p>\n"
    short = json.loads(served.get("/feeds/short.json").data)["items"][0]
    assert short["content_html"] == "<p>One.</p>" and short["summary"] == "One."
    rss = etree.fromstring(served.get("/feeds/short.rss").data).find("channel/item")
    assert rss.find(CONTENT) is None and rss.findtext("description") == "<p>One.</p>"
    assert (
        etree.fromstring(served.get("/feeds/all.rss").data).find(f"channel/item/{CONTENT}")
        is not None
    )
    atom = etree.fromstring(served.get("/feeds/short.atom").data)
    assert atom.findtext(f"{ATOM}entry/{ATOM}content") == "<p>One.</p>"
    with pytest.raises(ConfigError, match=r"feeds\[x\]\.content"):
        resolve({"feeds": [{"name": "x", "title": "X", "topics": "*", "content": "all"}]}, {})


def test_settings_are_checked_and_a_change_reparses(tmp_path: Path, seeds: Path) -> None:
    for bad in ({"timezone": "Mars/Olympus"}, {"permalink": "/:year/:nonsense/"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            resolve(bad, {})
    page(seeds, "_posts/2024-02-29-leap.md", "---\ntitle: Leap\n---\nB.")
    served = site(tmp_path, seeds)
    assert set(items(served)) == {f"{BASE}/2024/02/29/leap.html"}
    write_config(tmp_path / "feeds.yaml", title="Blog", base_url=BASE, permalink="/:title/")
    served.reload()
    assert set(items(served)) == {f"{BASE}/leap/"}
    restarted = make_site(seeds, tmp_path / "feeds.yaml", tmp_path / "state")
    assert set(items(restarted)) == {f"{BASE}/leap/"}


def test_no_absolute_link_is_an_error_naming_the_field(tmp_path: Path, seeds: Path) -> None:
    page(
        seeds, "posts/a.md", "---\ntitle: A\ndate: 2024-01-01\nurl: 'ftp://files.example/a'\n---\n"
    )
    page(seeds, "_posts/2024-01-01-b.md", "---\npermalink: 'javascript:alert(1)//x'\n---\n")
    served = site(tmp_path, seeds)
    problems = {(s, f): m for s, f, m, fatal in findings(served) if fatal}
    assert "no absolute link" in problems[("posts/a.md", "url")]
    assert list(items(served)) == [f"{BASE}/javascript:alert(1)/x"]  # a path on the site


def test_bounds_and_bad_bodies(tmp_path: Path, seeds: Path) -> None:
    huge = "First words.\n\n" + "x " * (MAX_CONTENT_CHARS // 2 + 10) + "\n"
    page(seeds, "posts/huge.md", f"---\ntitle: Huge\ndate: 2024-01-01\n---\n{huge}")
    (seeds / "posts" / "latin1.md").write_bytes(b"---\ntitle: L\ndate: 2024-01-02\n---\ncaf\xe9\n")
    served = site(tmp_path, seeds)
    found = items(served)
    assert found[f"{BASE}/posts/huge/"]["summary"] == "First words."
    assert found[f"{BASE}/posts/huge/"]["content_html"] == "<p>First words.</p>"  # the summary
    assert "content_html" in found[f"{BASE}/posts/latin1/"]
    messages = {s: m for s, _, m, fatal in findings(served) if not fatal}
    assert "only the summary" in messages["posts/huge.md"]
    assert "not valid UTF-8" in messages["posts/latin1.md"]


def test_everyday_cc_files_are_read_exactly_as_before(tmp_path: Path, seeds: Path) -> None:
    """Their body is not read, dates without an offset stay UTC whatever `timezone`
    says, and a relative link is still dropped, not made absolute."""
    fields = article_fields(1, publishedDateTime="2021-03-01T10:00:00")
    write_seed(seeds, "2021-03-01-everyday.md", **fields)
    path = seeds / "2021-03-01-everyday.md"
    path.write_text(path.read_text() + "# A body\n\nWith *text*.\n")
    write_seed(seeds, "rel.md", **article_fields(2, webUrl="/relative", originalUrl=None))
    served = site(tmp_path, seeds, timezone="Asia/Tokyo", permalink="pretty")
    item = items(served)[fields["webUrl"]]
    assert item["date_published"] == "2021-03-01T10:00:00Z"
    assert item["content_html"] == f"<p>{fields['excerpt']}</p>"
    assert item["date_modified"] == item["date_published"]  # unedited: as it was published
    assert ("rel.md", "webUrl") in [(s, f) for s, f, _, fatal in findings(served) if fatal]

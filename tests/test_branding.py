"""Branded feeds (issue 18): title, description, icon, logo, language and author, site-wide,
per configured feed and per topic, in RSS `<image>`, Atom `<icon>`/`<logo>`/`<author>`,
JSON Feed `icon`/`favicon`/`authors`/`language`, the HTML pages and OPML; descriptions
from a feed's rules; configured topics that match nothing as warnings. Read with
feedparser, lxml and newsboat; the real W3C validator (when checked out beside us)
finds no error with branding and tombstones present."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest
from conftest import REPO, article_fields, wait_for, write_config, write_seed
from consumers import read_feed
from lxml import etree, html
from test_newsboat import NEWSBOAT, Reader
from w3c_validate import validate

from feedservice import settings
from feedservice.settings import ConfigError

SITE_ICON, SITE_LOGO = "https://brand.example/icon.png", "https://brand.example/logo.png"
ML_ICON, AI_ICON = "https://brand.example/ml.png", "https://brand.example/ai.png"


def branded_config(path: Path, **extra) -> Path:
    return write_config(
        path,
        title="Acme",
        icon=SITE_ICON,
        logo=SITE_LOGO,
        author="Acme desk",
        topics={"ai": {"title": "Artificial intelligence", "icon": AI_ICON, "language": "en-GB"}},
        feeds=[
            {"name": "ml", "title": "ML", "topics": ["AI", "Robots"], "icon": ML_ICON,
             "author": "The ML desk", "language": "de"},
            {"name": "plain", "title": "Plain", "topics": ["AI"], "exclude_topics": ["Ads"],
             "min_quality": 40},
        ],
        **extra,
    )  # fmt: skip


@pytest.fixture
def site(seeds: Path, tmp_path: Path, site_factory):
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))
    write_seed(seeds, "b.md", **article_fields(2, topics=["Robots"]))
    return site_factory(seeds, branded_config(tmp_path / "feeds.yaml", base_url="http://f.test"))


def test_every_format_carries_the_feed_s_brand_else_the_site_s(site) -> None:
    rss = etree.fromstring(site.get("/feeds/ml.rss").data)
    channel = rss.find("channel")
    assert channel.findtext("image/url") == SITE_LOGO  # no logo of its own: the site's
    assert channel.findtext("image/title") == channel.findtext("title") == "ML"
    assert channel.findtext("image/link") == channel.findtext("link") == "http://f.test/feeds/ml/"
    assert channel.findtext("language") == "de"
    atom = feedparser.parse(site.get("/feeds/ml.atom").data)
    assert atom.bozo == 0 and atom.feed.language == "de"
    assert (atom.feed.icon, atom.feed.logo) == (ML_ICON, SITE_LOGO)
    assert atom.feed.author_detail.name == "The ML desk"
    document, _ = read_feed(site.get("/feeds/ml.json").data, "json")
    assert (document["icon"], document["favicon"], document["language"]) == (ML_ICON, ML_ICON, "de")
    assert document["authors"][0]["name"] == "The ML desk"
    # A topic's own settings: its title, icon and language; the rest is the site's.
    topic = feedparser.parse(site.get("/topics/ai.atom").data)
    assert topic.feed.title == "Artificial intelligence — Acme"
    assert (topic.feed.icon, topic.feed.logo, topic.feed.language) == (AI_ICON, SITE_LOGO, "en-GB")
    assert topic.feed.author_detail.name == "Acme desk"
    other = json.loads(site.get("/topics/robots.json").data)
    assert (other["icon"], other["language"], other["authors"][0]["name"]) == (
        SITE_ICON, "en", "Acme desk",
    )  # fmt: skip
    rss = etree.fromstring(site.get("/topics/robots.rss").data)
    assert rss.findtext("channel/image/url") == SITE_LOGO


def test_pages_and_opml_use_the_brand(site) -> None:
    page = html.fromstring(site.get("/feeds/ml/").data)
    assert page.get("lang") == "de"
    assert page.xpath("//link[@rel='icon']/@href") == [ML_ICON]
    assert page.xpath("//header//img[@class='logo']/@src") == [SITE_LOGO]
    assert page.xpath("//meta[@name='author']/@content") == ["The ML desk"]
    index = html.fromstring(site.get("/").data)
    assert index.xpath("//link[@rel='icon']/@href") == [SITE_ICON] and index.get("lang") == "en"
    opml = etree.fromstring(site.get("/feeds.opml").data)
    assert opml.findtext("head/ownerName") == "Acme desk"
    titles = {o.get("xmlUrl").rsplit("/", 1)[1]: o.get("title") for o in opml.iter("outline")
              if o.get("xmlUrl")}  # fmt: skip
    assert titles["ai.atom"] == "Artificial intelligence — Acme"


def test_a_feed_without_a_description_describes_its_rules(site) -> None:
    described = {
        "ml": "Articles tagged AI or Robots, newest first",
        "plain": "Articles tagged AI, except those tagged Ads, of quality 40 or more, newest first",
    }
    for name, description in described.items():
        assert feedparser.parse(site.get(f"/feeds/{name}.atom").data).feed.subtitle == description
        page = html.fromstring(site.get(f"/feeds/{name}/").data)
        assert page.xpath("//p[@class='lead']/text()") == [description]  # not its title again


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("icon", "javascript:alert(1)", "icon: must be an absolute http(s) URL"),
        ("logo", "https://x.example/" + "a" * 3000, "logo: must be at most 2048 characters"),
        ("topics", {"AI": {"colour": "red"}}, "topics[AI]: must be a mapping of title"),
        ("topics", {"AI": {"icon": "ftp://x/y"}}, "topics[AI].icon: must be an absolute"),
        ("feeds", [{"name": "x", "title": "X", "topics": "*", "language": "not a tag"}],
         "feeds[x].language: must be a language tag"),
    ],
)  # fmt: skip
def test_bad_branding_names_the_key(tmp_path: Path, key: str, value, message: str) -> None:
    path = write_config(tmp_path / "feeds.yaml", **{key: value})
    with pytest.raises(ConfigError) as error:
        settings.load(path, {})
    assert message in str(error.value)


def test_topics_that_match_no_article_are_warnings_everywhere(seeds, tmp_path, site_factory):
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))
    config = branded_config(tmp_path / "feeds.yaml")  # Robots, Ads: no article has them
    expected = [
        "feeds[ml].topics: 'Robots' matches no article (a typo?)",
        "feeds[plain].exclude_topics: 'Ads' matches no article (a typo?)",
    ]
    site = site_factory(seeds, config)
    assert site.get("/healthz").get_json()["config_warnings"] == expected
    result = subprocess.run(
        [sys.executable, "-m", "feedservice", "check", "--seeds", str(seeds), "--config",
         str(config), "--format", "json"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["warnings"] == 2
    found = [
        f"{f['field']}: {f['message']}" for f in report["findings"] if f["path"] == str(config)
    ]
    assert found == expected
    write_seed(seeds, "b.md", **article_fields(2, topics=["Robots", "Ads"]))  # fixed
    site.reload()
    assert site.get("/healthz").get_json()["config_warnings"] == []


def test_the_reload_log_says_it_once(seeds, tmp_path, live_server_factory) -> None:
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))
    config = branded_config(tmp_path / "feeds.yaml", reload_interval=1)
    server = live_server_factory(seeds, config)
    write_seed(seeds, "b.md", **article_fields(2, topics=["AI"]))
    wait_for(lambda: server.health()["articles"] == 2, "the second article")
    lines = [line for line in server.log().splitlines() if "matches no article" in line]
    assert len(lines) == 1 and "WARNING feedservice.reload.config: config: feeds[ml]" in lines[0]


@pytest.mark.skipif(NEWSBOAT is None, reason="newsboat is not installed")
def test_newsboat_reads_branded_feeds_and_tombstones(seeds, tmp_path, live_server_factory) -> None:
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))
    write_seed(seeds, "b.md", **article_fields(2, topics=["AI", "Robots"]))
    server = live_server_factory(seeds, branded_config(tmp_path / "feeds.yaml", reload_interval=1))
    (seeds / "b.md").unlink()  # Robots' only article: a retired topic, and tombstones
    wait_for(lambda: b"deleted-entry" in server.get("/topics/robots.atom")[2], "the tombstone")
    urls = [f"{server.url}/{path}" for path in
            ("feeds/ml.atom", "feeds/ml.rss", "topics/ai.atom", "topics/robots.atom")]  # fmt: skip
    reader = Reader(tmp_path / "newsboat", urls)
    reader.reload()  # (asserts no error in newsboat's log)
    titles = dict(reader.rows("SELECT rssurl, title FROM rss_feed"))
    assert titles[urls[0]] == titles[urls[1]] == "ML"
    assert titles[urls[2]] == "Artificial intelligence — Acme"
    guids = {guid for (guid,) in reader.rows("SELECT guid FROM rss_item")}  # (once per cache)
    assert guids == {"https://example.com/articles/1"}


def test_the_w3c_validator_finds_no_error(seeds, tmp_path, live_server_factory) -> None:
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))
    write_seed(seeds, "b.md", **article_fields(2, topics=["AI", "Robots"]))
    write_seed(seeds, "c.md", **article_fields(3, topics=["AI"]))
    hub = {"websub_hub": "https://hub.example/"}
    server = live_server_factory(
        seeds, branded_config(tmp_path / "f.yaml", reload_interval=1, **hub)
    )
    (seeds / "b.md").unlink()
    wait_for(lambda: b"deleted-entry" in server.get("/topics/robots.atom")[2], "the tombstone")
    paths = ("feeds/ml", "topics/ai", "topics/robots", "feeds/plain", "feeds/all")
    urls = [f"{server.url}/{path}.{fmt}" for path in paths for fmt in ("rss", "atom")]
    reports = validate(urls)
    assert b"deleted-entry" in server.get("/feeds/ml.atom")[2]  # (what was validated)
    assert [report["errors"] for report in reports] == [[]] * len(urls), reports
    warned = {kind for report in reports for kind, _ in report["warnings"]}
    assert warned <= {"UnknownNamespace"}, reports  # the tombstone namespace is new to it

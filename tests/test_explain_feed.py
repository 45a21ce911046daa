"""`feedservice explain FILE-OR-URL --feed NAME` (issue 18): the one rule that keeps a file
in or out of one feed: topics (and the ones it has), an excluded topic, min_quality
(against the bound), past the feed's limit (and its page), draft, scheduled (when),
expired, duplicate (of which file), bad (field and line). Without --feed, the rule for
every configured feed that does not hold it. Text and JSON, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, article_fields, write_config, write_seed

from feedservice.cli import main


@pytest.fixture
def site(tmp_path: Path, seeds: Path) -> tuple[Path, Path]:
    config = write_config(
        tmp_path / "feeds.yaml",
        topic_limit=2,
        feeds=[
            {"name": "ml", "title": "ML", "topics": ["Machine Learning"], "limit": 1},
            {"name": "best", "title": "Best", "topics": "*", "min_quality": 90},
            {"name": "clean", "title": "Clean", "topics": ["AI"], "exclude_topics": ["Ads"]},
        ],
    )
    write_seed(seeds, "one.md", **article_fields(1, topics=["AI", "Machine Learning", "Ads"]))
    write_seed(seeds, "newer.md", **article_fields(2, topics=["Machine Learning"], quality=95))
    write_seed(seeds, "draft.md", **article_fields(3, published=False))
    write_seed(seeds, "later.md", **article_fields(4, publishedDateTime="2099-01-01T00:00:00Z"))
    write_seed(seeds, "old.md", **article_fields(5, expiryDate="2022-01-01T00:00:00Z"))
    write_seed(seeds, "copy.md", **article_fields(1, publishedDateTime="2020-01-01T00:00:00Z"))
    (seeds / "bad.md").write_text("---\ntitle: Bad\nwebUrl: https://e.example/bad\n---\n")
    return seeds, config


def ask(site, capsys, target: str, *extra: str) -> tuple[int, dict]:
    seeds, config = site
    args = ["explain", "--seeds", str(seeds), "--config", str(config), target, *extra]
    code = main([*args, "--format", "json"])
    (item,) = json.loads(capsys.readouterr().out)["files"]
    assert code == main(args)  # the text form answers the same
    text = capsys.readouterr().out
    if item["feed"]:
        verdict = "in it" if item["feed"]["in_feed"] else "not in it"
        line = (
            f"  {item['feed']['feed']}: {verdict}: {item['feed']['why']} [{item['feed']['rule']}]"
        )
        assert line in text.splitlines(), text
    return code, item


@pytest.mark.parametrize(
    ("target", "feed", "rule", "why"),
    [
        ("newer.md", "ml", "in_feed", "in it, on page 1"),
        ("one.md", "ml", "limit", "past its limit of 1: on page 2"),
        ("one.md", "best", "min_quality", "its quality 50 is below the feed's min_quality 90"),
        ("one.md", "clean", "exclude_topics", "its topic 'ads' is excluded"),
        ("newer.md", "clean", "topics", "none of its topics (Machine Learning) is in AI"),
        ("newer.md", "topics/ai", "topics", "it is not tagged ai (its topics: Machine Learning)"),
        ("one.md", "topics/ai", "in_feed", "in it, on page 1"),
        ("draft.md", "all", "draft", "draft: the file says `published: false`"),
        ("later.md", "all", "scheduled",
         "scheduled for 2099-01-01T00:00:00Z: in no feed until then"),
        ("old.md", "all", "expired",
         "expired at 2022-01-01T00:00:00Z (expiryDate): in no feed since"),
        ("copy.md", "all", "duplicate",
         "duplicate: one.md has the same link and is served instead"),
        ("bad.md", "all", "bad file", "bad file: publishedDateTime: is required"),
    ],
)  # fmt: skip
def test_the_rule_for_one_feed(site, capsys, target, feed, rule, why) -> None:
    code, item = ask(site, capsys, target, "--feed", feed)
    assert item["feed"]["rule"] == rule
    assert item["feed"]["why"] == why
    assert item["feed"]["in_feed"] is (rule == "in_feed")
    assert code == (0 if rule == "in_feed" else 1)
    assert item["kept_out"] == []  # (one feed asked: only its answer)


def test_without_feed_every_configured_feed_that_does_not_hold_it(site, capsys) -> None:
    code, item = ask(site, capsys, "one.md")
    assert code == 0 and item["feed"] is None
    held = sorted(f"{feed['kind']}/{feed['name']}" for feed in item["feeds"])
    assert held == [
        "feeds/all",
        "feeds/ml",
        "providers/example.com",
        "topics/ads",
        "topics/ai",
        "topics/machine-learning",
    ]
    assert {kept["feed"]: kept["rule"] for kept in item["kept_out"]} == {
        "feeds/best": "min_quality",
        "feeds/clean": "exclude_topics",
    }
    seeds, config = site
    result = subprocess.run(
        [sys.executable, "-m", "feedservice", "explain", "--seeds", str(seeds), "--config",
         str(config), "one.md"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert (
        "  not in:   feeds/best: its quality 50 is below the feed's min_quality 90 [min_quality]"
        in (result.stdout.splitlines())
    )


def test_an_unknown_feed_is_a_usage_error(site, capsys) -> None:
    seeds, config = site
    code = main(
        ["explain", "--seeds", str(seeds), "--config", str(config), "one.md", "--feed", "nope"]
    )
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "no feed feeds/nope" in captured.err

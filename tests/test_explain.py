"""`feedservice explain`: published (with feeds), draft, duplicate, bad file, and the rest;
exit 2 with one line when the seed directory cannot be read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, article_fields, seed_text, write_config, write_seed

from feedservice.cli import main


@pytest.fixture
def site(tmp_path: Path, seeds: Path) -> tuple[Path, Path]:
    config = write_config(
        tmp_path / "feeds.yaml",
        base_url="https://feeds.example.org",
        topic_limit=2,
        feeds=[
            {"name": "ml", "title": "ML", "topics": ["Machine Learning"]},
            {"name": "best", "title": "Best", "topics": "*", "min_quality": 90},
        ],
    )
    write_seed(seeds, "news/one.md", **article_fields(1, topics=["AI", "Machine Learning"]))
    for n in range(2, 5):  # newer AI articles push `one.md` to page 2 of /topics/ai
        write_seed(seeds, f"news/n{n}.md", **article_fields(n + 10, topics=["AI"]))
    write_seed(seeds, "draft.md", **article_fields(5, published=False))
    # Same link as one.md, older: one.md wins.
    write_seed(
        seeds,
        "copy.md",
        **article_fields(1, title="An older copy", publishedDateTime="2020-01-01T00:00:00Z"),
    )
    (seeds / "broken.md").write_text(
        "---\ntitle: Broken\nsecured: SECRET-broken\nwebUrl: https://example.com/broken\n"
        "topics: AI: ML\n---\n",
        encoding="utf-8",
    )
    (seeds / "notes.json").write_text("{}", encoding="utf-8")
    return seeds, config


def explain(site: tuple[Path, Path], target: str, capsys: pytest.CaptureFixture[str],
            *extra: str) -> tuple[int, str]:  # fmt: skip
    seeds, config = site
    code = main(["explain", "--seeds", str(seeds), "--config", str(config), target, *extra])
    out = capsys.readouterr().out
    assert "SECRET" not in out
    return code, out


def as_json(site: tuple[Path, Path], target: str, capsys: pytest.CaptureFixture[str]) -> dict:
    code, out = explain(site, target, capsys, "--format", "json")
    result = json.loads(out)
    result["code"] = code
    return result


def test_published_names_identity_topics_and_feeds(site, capsys) -> None:
    code, out = explain(site, str(site[0] / "news" / "one.md"), capsys)
    assert code == 0
    assert out.splitlines()[0] == "news/one.md: published in 5 feeds"  # (its provider's too)
    assert "identity: https://example.com/articles/1" in out
    assert "topics:   AI, Machine Learning" in out
    assert "/topics/ai/ (page 2)  https://feeds.example.org/topics/ai.atom" in out
    assert "/feeds/ml/ (page 1)" in out and "/topics/machine-learning/ (page 1)" in out
    assert "/feeds/all/ (page 2)" in out  # topic_limit 2: three newer articles
    assert "/feeds/best" not in out  # quality 50 < min_quality 90


def test_draft(site, capsys) -> None:
    result = as_json(site, "draft.md", capsys)  # relative to the seed directory
    (item,) = result["files"]
    assert result["code"] == 1
    assert item["status"] == "draft" and item["reason"].startswith("draft")
    assert item["identity"] == "https://example.com/articles/5" and item["feeds"] == []
    assert item["title"] == "Article number 5"  # re-read: the store keeps no draft content
    _, out = explain(site, "draft.md", capsys)
    assert out.startswith("draft.md: not published: draft")


def test_duplicate_names_the_winning_file(site, capsys) -> None:
    result = as_json(site, "copy.md", capsys)
    (item,) = result["files"]
    assert result["code"] == 1
    assert item["status"] == "duplicate" and item["winner"] == "news/one.md"
    assert "news/one.md" in item["reason"]
    _, out = explain(site, "copy.md", capsys)
    assert "not published: duplicate: news/one.md has the same link" in out


def test_bad_file_gives_the_yaml_problem_and_line(site, capsys) -> None:
    result = as_json(site, "broken.md", capsys)
    (item,) = result["files"]
    assert result["code"] == 1
    assert item["status"] == "bad file"
    (problem,) = item["problems"]
    assert problem["field"] == "(yaml)" and problem["line"] == 5
    assert problem["message"].startswith("invalid YAML")
    _, out = explain(site, "broken.md", capsys)
    assert out.startswith("broken.md: not published: bad file: (yaml): invalid YAML")
    assert "(line 5)" in out.splitlines()[0]


def test_by_url_explains_every_file_with_that_link(site, capsys) -> None:
    # Different spelling of the same link: identity matching, not string matching.
    result = as_json(site, "HTTPS://Example.com:443/articles/1#top", capsys)
    statuses = {item["file"]: item["status"] for item in result["files"]}
    assert statuses == {"news/one.md": "published", "copy.md": "duplicate"}
    assert result["code"] == 0
    # A bad file has no article, but its text still names the link.
    result = as_json(site, "https://example.com/broken", capsys)
    assert [item["file"] for item in result["files"]] == ["broken.md"]
    assert result["files"][0]["status"] == "bad file"
    result = as_json(site, "https://example.com/never", capsys)
    assert result["files"][0]["status"] == "not found" and result["code"] == 1


def test_files_that_are_not_seeds(site, capsys, tmp_path: Path) -> None:
    found = explain(site, "notes.json", capsys)[1]
    assert "only files ending in .md, .markdown," in found
    assert ".txt, .html or .htm are read" in found
    (site[0] / "_index.md").write_text(seed_text(**article_fields(8)))
    assert "not _index.* (a Hugo section's list page)" in explain(site, "_index.md", capsys)[1]
    assert "no such file" in explain(site, "missing.md", capsys)[1]
    outside = write_seed(tmp_path / "elsewhere", "x.md", **article_fields(9))
    code, out = explain(site, str(outside), capsys)
    assert code == 1 and "not in the seed directory" in out
    assert "identity: https://example.com/articles/9" in out


def test_real_command(site) -> None:
    seeds, config = site
    result = subprocess.run(
        [sys.executable, "-m", "feedservice", "explain", "--seeds", str(seeds), "--config",
         str(config), "--format", "json", "copy.md"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["files"][0]["winner"] == "news/one.md"
    assert result.stderr == ""  # stdout is the answer; no log lines around it


def test_an_unreadable_seed_directory_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Unread")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    for seeds in (tmp_path / "missing", a_file):
        code = main(["explain", "--seeds", str(seeds), "--config", str(config), "a.md"])
        captured = capsys.readouterr()
        assert code == 2 and captured.out == ""
        (line,) = captured.err.splitlines()
        assert line.startswith("feedservice: ") and str(seeds) in line
    result = subprocess.run(
        [sys.executable, "-m", "feedservice", "explain", "--seeds", str(tmp_path / "missing"),
         "--config", str(config), "--format", "json", "https://example.com/articles/1"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr

"""`feedservice check`: one line per problem, a summary, exit 1 when anything is invalid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO, article_fields, write_config, write_seed


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedservice", "check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_check_clean_bundled_seeds() -> None:
    result = check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 articles published, 0 errors" in result.stdout


def test_check_reports_each_problem_with_path_field_and_line(seeds: Path, tmp_path: Path) -> None:
    write_seed(seeds, "good.md", **article_fields(1))
    write_seed(seeds, "dup.md", **article_fields(1, title="Same link"))
    (seeds / "broken.md").write_text("---\ntitle: ok\nfoo: [unclosed\n---\n")
    write_seed(
        seeds,
        "nodate.md",
        **{k: v for k, v in article_fields(2).items() if k != "publishedDateTime"},
    )
    config = write_config(tmp_path / "feeds.yaml")
    result = check("--seeds", str(seeds), "--config", str(config))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(
        line.startswith(f"{seeds}/broken.md: (yaml): invalid YAML") and "(line 4)" in line
        for line in lines
    ), lines
    assert f"{seeds}/nodate.md: publishedDateTime: is required" in lines
    assert any(
        line.startswith(f"{seeds}/good.md: webUrl: warning: duplicate of dup.md")
        or line.startswith(f"{seeds}/dup.md: webUrl: warning: duplicate of good.md")
        for line in lines
    ), lines
    assert lines[-1] == "checked 4 files: 1 articles published, 2 errors, 1 warnings"
    assert "SECRET" not in result.stdout


def test_check_reports_an_invalid_config(seeds: Path, tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("feeds:\n  - name: ok\n    title: T\n    topics: [a]\n    limit: 0\n")
    result = check("--seeds", str(seeds), "--config", str(config))
    assert result.returncode == 1
    assert f"{config}: feeds[0].limit: must be between 1 and 1000, got 0" in result.stdout

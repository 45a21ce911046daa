"""`feedservice check`: one line per problem, a summary, exit 1 when anything is invalid,
exit 2 (one line) when the seed directory cannot be read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
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
    # Clean seeds, and a sample config whose every topic the seeds carry: nothing to say.
    assert result.stdout.splitlines() == [
        "checked 2 files: 2 articles published, 0 drafts, 0 errors, 0 warnings"
    ]


def test_check_reports_each_problem_with_path_field_and_line(seeds: Path, tmp_path: Path) -> None:
    write_seed(seeds, "good.md", **article_fields(1))
    write_seed(seeds, "dup.md", **article_fields(1, title="Same link"))
    write_seed(seeds, "draft.md", **article_fields(3, published=False))
    (seeds / "broken.md").write_text("---\ntitle: ok\nfoo: [unclosed\n---\n")
    write_seed(
        seeds,
        "nodate.md",
        **{k: v for k, v in article_fields(2).items() if k != "publishedDateTime"},
    )
    config = write_config(tmp_path / "feeds.yaml", title="Checked")
    result = check("--seeds", str(seeds), "--config", str(config))
    assert result.returncode == 1, result.stderr
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
    assert not any("draft.md" in line for line in lines[:-1])  # a draft is not a problem
    assert lines[-1] == "checked 5 files: 1 articles published, 1 drafts, 2 errors, 1 warnings"
    assert "SECRET" not in result.stdout + result.stderr


def test_check_reports_an_invalid_config(seeds: Path, tmp_path: Path) -> None:
    write_seed(seeds, "good.md", **article_fields(1))
    config = tmp_path / "feeds.yaml"
    config.write_text("feeds:\n  - name: ok\n    title: T\n    topics: [a]\n    limit: 0\n")
    result = check("--seeds", str(seeds), "--config", str(config))
    assert result.returncode == 1, result.stderr
    assert f"{config}: feeds[ok].limit: must be between 1 and 1000, got 0" in result.stdout
    # The seeds are still checked, with the default settings.
    assert result.stdout.splitlines()[-1] == (
        "checked 1 files: 1 articles published, 0 drafts, 1 errors, 0 warnings"
    )


def test_check_an_unreadable_seed_directory_exits_2_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    config = write_config(tmp_path / "feeds.yaml", title="Unread")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    for seeds in (missing, a_file):
        for extra in ((), ("--format", "json")):
            result = check("--seeds", str(seeds), "--config", str(config), *extra)
            assert result.returncode == 2, result.stdout + result.stderr
            assert result.stdout == ""
            (line,) = result.stderr.splitlines()
            assert line.startswith("feedservice: ") and str(seeds) in line
            assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_check_a_directory_without_read_permission_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Locked")
    locked = tmp_path / "locked"
    write_seed(locked, "a.md", **article_fields(1))
    locked.chmod(0)
    try:
        result = check("--seeds", str(locked), "--config", str(config))
    finally:
        locked.chmod(0o755)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert str(locked) in line and "Permission denied" in line

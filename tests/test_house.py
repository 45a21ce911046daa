"""The shape of the code: easy to see and to change, and kept that way.

No import circles, no module over 400 lines, one URL grammar, one settings table,
options passed as arguments, one way to run other processes, conditional requests
decided by Werkzeug, and no dead code.
"""

from __future__ import annotations

import ast
import re
import subprocess

import pytest
from conftest import REPO, SHARED

from feedservice import settings

PACKAGE = REPO / "feedservice"
MAX_LINES = 400
# Production lines: 6,592 before the one-loader restructure (issue 15) took them below that;
# Jekyll and Hugo pages (issue 17) and scheduling and tombstones (issue 18) added about
# 1,000. Subscribers' feeds, provider feeds and search (issue 19) about 700 more.
# A budget, so that growth is a decision.
LINE_BUDGET = 8800
SOURCES = sorted(PACKAGE.rglob("*.py"))
# Used from outside the package: the console script, and the nginx config the tests and
# benchmarks serve an export with (documented for deployments).
ENTRY_POINTS = {"main", "nginx_conf"}


def source(relative: str) -> str:
    return (PACKAGE / relative).read_text(encoding="utf-8")


def modules_using(pattern: str) -> set[str]:
    found = set()
    for path in SOURCES:
        if re.search(pattern, path.read_text(encoding="utf-8")):
            found.add(path.relative_to(PACKAGE).as_posix())
    return found


def test_no_import_circles_and_no_module_over_400_lines() -> None:
    tool = SHARED / "tools" / "house"
    if not tool.exists():
        pytest.skip("../shared/tools/house is not beside the checkout")
    result = subprocess.run([str(tool), str(PACKAGE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "import circles: 0" in result.stdout
    assert "modules over 400 lines: 0" in result.stdout


def test_every_module_is_short_and_the_whole_within_its_budget() -> None:
    lengths = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in SOURCES}
    assert max(lengths.values()) <= MAX_LINES, max(lengths, key=lengths.__getitem__)
    assert sum(lengths.values()) < LINE_BUDGET


def test_one_url_grammar() -> None:
    """Only urls.py knows what a feed URL looks like: no other module matches or spells one."""
    assert modules_using(r"rss\|atom\|json") <= {"http/urls.py"}
    assert modules_using(r"""f["']/\{""") <= {"http/urls.py"}
    for user in ("http/app.py", "runtime/metrics.py", "runtime/export.py", "render/page.py"):
        assert "urls." in source(user), user


def test_one_settings_table() -> None:
    """Every key is defined once: the code reads FEEDSERVICE_* names from the table, and the
    docs carry the tables generated from it."""
    assert modules_using(r'"FEEDSERVICE_[A-Z]') == set()
    docs = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for table in settings.docs_tables().split("\n\n"):
        assert table in docs, "regenerate the tables: feedservice config --print-docs"


def test_options_travel_as_arguments_never_through_the_environment() -> None:
    writes = modules_using(r"os\.environ\[[^]]+\]\s*=|os\.environ\.(update|setdefault)|putenv")
    assert writes == {"runtime/metrics.py"}  # prometheus-client's own switch, set before any fork
    assert "os.environ[ENV_DIR] = " in source("runtime/metrics.py")


def test_one_way_to_run_other_processes() -> None:
    users = modules_using(r"\bmultiprocessing\b|ProcessPoolExecutor|os\.fork\b|subprocess")
    assert users == {"runtime/processes.py"}


def test_conditional_requests_are_decided_by_werkzeug() -> None:
    assert "is_resource_modified" in source("http/conditional.py")
    assert modules_using(r"If-None-Match|If-Modified-Since|HTTP_IF_") <= {"http/conditional.py"}


def test_no_dead_code() -> None:
    """Every top-level function and class is used somewhere in the package."""
    texts = {path: path.read_text(encoding="utf-8") for path in SOURCES}
    everything = "\n".join(texts.values())
    unused = []
    for path, text in texts.items():
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                uses = len(re.findall(rf"\b{node.name}\b", everything))
                if uses < 2 and node.name not in ENTRY_POINTS:
                    unused.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    assert unused == []

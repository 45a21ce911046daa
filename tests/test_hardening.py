"""Hardening: nothing lost, nothing hidden, no easy denial of service.

Each test tries the service as a careless admin or a hostile user would, through the
real command, a real server on loopback, or the real loader and app.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from conftest import (
    REPO,
    article_fields,
    seed_text,
    wait_for,
    write_config,
    write_seed,
)
from consumers import read_feed
from lxml import etree

from feedservice.runtime import publish
from feedservice.store.db import Store

pytestmark = pytest.mark.timeout(240)


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedservice", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "FEEDSERVICE_STATE_DIR": str(cwd / ".state-for-this-test")},
    )


# --- data loss ----------------------------------------------------------------------------


def test_build_into_the_current_directory_is_refused_and_deletes_nothing(
    tmp_path: Path, seeds: Path
) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    here = tmp_path / "work"
    here.mkdir()
    (here / "precious.txt").write_text("not ours")
    result = subprocess.run(
        [sys.executable, "-m", "feedservice", "build", "--out", ".", "--seeds", str(seeds),
         "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, cwd=here, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "is not a feedservice build" in result.stderr and "Traceback" not in result.stderr
    assert (here / "precious.txt").read_text() == "not ours"


MOJIBAKE = (
    '---\ntitle: "Google\u00e2\u20ac\u2122s \u00e2\u20ac\u0153quoted\u00e2\u20ac\x9d model"\n'
    'excerpt: "bell\x07 and escape\x1b inside"\n'
    "publishedDateTime: 2021-11-12T05:20:00Z\nwebUrl: https://example.com/mojibake\n---\n"
)


def test_control_characters_and_mis_decoded_text_are_repaired_served_and_reported(
    seeds: Path, tmp_path: Path, live_server_factory
) -> None:
    (seeds / "mojibake.md").write_bytes(MOJIBAKE.encode("utf-8"))
    config = write_config(tmp_path / "feeds.yaml", reload_interval=1)
    server = live_server_factory(seeds, config)
    _, items = read_feed(server.get("/feeds/all.rss")[2], "rss")
    assert [item.title for item in items] == ["Google\u2019s \u201cquoted\u201d model"]
    result = run("check", "--seeds", str(seeds), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    warnings = [line for line in result.stdout.splitlines() if "(encoding)" in line]
    assert len(warnings) == 2
    assert "(line 2)" in warnings[0] and "(line 3)" in warnings[1]


# --- wrong answers that look healthy --------------------------------------------------------


def test_a_seed_directory_gone_while_serving_keeps_the_last_generation_degraded(
    seeds: Path, tmp_path: Path, live_server_factory
) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    config = write_config(tmp_path / "feeds.yaml", reload_interval=1)
    server = live_server_factory(seeds, config)
    etag = server.get("/feeds/all.rss")[1]["ETag"]
    shutil.rmtree(seeds)
    wait_for(lambda: server.health()["status"] == "degraded", "a degraded status")
    health = server.health()
    assert health["articles"] == 1 and "cannot be listed" in health["seeds_error"]
    assert server.get("/feeds/all.rss")[1]["ETag"] == etag  # the last generation, as it was


def test_serve_and_check_refuse_a_missing_seed_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for command in (["serve", "--port", "1"], ["check"], ["explain", "x.md"]):
        result = run(*command, "--seeds", str(missing), cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.strip().count("\n") == 0 and str(missing) in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_an_unreadable_seed_directory_stops_serve_for_a_user_who_cannot_read_it(
    tmp_path: Path,
) -> None:
    """As an ordinary user (nobody), a seed directory of mode 000 cannot be listed."""
    if not _nobody_can_run_feedservice():
        pytest.skip("this Python or its packages are not readable by an ordinary user")
    locked = tmp_path / "locked"
    write_seed(locked, "a.md", **article_fields(1))
    locked.chmod(0)
    tmp_path.chmod(0o755)
    try:
        state = ["--state-dir", str(tmp_path / "nobody-state")]
        for command in (["serve", "--port", "1", *state], ["check"]):
            result = subprocess.run(
                ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                 "-m", "feedservice", *command, "--seeds", str(locked)],
                capture_output=True, text=True, cwd=REPO, timeout=60,
            )  # fmt: skip
            assert result.returncode == 2, result.stderr
            assert "cannot be read" in result.stderr and "Traceback" not in result.stderr
    finally:
        locked.chmod(0o755)


def _nobody_can_run_feedservice() -> bool:
    probe = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
         "-c", "import feedservice.runtime.server"],
        capture_output=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    return probe.returncode == 0


def test_an_emptied_config_keeps_the_last_good_one_and_a_save_settles_first(
    seeds: Path, tmp_path: Path, site_factory
) -> None:
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))
    feeds = [{"name": "ai", "title": "AI", "topics": ["AI"]}]
    config = write_config(tmp_path / "feeds.yaml", title="Good", feeds=feeds)
    site = site_factory(seeds, config, config_settle=1.0)
    config.write_text("")  # emptied (a truncated save): an error, never "all defaults"
    time.sleep(1.1)
    assert site.reload() is not None
    health = json.loads(site.get("/healthz").data)
    assert health["status"] == "degraded" and "is empty" in health["config_error"]
    assert site.get("/feeds/ai.rss").status_code == 200  # the last good config's feed
    write_config(config, title="Renamed", feeds=feeds)  # a new save: too fresh to trust
    assert site.reload() is None  # not read yet: nothing changed
    assert json.loads(site.get("/healthz").data)["status"] == "degraded"
    time.sleep(1.1)  # once it has stayed unchanged for config_settle, it applies
    site.reload()
    health = json.loads(site.get("/healthz").data)
    assert health["status"] == "ok"
    title = etree.fromstring(site.get("/feeds.opml").data).findtext("head/title")
    assert title.startswith("Renamed")


def test_pages_and_lists_are_never_dated_later_than_now_and_move_with_an_edit(
    seeds: Path, config_file: Path, site_factory
) -> None:
    write_seed(seeds, "far.md", **article_fields(1, publishedDateTime="9999-12-31T00:00:00Z"))
    write_seed(seeds, "old.md", **article_fields(2, publishedDateTime="2020-01-01T00:00:00Z"))
    site = site_factory(seeds, config_file)
    paths = ["/", "/feeds/", "/topics/", "/topics/ai/", "/feeds.opml", "/topics/ai.rss"]
    before = {}
    for path in paths:
        response = site.get(path)
        modified = parsedate_to_datetime(response.headers["Last-Modified"])
        assert modified.timestamp() <= time.time() + 1, path
        before[path] = response.headers["Last-Modified"]
        since = site.get(path, headers={"If-Modified-Since": before[path]})
        assert since.status_code == 304, path
    time.sleep(1.1)  # HTTP dates have one-second resolution
    edited = article_fields(2, title="Edited", publishedDateTime="2020-01-01T00:00:00Z")
    write_seed(seeds, "old.md", **edited)
    assert site.reload() is not None
    for path in paths:
        response = site.get(path, headers={"If-Modified-Since": before[path]})
        assert response.status_code == 200, path  # an edit moved it forward
        assert response.headers["Last-Modified"] != before[path], path


# --- secrets --------------------------------------------------------------------------------

SECRETS = ["leaf-one-7731", "leaf-two-9902", "leaf-three-4417"]


def secured_files(seeds: Path) -> None:
    mapping = {"token": SECRETS[0], "nested": [SECRETS[1], {"deep": SECRETS[2]}]}
    bad = article_fields(1, secured=mapping, title=["not", "text"], webUrl=SECRETS[0])
    (seeds / "mapping.md").write_text(seed_text(**bad))
    listed = article_fields(2, secured=[SECRETS[1]], publishedDateTime=SECRETS[1])
    (seeds / "list.md").write_text(seed_text(**listed))
    quoted = article_fields(3, secured={"k": SECRETS[2]}, excerpt={"no": SECRETS[2]})
    (seeds / "quoted.md").write_text(seed_text(**quoted))


def test_secured_of_any_shape_never_reaches_any_output(
    seeds: Path, tmp_path: Path, live_server_factory
) -> None:
    secured_files(seeds)
    write_seed(seeds, "good.md", **article_fields(4))
    config = write_config(tmp_path / "feeds.yaml", reload_interval=1)
    server = live_server_factory(seeds, config)
    outputs = [json.dumps(server.health()), server.log()]
    for path in ("/", "/feeds/all.rss", "/feeds/all.atom", "/feeds/all.json", "/metrics"):
        outputs.append(server.get(path)[2].decode("utf-8", "replace"))
    for command in (["check"], ["check", "--format", "json"],
                    ["explain", str(seeds / "mapping.md")], ["explain", str(seeds / "list.md")],
                    ["explain", "--format", "json", str(seeds / "quoted.md")]):  # fmt: skip
        result = run(command[0], "--seeds", str(seeds), "--config", str(config), *command[1:],
                     cwd=tmp_path)  # fmt: skip
        outputs.append(result.stdout + result.stderr)
    build = run("build", "--out", str(tmp_path / "site"), "--seeds", str(seeds),
                "--config", str(config), cwd=tmp_path)  # fmt: skip
    outputs.append(build.stdout + build.stderr)
    text = "\n".join(outputs)
    assert "[redacted]" in text  # the messages that quoted a secret still say something
    for secret in SECRETS:
        assert secret not in text


# --- denial of service ----------------------------------------------------------------------


def test_the_index_stays_small_with_ten_thousand_topics(seeds: Path, site_factory) -> None:
    for n in range(200):  # 50 topics each: 10,000 topics
        topics = [f"Topic {n:03d}-{t:02d}" for t in range(50)]
        write_seed(seeds, f"{n:03d}.md", **article_fields(n, topics=topics))
    site = site_factory(seeds, None)
    assert json.loads(site.get("/healthz").data)["topics"] == 10_000
    index = site.get("/")
    assert len(index.data) < 200_000
    document = etree.HTML(index.data)
    alternates = document.xpath("//link[@rel='alternate']/@href")
    assert sorted(alternates) == ["/feeds/all.atom", "/feeds/all.json", "/feeds/all.rss"]
    forms = {form.get("action"): form for form in document.xpath("//form[@role='search']")}
    assert forms.keys() == {"/topics/", "/search/"}  # a topic finder and a search box
    assert all(form.get("method") == "get" for form in forms.values())  # without JavaScript
    assert not document.xpath("//script")
    found = site.get("/topics/?q=topic+123-4")
    names = etree.HTML(found.data).xpath("//table//th[@scope='row']/a/text()")
    assert names == [f"Topic 123-{t}" for t in range(40, 50)]
    listing = site.get("/topics/?page=100")  # every topic is on a list page, A to Z
    assert listing.status_code == 200 and len(listing.data) < 200_000
    assert "Topic 199-49" in listing.get_data(as_text=True)
    assert site.get("/topics/?page=101").status_code == 404


def test_five_hundred_configured_feeds_are_served_and_removing_them_drops_them(
    seeds: Path, tmp_path: Path, site_factory
) -> None:
    for n in range(40):
        write_seed(seeds, f"{n:02d}.md", **article_fields(n, topics=[f"T{n % 10}", "AI"]))
    feeds = [{"name": f"f{i}", "title": f"F{i}", "topics": [f"T{i % 10}"]} for i in range(500)]
    config = write_config(tmp_path / "feeds.yaml", feeds=feeds)
    site = site_factory(seeds, config)
    for i in (0, 250, 499):  # rendered by the loader or, past its budget, by the worker
        _, items = read_feed(site.get(f"/feeds/f{i}.atom").data, "atom")
        assert len(items) == 4
    assert len(site.get("/").data) < 200_000
    write_config(config, feeds=feeds[:1])
    assert site.reload() is not None
    assert site.get("/feeds/f1.atom").status_code == 404
    assert json.loads(site.get("/healthz").data)["feeds"] == 2 + 10 + 1  # all, f0, topics


def test_feeds_past_the_render_budget_are_left_to_the_workers_until_they_change(
    seeds: Path, tmp_path: Path, site_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload renders for at most RENDER_SECONDS; what it leaves is served by the workers
    on request, adds no reloads of its own, is not re-rendered by a later change that does
    not touch it (a one-file change still re-renders only the feeds that hold it), and is
    rendered between reloads into exactly the bytes the workers served."""
    monkeypatch.setattr(publish, "RENDER_SECONDS", 0.0)  # nothing fits: every page is left
    for n in range(12):
        write_seed(seeds, f"{n:02d}.md", **article_fields(n, topics=[f"T{n % 4}"]))
    feeds = [{"name": f"f{i}", "title": f"F{i}", "topics": [f"T{i % 4}"]} for i in range(40)]
    site = site_factory(seeds, write_config(tmp_path / "feeds.yaml", feeds=feeds))
    assert site.store.document("/feeds/f7.atom") is None  # left to the workers
    _, items = read_feed(site.get("/feeds/f7.atom").data, "atom")
    assert len(items) == 3
    assert site.reload() is None  # nothing changed: no reload renders what was left
    monkeypatch.setattr(publish, "RENDER_SECONDS", 60.0)
    write_seed(seeds, "00.md", **article_fields(0, topics=["T0"], title="Edited"))
    reloaded = site.reload()
    assert reloaded is not None
    holding = {"feeds/all", "topics/t0", *(f"feeds/f{i}" for i in range(0, 40, 4))}
    holding.add("providers/example.com")
    assert set(reloaded.changed_feeds) == holding
    assert reloaded.rendered_feeds == len(holding)  # the edited feeds only, not the rest
    assert site.store.document("/feeds/f4.atom") is not None
    assert site.store.document("/feeds/f7.atom") is None
    _, items = read_feed(site.get("/feeds/f4.atom").data, "atom")
    assert "Edited" in [item.title for item in items]
    served = site.get("/feeds/f7.atom")
    while site.loader.render_deferred(0.01):  # between reloads, a few at a time
        pass
    stored = site.store.document("/feeds/f7.atom")
    assert stored is not None and stored.body == served.data
    assert f'"{stored.etag}"' == served.headers["ETag"]
    assert site.reload() is None  # and that was no reload


def test_a_live_service_renders_what_a_reload_left_between_reloads(
    seeds: Path, tmp_path: Path, live_server_factory
) -> None:
    """With 2,000 configured feeds the first reload leaves most pages; the loader renders
    them afterwards without committing another generation, and serves them meanwhile."""
    for n in range(20):
        write_seed(seeds, f"{n:02d}.md", **article_fields(n, topics=[f"T{n % 5}"]))
    feeds = [{"name": f"f{i}", "title": f"F{i}", "topics": [f"T{i % 5}"]} for i in range(2000)]
    config = write_config(tmp_path / "feeds.yaml", feeds=feeds, reload_interval=3600)
    state = tmp_path / "state"
    server = live_server_factory(seeds, config, extra_args=("--state-dir", str(state)))
    generation = server.health()["generation"]
    assert server.get("/feeds/f1999.atom")[0] == 200  # before it is rendered: by a worker
    store = Store.in_dir(state, writable=False)
    try:
        wanted = [f"/feeds/f{i}.{fmt}" for i in range(0, 2000, 97) for fmt in ("rss", "json")]
        wait_for(lambda: all(store.document(key) for key in wanted), "the left pages", 120)
    finally:
        store.close()
    assert server.health()["generation"] == generation


# --- HTTP details ---------------------------------------------------------------------------


def test_no_redirect_is_built_from_the_host_header(seeds: Path, config_file: Path, site_factory):
    write_seed(seeds, "a.md", **article_fields(1))
    site = site_factory(seeds, config_file)
    for path in ("//topics//ai.rss", "//", "/static//style.css", "/topics", "//healthz"):
        response = site.client.get(path, headers={"Host": "evil.example"})
        assert "evil.example" not in response.headers.get("Location", ""), path
        assert response.status_code in (200, 404), (path, response.status_code)


# --- a newcomer's first minutes -------------------------------------------------------------


def test_a_default_serve_prints_no_warning_and_says_once_what_it_serves(
    tmp_path: Path, live_server_factory
) -> None:
    server = live_server_factory(REPO / "seeds", REPO / "config" / "feeds.yaml")
    wait_for(lambda: "serving " in server.log(), "the serving line", timeout=10)
    lines = [line for line in server.log().splitlines() if line.strip()]
    assert [line for line in lines if "WARNING" in line or "ERROR" in line] == []
    assert [line for line in lines if "granian" in line] == []  # (its chatter: debug only)
    serving = [line for line in lines if " serving " in line]
    assert len(serving) == 1
    # 3 configured feeds, 2 topics (ai, machine-learning) and 2 providers.
    assert f"serving 2 articles in 7 feeds at {server.url}/" in serving[0]


def test_check_reports_every_problem_of_a_file_in_one_run(seeds: Path, tmp_path: Path) -> None:
    (seeds / "broken.md").write_text(
        "---\ntitle: [a, list]\npublishedDateTime: sometime\nquality: lots\n---\n"
    )
    result = run("check", "--seeds", str(seeds), "--format", "json", cwd=tmp_path)
    assert result.returncode == 1
    fields = sorted(f["field"] for f in json.loads(result.stdout)["findings"])
    assert fields == ["publishedDateTime", "quality", "title", "webUrl"]


def test_an_access_log_can_be_switched_on_in_the_log_format(
    seeds: Path, config_file: Path, live_server_factory
) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    server = live_server_factory(
        seeds, config_file, extra_args=("--access-log", "--log-format", "json")
    )
    server.get("/feeds/all.rss?page=1")

    def logged() -> list[dict[str, object]]:
        found = []
        for line in server.log().splitlines():
            entry = json.loads(line)  # every line is one JSON object
            if "/feeds/all.rss" in str(entry.get("message", "")):
                found.append(entry)
        return found

    wait_for(logged, "an access log line", timeout=10)
    assert logged()[0]["logger"] == "granian.access"


def test_the_readme_quickstart_makes_a_virtual_environment() -> None:
    text = (REPO / "README.md").read_text()
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [line for line in quickstart.splitlines() if "pip install" in line]
    assert commands and all("python -m venv" in line for line in commands), commands

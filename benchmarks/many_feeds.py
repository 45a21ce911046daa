"""Issue 16: a reload with 5,000 configured feeds, and the memory they leave behind.

    python benchmarks/many_feeds.py               # 20,000 files, 5,000 feeds, 2 cycles (~5 min)
    python benchmarks/many_feeds.py --cycles 1    # one cycle

The issue: a config with 5,000 feeds made each reload take about 60 s at full CPU, and
worker memory grew from 69 MB to 950 MB and stayed there after the config was restored.
Targets: a reload with 5,000 configured feeds over 20,000 articles takes at most 5 s, and
memory returns to within 25 % of what it was once they are removed.

One `feedservice serve` (2 workers, --reload-interval 1, --config-settle 0.2) on the
20,000-file corpus and a fresh state directory, with a config that sets only the title.
Its memory once every page-1 document has been served is the reference (the baseline).
Then, `--cycles` times: the config is replaced (written beside it and renamed into place)
by one with 5,000 feeds; the reload that applies it is timed (healthz `duration_ms`, and
wall time from the rename), the reloads that follow it (rendering the documents left
pending) are counted until the generation stops advancing, 2,000 distinct feed URLs are
requested and memory is read; then the small config goes back, its documents are
requested again and memory is read after a few seconds. Two cycles, so that growth that
stays shows as growth from one cycle to the next.

Processes, requests, memory readings and the stopping of the service's process group come
from run.py. Results go to benchmarks/results/<time>-many-feeds.json (and
latest-many-feeds.json), as run.py writes its own.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]  # run.py and generate_corpus; feedservice

from generate_corpus import TOPICS, ensure_corpus  # noqa: E402
from run import (  # noqa: E402
    CORPORA,
    LIVE,
    RESULTS,
    Group,
    Server,
    _exercise,
    _iso_seconds,
    _on_signal,
    _stat_fields,
    _status_kb,
    clean_env,
    free_port,
    get,
    group_memory,
    log,
    run_header,
)

from feedservice.store.db import Store  # noqa: E402

MODE = "many-feeds"
SMALL_CONFIG = 'title: "Many feeds benchmark"\n'
CONFIG_SETTLE_S = 0.2  # the loader applies a config file left alone this long
INTERVAL_S = 1
POLL_S = 0.02
TIMEOUT_S = 900.0  # the reload took ~60 s: far above it, still an end
KINDS = ("supervisor", "loader", "workers", "loader pool", "resource tracker", "other")
TARGETS = {
    "reload_s": ("reload that applies 5,000 feeds, s (healthz duration)", "<=", 5.0),
    "restored_ratio": ("service VmRSS restored / baseline", "<=", 1.25),
}


class ConfiguredServer(Server):
    """run.Server with a config file of our own (run.Server always passes
    config/feeds.yaml) and a short config settle time, so a new config applies at the
    next reload rather than seconds later."""

    def __init__(self, seeds: Path, state: Path, config: Path, *, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = state
        command = [sys.executable, "-m", "feedservice", "serve", "--seeds", str(seeds)]
        command += ["--config", str(config), "--port", str(self.port)]
        command += ["--workers", str(workers), "--reload-interval", str(INTERVAL_S)]
        command += ["--state-dir", str(state), "--config-settle", str(CONFIG_SETTLE_S)]
        Group.__init__(self, command, clean_env(FEEDSERVICE_BASE_URL=self.url))

    def healthy(self) -> dict[str, Any]:
        """/healthz, which must answer: a service that stopped answering is a failure."""
        if self.process.poll() is not None:
            raise RuntimeError(f"server exited:\n{self.output()}")
        health = self.health()
        if health is None:
            raise RuntimeError(f"/healthz did not answer 200:\n{self.output()}")
        return health


# --- configs ---------------------------------------------------------------------------------


def many_feeds_config(count: int, seed: int = 16) -> str:
    """The issue's shape, deterministic: each feed carries 1-3 of the corpus's topics; every
    5th leaves one out (exclude_topics), every 7th sets min_quality, every 50th carries
    every article. JSON values are YAML, and quote the non-ASCII topic names safely."""
    rng = random.Random(seed)
    pool = ["AI", *(name for name, _ in TOPICS)]
    lines = [SMALL_CONFIG.rstrip(), "feeds:"]
    for number in range(count):
        topics = rng.sample(pool, rng.randint(1, 3))
        lines += [f"  - name: f{number}", f'    title: "Feed {number}"']
        lines.append(f"    topics: {json.dumps(['*'] if number % 50 == 0 else topics)}")
        if number % 5 == 0:
            left_out = [topic for topic in pool if topic not in topics]
            lines.append(f"    exclude_topics: {json.dumps([rng.choice(left_out)])}")
        if number % 7 == 0:
            lines.append(f"    min_quality: {rng.randint(20, 80)}")
    return "\n".join(lines) + "\n"


def replace_config(path: Path, text: str) -> float:
    """Write `text` beside `path` and rename it into place (as a deployment would, so the
    loader never reads half a file); the time of the rename."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return time.time()


# --- memory by process kind ------------------------------------------------------------------


def parent_of(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else -1


def kind_of(pid: int, pgid: int, command: str, loaders: set[int]) -> str:
    """Which part of the service a process is. The supervisor leads the group; granian forks
    the workers from it (same command line); the loader is spawned by multiprocessing
    (spawn_main), and its own render pool is spawned by the loader."""
    parent = parent_of(pid)
    if pid == pgid:
        return "supervisor"
    if "multiprocessing.resource_tracker" in command:
        return "resource tracker"
    if "spawn_main" in command:
        return "loader" if parent == pgid else "loader pool" if parent in loaders else "other"
    if "feedservice" in command and parent == pgid:
        return "workers"
    return "other"


# Beside VmRSS: the peak, and whether resident memory is heap (anonymous: Python objects,
# SQLite's page cache, malloc arenas) or mapped files (code, the store if it were mapped).
FIELDS = {"hwm_kb": "VmHWM:", "anon_kb": "RssAnon:", "file_kb": "RssFile:"}
SUMMED = ("rss_kb", "pss_kb", "anon_kb", "file_kb")


def memory(server: ConfiguredServer) -> dict[str, Any]:
    """run.group_memory (VmRSS and Pss of every process), each process labelled with its
    kind, its peak RSS (VmHWM) and its anonymous and file-backed RSS, and sums per kind:
    which kind holds memory that does not return, and whether it is heap."""
    found = group_memory(server.pgid)
    processes = found["processes"]
    loaders = {
        process["pid"]
        for process in processes
        if "spawn_main" in process["command"] and parent_of(process["pid"]) == server.pgid
    }
    by_kind: dict[str, dict[str, Any]] = {}
    for process in processes:
        process["kind"] = kind_of(process["pid"], server.pgid, process["command"], loaders)
        for key, field in FIELDS.items():
            process[key] = _status_kb(process["pid"], "status", field)
        row = by_kind.setdefault(process["kind"], {key: 0 for key in SUMMED} | {"pids": []})
        for key in SUMMED:
            row[key] += process[key]
        row["pids"].append(process["pid"])
    found["by_kind"] = by_kind
    for key in ("anon_kb", "file_kb"):
        found[key] = sum(process[key] for process in processes)
    return found


def ratio(after: dict[str, Any], before: dict[str, Any], key: str = "rss_kb") -> float:
    return after[key] / before[key] if before[key] else float("nan")


# --- reloads ---------------------------------------------------------------------------------


def wait_feeds(server: ConfiguredServer, feeds: int, since: float) -> dict[str, Any]:
    """Poll /healthz until it reports `feeds` feeds: the reload that applied the config.
    Its duration is the loader's own (healthz `last_reload_duration_ms`); the wall times run
    from the rename (`since`) to the commit (healthz `last_reload`) and to the poll that saw
    it, and include the settle time and the wait for the next reload."""
    before = server.healthy()["generation"]
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        health = server.healthy()
        if health["feeds"] == feeds:
            seen = time.time()
            return {
                "generation": health["generation"],
                "generations_passed": health["generation"] - before,  # 1: its duration is its own
                "duration_s": health["last_reload_duration_ms"] / 1000,
                "write_to_commit_s": _iso_seconds(health["last_reload"]) - since,
                "write_to_seen_s": seen - since,
                "feeds": health["feeds"],
            }
        time.sleep(POLL_S)
    raise RuntimeError(f"/healthz never reported {feeds} feeds:\n{server.output()}")


def follow_up(server: ConfiguredServer, generation: int, quiet: float) -> dict[str, Any]:
    """The reloads after a big one: the loader renders at most a budget of documents per
    reload and commits the rest over the next ones, so the generation keeps advancing with
    no change to seeds or config. Count them until none comes for `quiet` seconds (or two
    of the last reload's durations, if longer)."""
    started = time.monotonic()
    reloads: list[dict[str, Any]] = []
    last_advance = started
    last_duration = 0.0
    while True:
        now = time.monotonic()
        if now - last_advance > max(quiet, 2 * last_duration + INTERVAL_S):
            break
        if now - started > TIMEOUT_S:
            raise RuntimeError(f"the generation kept advancing for {TIMEOUT_S:.0f} s")
        health = server.healthy()
        if health["generation"] > generation:
            last_duration = health["last_reload_duration_ms"] / 1000
            reloads.append(
                {
                    "generation": health["generation"],
                    "passed": health["generation"] - generation,
                    "duration_s": last_duration,
                    "after_s": now - started,
                }
            )
            generation, last_advance = health["generation"], now
        time.sleep(POLL_S)
    return {
        "reloads": sum(row["passed"] for row in reloads),
        "seconds": reloads[-1]["after_s"] if reloads else 0.0,  # until the last one committed
        "durations_s": [row["duration_s"] for row in reloads],
        "rows": reloads,
        "generation": generation,
    }


def request_feeds(server: ConfiguredServer, count: int, seed: int = 16) -> dict[str, Any]:
    """`count` distinct URLs of the configured feeds: formats in turn, page 1, and page 2 for
    every 5th where the feed has one. One connection each (urllib), so the kernel spreads
    them over the workers."""
    store = Store.in_dir(server.state, writable=False)
    try:
        feeds = [meta for meta in store.feeds() if meta["kind"] == "feeds"]
    finally:
        store.close()
    rng = random.Random(seed)
    chosen = rng.sample(feeds, min(count, len(feeds)))
    urls = []
    for number, meta in enumerate(chosen):
        fmt = ("rss", "atom", "json")[number % 3]
        page2 = number % 5 == 4 and meta["count"] > meta["limit"]
        urls.append(f"/feeds/{meta['name']}.{fmt}" + ("?page=2" if page2 else ""))
    statuses: Counter[int] = Counter()
    latencies = []
    for url in urls:
        started = time.perf_counter()
        status = get(server.url + url)[0]
        latencies.append(time.perf_counter() - started)
        statuses[status] += 1
    if set(statuses) != {200}:
        log(f"  answers other than 200: {dict(statuses)}")
    latencies.sort()
    return {
        "urls": len(urls),
        "page_2": sum("page=2" in url for url in urls),
        "statuses": {str(status): n for status, n in statuses.items()},
        "median_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


def code_version() -> dict[str, Any]:
    """The commit measured, and feedservice/ files changed from it: others edit the code
    while benchmarks run, and two runs compare only when these agree."""

    def git(*args: str) -> str:
        found = subprocess.run(["git", *args], cwd=BENCH.parent, capture_output=True, text=True)
        return found.stdout.rstrip()

    changed = git("status", "--porcelain", "--", "feedservice").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "changed": [line[3:] for line in changed]}


# --- the run ---------------------------------------------------------------------------------


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    corpus = ensure_corpus(CORPORA, args.size)
    config = work / "feeds.yaml"
    replace_config(config, SMALL_CONFIG)
    big = many_feeds_config(args.feeds)
    server = ConfiguredServer(corpus, work / "state", config, workers=args.workers)
    try:
        _, health = server.wait_ready(timeout=TIMEOUT_S)
        first = follow_up(server, health["generation"], args.quiet)  # the cold load's tail
        health = server.healthy()
        small_feeds, articles = health["feeds"], health["articles"]
        log(
            f"ready: {articles:,} articles, {small_feeds} feeds (generation {health['generation']})"
        )
        warm = _exercise(server, args.workers)
        time.sleep(args.settle)
        baseline = memory(server)
        log(f"baseline: {baseline['rss_kb'] / 1024:.0f} MB VmRSS, after {warm} requests")
        cycles = []
        for cycle in range(1, args.cycles + 1):
            row: dict[str, Any] = {"cycle": cycle}
            wrote = replace_config(config, big)
            row["reload"] = reload = wait_feeds(server, small_feeds + args.feeds, wrote)
            row["follow_up"] = follow = follow_up(server, reload["generation"], args.quiet)
            log(
                f"cycle {cycle}: {args.feeds:,} feeds applied in {reload['duration_s']:.2f} s "
                f"({reload['write_to_commit_s']:.2f} s from the write); then "
                f"{follow['reloads']} reloads over {follow['seconds']:.1f} s"
            )
            row["requests"] = request_feeds(server, args.requests)
            time.sleep(args.settle)
            row["memory_loaded"] = memory(server)
            wrote = replace_config(config, SMALL_CONFIG)
            row["restore"] = wait_feeds(server, small_feeds, wrote)
            row["restore_follow_up"] = follow_up(server, row["restore"]["generation"], args.quiet)
            row["restore_requests"] = _exercise(server, args.workers)
            time.sleep(args.settle)
            row["memory_restored"] = memory(server)
            log(
                f"  VmRSS {row['memory_loaded']['rss_kb'] / 1024:.0f} MB with the feeds, "
                f"{row['memory_restored']['rss_kb'] / 1024:.0f} MB restored "
                f"(baseline {baseline['rss_kb'] / 1024:.0f} MB)"
            )
            cycles.append(row)
    finally:
        server.stop()
    return {
        "files": len([name for name in os.listdir(corpus) if not name.startswith(".")]),
        "articles": articles,
        "small_feeds": small_feeds,
        "cold_load_follow_up": first,
        "baseline_requests": warm,
        "baseline": baseline,
        "cycles": cycles,
    }


def kinds_table(
    results: dict[str, Any],
    keys: tuple[str, str] = ("rss_kb", "pss_kb"),
    title: str = "VmRSS / Pss, MB",
) -> list[str]:
    """Memory per process kind (MB, two figures a cell): baseline, then each cycle with the
    feeds and restored."""
    columns = [("baseline", results["baseline"])]
    for row in results["cycles"]:
        columns += [
            (f"feeds #{row['cycle']}", row["memory_loaded"]),
            (f"restored #{row['cycle']}", row["memory_restored"]),
        ]
    lines = [f"{title:<22}" + "".join(f"{name:>18}" for name, _ in columns)]

    def cell(found: dict[str, Any]) -> str:
        return f"{found[keys[0]] / 1024:.0f} / {found[keys[1]] / 1024:.0f}"

    empty = dict.fromkeys(keys, 0)
    lines.append(f"{'service':<22}" + "".join(f"{cell(found):>18}" for _, found in columns))
    for kind in KINDS:
        if any(kind in found["by_kind"] for _, found in columns):
            cells = [cell(found["by_kind"].get(kind, empty)) for _, found in columns]
            lines.append(f"{kind:<22}" + "".join(f"{text:>18}" for text in cells))
    return lines


def summarize(results: dict[str, Any]) -> None:
    """The targets (the worst cycle) and the ratios to the baseline, per process kind."""
    baseline, cycles = results["baseline"], results["cycles"]
    reload_s = max(row["reload"]["duration_s"] for row in cycles)
    restored = max(ratio(row["memory_restored"], baseline) for row in cycles)
    results["reload_s"] = {"ratio": reload_s, "seconds": reload_s}
    # No target of its own, but the same reload in reverse: 5,000 feeds removed.
    results["restore_reload_s"] = [row["restore"]["duration_s"] for row in cycles]
    results["restored_ratio"] = {
        "ratio": restored,
        "pss_ratio": max(ratio(row["memory_restored"], baseline, "pss_kb") for row in cycles),
        "by_kind": {
            kind: [
                ratio(row["memory_restored"]["by_kind"][kind], baseline["by_kind"][kind])
                for row in cycles
                if kind in row["memory_restored"]["by_kind"]
            ]
            for kind in baseline["by_kind"]
        },
    }
    for key, (_, op, target) in TARGETS.items():
        value = results[key]["ratio"]
        results[key]["met"] = value <= target if op == "<=" else value >= target


def report(results: dict[str, Any], path: Path) -> None:
    print()
    print(
        f"{results['files']:,} files, {results['articles']:,} articles, "
        f"{results['workers']} workers"
    )
    print(
        f"{'cycle':<7}{'reload s':>10}{'write→commit s':>16}{'then reloads':>14}{'over s':>8}"
        f"{'restore reload s':>18}{'then reloads':>14}"
    )
    for row in results["cycles"]:
        reload, follow = row["reload"], row["follow_up"]
        print(
            f"{row['cycle']:<7}{reload['duration_s']:>10.2f}{reload['write_to_commit_s']:>16.2f}"
            f"{follow['reloads']:>14}{follow['seconds']:>8.1f}"
            f"{row['restore']['duration_s']:>18.2f}{row['restore_follow_up']['reloads']:>14}"
        )
    print()
    print("\n".join(kinds_table(results)))
    print()
    print("\n".join(kinds_table(results, ("anon_kb", "file_kb"), "RssAnon / RssFile, MB")))
    print()
    for key, (label, op, target) in TARGETS.items():
        found = results[key]
        verdict = "met" if found["met"] else "MISSED"
        print(f"{label:<56}{op} {target:<6g}{found['ratio']:>8.2f}  {verdict}")
    kinds = results["restored_ratio"]["by_kind"]
    shown = ", ".join(f"{kind} {max(values):.2f}" for kind, values in kinds.items() if values)
    print(f"restored / baseline by kind (VmRSS, worst cycle): {shown}")
    print(f"\n{results['seconds']:.0f} s; results in {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000, help="corpus files")
    parser.add_argument("--feeds", type=int, default=5000, help="configured feeds")
    parser.add_argument("--cycles", type=int, default=2, help="big config / restore cycles")
    parser.add_argument("--requests", type=int, default=2000, help="feed URLs per cycle")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=5.0, help="s before reading memory")
    parser.add_argument("--quiet", type=float, default=4.0, help="s without a new generation")
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):  # stop the service on the way out
        signal.signal(signum, _on_signal)
    started = time.perf_counter()
    settings = {**vars(args), "interval_s": INTERVAL_S, "config_settle_s": CONFIG_SETTLE_S}
    results: dict[str, Any] = {
        **run_header(MODE, settings, TARGETS),
        "workers": args.workers,
        "code": code_version(),
    }
    try:
        with tempfile.TemporaryDirectory(prefix="feedservice-many-feeds-") as temp:
            results.update(measure(args, Path(temp)))
    finally:
        for group in list(LIVE):
            group.stop()
    results["seconds"] = time.perf_counter() - started
    summarize(results)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}-{MODE}.json"
    text = json.dumps(results, indent=2) + "\n"
    path.write_text(text)
    (RESULTS / f"latest-{MODE}.json").write_text(text)
    report(results, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

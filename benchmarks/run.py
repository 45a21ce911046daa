"""The whole benchmark suite, each figure a ratio to a reference measured in the same run.

    python benchmarks/run.py            # full: corpora up to 100k files (~10 minutes)
    python benchmarks/run.py --quick    # small corpora and short wrk runs (< 2 minutes)

References: nginx serving the same bytes as static files (started here on a
loopback port, with gzip_static), a single-process libyaml parse of the same
front matter, and a bare scandir+stat pass. Results, with their references,
go to benchmarks/results/<time>-<mode>.json; a full run also rewrites the
table and plot in BENCHMARKS.md. Needs: nginx and wrk on PATH (Debian:
`apt-get install nginx wrk`), matplotlib for the plot (`pip install .[bench]`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
CORPORA = BENCH / "corpora"
CONFIG = REPO / "config" / "feeds.yaml"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from generate_corpus import ensure_corpus  # noqa: E402

from feedservice.build import nginx_conf  # noqa: E402

FEED = "/feeds/all.rss"  # 50 items, ~30 KB: the reference feed
TARGETS = {
    "P1_200": ("serving 200 vs nginx", ">=", 0.5),
    "P1_304": ("serving 304 vs nginx", ">=", 0.5),
    "P1_gzip": ("serving gzip vs nginx gzip_static", ">=", 0.5),
    "P2_cold": ("cold load vs 1-process libyaml parse", "<=", 0.6),
    "P3_warm_s": ("warm restart, seconds", "<=", 3.0),
    "P4_no_change": ("no-change reload vs bare scandir+stat", "<=", 2.0),
    "P4_one_change": ("one-change refresh vs scan + one parse", "<=", 2.0),
    "P5_rendered": ("feeds re-rendered after a one-file change / feeds", "<=", 0.5),
    "P6_bytes_per_article": ("RSS bytes per article, serving process", "<=", 2048),
    "P7_fresh_s": ("new file served after, seconds (interval 2 s)", "<=", 2.0),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


REFERENCE_PACKAGES = ("nginx", "wrk")  # Debian packages: the reference server and the load


def _find(tool: str) -> str | None:
    return shutil.which(tool) or (
        f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None
    )


def require(tool: str) -> str:
    """The path of `tool`; on a machine without it, the suite installs the reference
    packages itself (Debian's apt-get, as root), or says how to."""
    found = _find(tool)
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        log(f"{tool} is missing: installing {' '.join(REFERENCE_PACKAGES)} with apt-get")
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *REFERENCE_PACKAGES]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
            subprocess.run(install, env=env, stdout=subprocess.DEVNULL)
        found = _find(tool)
    if found is None:
        packages = " ".join(REFERENCE_PACKAGES)
        sys.exit(f"{tool} is needed for the reference measurements: apt-get install {packages}")
    return found


# --- processes ------------------------------------------------------------------------------


class Server:
    """`feedservice serve` in its own process group, stopped by PID."""

    def __init__(
        self,
        seeds: Path,
        cache: Path,
        *,
        workers: int,
        interval: int = 60,
        port: int = 0,
        base_url: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "FEEDSERVICE_CACHE_DIR": str(cache),
            # The public URL is in every page: a restart keeps it (and so its render cache).
            "FEEDSERVICE_BASE_URL": base_url or self.url,
            "FEEDSERVICE_NO_PROGRESS": "1",
            "FEEDSERVICE_LOG_LEVEL": "warning",
            "FEEDSERVICE_RELOAD_INTERVAL": str(interval),
        }
        command = [sys.executable, "-m", "feedservice", "serve", "--seeds", str(seeds)]
        command += ["--config", str(CONFIG), "--port", str(self.port), "--workers", str(workers)]
        # Lives as long as the server: closed in stop().
        self.log = tempfile.NamedTemporaryFile(prefix="feedservice-bench-", suffix=".log")  # noqa: SIM115
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def health(self) -> dict[str, Any] | None:
        try:
            status, _, body = get(self.url + "/healthz")
        except OSError:
            return None
        return json.loads(body) if status == 200 else None

    def wait_ready(
        self, articles: int | None = None, timeout: float = 900
    ) -> tuple[float, dict[str, Any]]:
        """Seconds from start until /healthz reports the catalog (every article)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(
                    f"server exited:\n{self.log.read().decode(errors='replace')[-3000:]}"
                )
            health = self.health()
            if (
                health
                and health.get("generation", 0) >= 1
                and (articles is None or health["articles"] == articles)
            ):
                return time.perf_counter() - self.started, health
            time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


class Nginx:
    def __init__(self, binary: str, root: Path, work: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        work.mkdir(parents=True, exist_ok=True)
        conf = work / "nginx.conf"
        conf.write_text(nginx_conf(root, self.port, work, workers=workers))
        self.process = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(work), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if get(self.url + FEED)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class BareGranian:
    """bare_granian.py: the same bytes from a bare WSGI callable under granian."""

    def __init__(self, body: bytes, content_type: str, work: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        work.mkdir(parents=True, exist_ok=True)
        (work / "body").write_bytes(body)
        command = [sys.executable, str(BENCH / "bare_granian.py"), str(work / "body")]
        command += [content_type, str(self.port), str(workers)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if get(self.url + FEED)[2] == body:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("bare granian did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wrk(wrk_bin: str, url: str, seconds: int, headers: dict[str, str]) -> float:
    command = [wrk_bin, "-t2", "-c32", f"-d{seconds}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx responses" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if match is None:
        raise RuntimeError(out)
    return float(match.group(1))


def inproc(*args: str) -> dict[str, Any]:
    env = {**os.environ, "FEEDSERVICE_NO_PROGRESS": "1"}
    out = subprocess.run(
        [sys.executable, str(BENCH / "inproc.py"), *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- the measurements -----------------------------------------------------------------------


def serving(corpus: Path, work: Path, seconds: int, rounds: int) -> dict[str, Any]:
    """P1: the same wrk command against nginx (static build) and against us."""
    nginx_bin = require("nginx")
    wrk_bin = require("wrk")
    site = work / "site"
    port = free_port()  # the build's self links must name the server that is measured
    env = {
        **os.environ,
        "FEEDSERVICE_CACHE_DIR": str(work / "cache"),
        "FEEDSERVICE_NO_PROGRESS": "1",
        "FEEDSERVICE_BASE_URL": f"http://127.0.0.1:{port}",
    }
    command = [sys.executable, "-m", "feedservice", "build", "--seeds", str(corpus)]
    command += ["--config", str(CONFIG), "--out", str(site)]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, env=env)
    cores = os.cpu_count() or 1
    nginx = Nginx(nginx_bin, site, work / "nginx", cores)
    server = Server(corpus, work / "cache", workers=cores, port=port)
    results: dict[str, Any] = {}
    bare: BareGranian | None = None
    try:
        server.wait_ready()
        _, ours_headers, ours_body = get(server.url + FEED)
        ref_body = get(nginx.url + FEED)[2]
        if ours_body != ref_body:
            raise RuntimeError("nginx and feedservice do not serve the same bytes")
        bare = BareGranian(ours_body, ours_headers["Content-Type"], work / "bare", cores)
        cases: dict[str, dict[str, dict[str, str]]] = {"200": {}, "304": {}, "gzip": {}}
        for name, base in (("nginx", nginx.url), ("ours", server.url)):
            etag = get(base + FEED)[1]["ETag"]
            cases["200"][name] = {}
            cases["304"][name] = {"If-None-Match": etag}
            cases["gzip"][name] = {"Accept-Encoding": "gzip"}
            status, headers, _ = get(base + FEED, {"If-None-Match": etag})
            assert status == 304, (name, status)
            status, headers, _ = get(base + FEED, {"Accept-Encoding": "gzip"})
            assert headers["Content-Encoding"] == "gzip", name
        for case, by_server in cases.items():
            samples: dict[str, list[float]] = {"nginx": [], "ours": []}
            for _ in range(rounds):  # interleaved, so noise hits both alike
                for name, base in (("nginx", nginx.url), ("ours", server.url)):
                    samples[name].append(wrk(wrk_bin, base + FEED, seconds, by_server[name]))
            nginx_rps = statistics.median(samples["nginx"])
            ours_rps = statistics.median(samples["ours"])
            results[f"P1_{case}"] = {
                "nginx_rps": nginx_rps,
                "ours_rps": ours_rps,
                "ratio": ours_rps / nginx_rps,
                "samples": samples,
            }
            log(f"  P1 {case}: ours {ours_rps:,.0f} req/s, nginx {nginx_rps:,.0f} req/s")
        # The ceiling for a Python server here: the same bytes from a bare WSGI callable
        # under granian, interleaved with nginx and us again (200 only).
        ceiling: dict[str, list[float]] = {"nginx": [], "granian": [], "ours": []}
        for _ in range(rounds):
            for name, base in (("nginx", nginx.url), ("granian", bare.url), ("ours", server.url)):
                ceiling[name].append(wrk(wrk_bin, base + FEED, seconds, {}))
        medians = {name: statistics.median(values) for name, values in ceiling.items()}
        results["granian_ceiling_200"] = {
            **{f"{name}_rps": value for name, value in medians.items()},
            "granian_vs_nginx": medians["granian"] / medians["nginx"],
            "ours_vs_granian": medians["ours"] / medians["granian"],
            "samples": ceiling,
        }
        log(
            f"  ceiling: bare granian {medians['granian']:,.0f} req/s "
            f"({medians['granian'] / medians['nginx']:.2f}x nginx); "
            f"ours {medians['ours'] / medians['granian']:.2f}x of it"
        )
        results["feed_bytes"] = len(ours_body)
        results["wrk"] = f"wrk -t2 -c32 -d{seconds}s"
    finally:
        if bare is not None:
            bare.stop()
        server.stop()
        nginx.stop()
    return results


COLD_RUNS = 2  # P2's cold starts, each between two runs of the reference


def warm_page_cache(corpus: Path) -> None:
    """Read every file once, so no side of P2 pays for disk reads the other does not.

    The host evicts page cache between phases: without this, the first reference run
    read part of the corpus from disk (21.9 to 37.6 s against 17.7 to 26.4 s for the
    next ones), which inflated the reference and flattered P2."""
    for directory, _, names in os.walk(corpus):
        for name in names:
            with open(os.path.join(directory, name), "rb") as handle:
                handle.read()


def loading(corpus: Path, work: Path) -> dict[str, Any]:
    """P2 cold start (empty cache), P3 warm restart, P6 memory per article.

    P2 interleaves COLD_RUNS cold starts with the libyaml reference (reference, cold,
    reference, cold, reference) and divides the mean cold start by the mean reference:
    this host's speed drifts by ±15% within minutes, and one sample of each would
    measure that drift as much as the code."""
    cache = work / "cache-load"
    warm_page_cache(corpus)
    reference = inproc("reference", str(corpus))
    references = [reference["libyaml_parse_s"]]
    cores = os.cpu_count() or 1
    colds: list[float] = []
    for run in range(COLD_RUNS):
        shutil.rmtree(cache, ignore_errors=True)  # cold: no parse cache, no render cache
        server = Server(corpus, cache, workers=cores)
        try:
            cold_s, health = server.wait_ready()
            if run == 0:
                articles = health["articles"]
                # Every worker must be done: wait until both answer with the full catalog.
                pids = {health["pid"]}
                deadline = time.monotonic() + 600
                while len(pids) < cores and time.monotonic() < deadline:
                    found = server.health()
                    if found and found["articles"] == articles:
                        pids.add(found["pid"])
                cold_all_s = time.perf_counter() - server.started
                full_rss = max(rss_kb(pid) for pid in pids)
        finally:
            server.stop()
        colds.append(cold_s)
        references.append(inproc("reference", str(corpus))["libyaml_parse_s"])
    warm_samples = []
    public = server.url  # a restart keeps the service's public URL (on a new port here)
    for _ in range(3):  # the median of three restarts: one start is at the mercy of noise
        server = Server(corpus, cache, workers=cores, base_url=public)
        try:
            warm_samples.append(server.wait_ready(articles)[0])
        finally:
            server.stop()
    warm_s = statistics.median(warm_samples)
    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    server = Server(empty, cache, workers=1)
    try:
        _, health = server.wait_ready()
        empty_rss = rss_kb(health["pid"])
    finally:
        server.stop()
    per_article = (full_rss - empty_rss) * 1024 / max(1, articles)
    libyaml_s = statistics.mean(references)
    cold_s = statistics.mean(colds)
    parallel_s = inproc("reference-parallel", str(corpus))["libyaml_parallel_s"]
    return {
        "files": reference["files"],
        "articles": articles,
        "libyaml_parse_s": libyaml_s,
        "libyaml_parse_samples_s": references,
        "libyaml_parallel_s": parallel_s,  # a floor for P2, not a target
        "libyaml_parallel_ratio": parallel_s / libyaml_s,
        "cold_first_worker_s": cold_s,
        "cold_samples_s": colds,
        "cold_all_workers_s": cold_all_s,  # (the first cold start)
        "P2_cold": {"ratio": cold_s / libyaml_s, "seconds": cold_s},
        "P3_warm_s": {"seconds": warm_s, "ratio": warm_s, "samples": warm_samples},
        "P6_bytes_per_article": {
            "ratio": per_article,
            "rss_kb": full_rss,
            "empty_rss_kb": empty_rss,
        },
    }


def reloading(corpus: Path) -> dict[str, Any]:
    found = inproc("reload", str(corpus), str(CONFIG))
    found["P4_no_change"] = {"ratio": found["no_change_reload_s"] / found["bare_scan_s"]}
    found["P4_one_change"] = {
        "ratio": found["one_change_refresh_s"] / (found["bare_scan_s"] + found["one_parse_s"])
    }
    found["P5_rendered"] = {
        "ratio": len(found["feeds_rendered_after_one_change"]) / found["feeds_total"]
    }
    return found


def freshness(corpus: Path, work: Path) -> dict[str, Any]:
    """P7: seconds from writing a new seed file until /feeds/all.json carries it."""
    seeds = work / "fresh-seeds"
    shutil.rmtree(seeds, ignore_errors=True)
    shutil.copytree(corpus, seeds)
    server = Server(seeds, work / "cache-fresh", workers=os.cpu_count() or 1, interval=2)
    try:
        server.wait_ready()
        time.sleep(1.3)  # land somewhere inside the reload interval
        text = (
            "---\ntitle: Freshness probe\npublishedDateTime: 2030-01-01T00:00:00Z\n"
            "webUrl: https://example.com/freshness-probe\ntopics: [AI]\n---\n"
        )
        started = time.perf_counter()
        (seeds / "zz-freshness-probe.md").write_text(text)
        seen = []
        while len(seen) < 4 and time.perf_counter() - started < 30:
            body = get(server.url + "/feeds/all.json")[2]
            if b"Freshness probe" in body:
                seen.append(time.perf_counter() - started)
            time.sleep(0.02)
        fresh_s = max(seen[:4]) if len(seen) == 4 else float("inf")  # several hits: all workers
    finally:
        server.stop()
    return {"P7_fresh_s": {"seconds": fresh_s, "ratio": fresh_s, "interval_s": 2}}


# --- output ---------------------------------------------------------------------------------


def verdict(key: str, value: float) -> str:
    _, op, target = TARGETS[key]
    ok = value >= target if op == ">=" else value <= target
    return "met" if ok else "MISSED"


def summary(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    largest = results["sizes"][-1]
    sources = {**results["serving"], **results["by_size"][str(largest)], **results["freshness"]}
    for key, (label, op, target) in TARGETS.items():
        if key not in sources:
            continue
        value = float(sources[key]["ratio"])
        shown = f"{value:,.0f}" if key.startswith("P6") else f"{value:.2f}"
        rows.append((key.split("_")[0], label, f"{op} {target:g}", shown, verdict(key, value)))
    return rows


def plot(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing (pip install '.[bench]'): no plot")
        return False
    sizes = results["sizes"]
    rows = [results["by_size"][str(size)] for size in sizes]
    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    axes[0].plot(sizes, [row["cold_first_worker_s"] for row in rows], "o-", label="cold start")
    axes[0].plot(sizes, [row["P3_warm_s"]["seconds"] for row in rows], "o-", label="warm restart")
    axes[0].plot(sizes, [row["libyaml_parse_s"] for row in rows], "o--", label="libyaml, 1 process")
    axes[0].set_title("Load until /healthz (s)")
    axes[1].plot(sizes, [row["no_change_reload_s"] for row in rows], "o-", label="no change")
    axes[1].plot(sizes, [row["one_change_reload_s"] for row in rows], "o-", label="one file (full)")
    axes[1].plot(sizes, [row["bare_scan_s"] for row in rows], "o--", label="bare scandir+stat")
    axes[1].set_title("Reload (s)")
    axes[2].plot(
        sizes, [row["P6_bytes_per_article"]["ratio"] for row in rows], "o-", label="RSS / article"
    )
    axes[2].axhline(2048, linestyle="--", color="grey", label="target 2 KB")
    axes[2].set_title("Memory per article (bytes)")
    for axis in axes:
        axis.set_xscale("log")
        axis.set_xlabel("seed files")
        axis.legend()
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


def write_markdown(results: dict[str, Any], json_name: str) -> None:
    path = REPO / "BENCHMARKS.md"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    lines = [
        start,
        "",
        f"Latest full run: `{json_name}` ({results['when']}, {results['machine']}).",
        "",
    ]
    lines += ["| Target | What | Goal | Measured | |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in summary(results)]
    lines += [
        "",
        "| Files | Articles | libyaml 1-proc (s) | Cold (s) | Warm (s) | Bare scan (s) "
        "| No-change reload (s) | One-change reload (s) | Bytes/article | libyaml on every core |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in results["sizes"]:
        row = results["by_size"][str(size)]
        lines.append(
            f"| {size:,} | {row['articles']:,} | {row['libyaml_parse_s']:.1f} | "
            f"{row['cold_first_worker_s']:.1f} | {row['P3_warm_s']['seconds']:.1f} | "
            f"{row['bare_scan_s']:.2f} | {row['no_change_reload_s']:.2f} | "
            f"{row['one_change_reload_s']:.2f} | {row['P6_bytes_per_article']['ratio']:,.0f} | "
            f"{row['libyaml_parallel_s']:.1f} s ({row['libyaml_parallel_ratio']:.2f}×) |"
        )
    serving_rows = results["serving"]
    lines += [
        "",
        f"Serving `{FEED}` ({serving_rows['feed_bytes']:,} bytes), `{serving_rows['wrk']}`:",
        "",
        "| Case | nginx req/s | feedservice req/s | Ratio |",
        "|---|---|---|---|",
    ]
    for case in ("200", "304", "gzip"):
        row = serving_rows[f"P1_{case}"]
        lines.append(
            f"| {case} | {row['nginx_rps']:,.0f} | {row['ours_rps']:,.0f} | {row['ratio']:.2f} |"
        )
    ceiling = serving_rows.get("granian_ceiling_200")
    if ceiling:
        lines += [
            "",
            f"Ceiling, 200 (measured again, interleaved): a bare WSGI callable returning the "
            f"same bytes under granian with `serve`'s settings made {ceiling['granian_rps']:,.0f} "
            f"req/s, {ceiling['granian_vs_nginx']:.2f}× nginx ({ceiling['nginx_rps']:,.0f}); "
            f"feedservice made {ceiling['ours_rps']:,.0f}, {ceiling['ours_vs_granian']:.2f}× "
            "the bare callable.",
        ]
    lines += [
        "",
        "![load, reload and memory against corpus size](benchmarks/results/scaling.png)",
        "",
        end,
    ]
    block = "\n".join(lines)
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpora, short runs")
    parser.add_argument("--sizes", type=lambda text: [int(x) for x in text.split(",")])
    args = parser.parse_args(argv)
    sizes = args.sizes or ([1000, 4000] if args.quick else [1000, 10000, 100000])
    seconds, rounds = (3, 1) if args.quick else (8, 3)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "sizes": sizes,
        "targets": {
            key: {"what": label, "goal": f"{op} {target}"}
            for key, (label, op, target) in TARGETS.items()
        },
        "by_size": {},
    }
    with tempfile.TemporaryDirectory(prefix="feedservice-bench-") as temp:
        work = Path(temp)
        small = ensure_corpus(CORPORA, sizes[0])
        log(f"P1 serving ({sizes[0]} files)")
        results["serving"] = serving(small, work / "serving", seconds, rounds)
        log("P7 freshness")
        results["freshness"] = freshness(small, work)
        for size in sizes:
            log(f"corpus of {size} files")
            corpus = ensure_corpus(CORPORA, size)
            row = loading(corpus, work / f"load-{size}")
            row.update(reloading(corpus))
            results["by_size"][str(size)] = row
            cold, warm = row["cold_first_worker_s"], row["P3_warm_s"]["seconds"]
            log(
                f"  cold {cold:.1f}s (libyaml {row['libyaml_parse_s']:.1f}s, on every core "
                f"{row['libyaml_parallel_s']:.1f}s), warm {warm:.1f}s, "
                f"reload {row['no_change_reload_s']:.2f}s (bare {row['bare_scan_s']:.2f}s), "
                f"{row['P6_bytes_per_article']['ratio']:.0f} B/article"
            )
    results["seconds"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{results['mode']}.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"latest-{results['mode']}.json").write_text(json.dumps(results, indent=2) + "\n")
    if not args.quick:
        plot(results, RESULTS / "scaling.png")
        write_markdown(results, name)
    print(f"\n{'':4}{'What':<52}{'Goal':>10}{'Measured':>12}")
    for key, label, goal, shown, ok in summary(results):
        print(f"{key:4}{label:<52}{goal:>10}{shown:>12}  {ok}")
    print(f"\n{results['seconds']:.0f} s; results in {RESULTS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

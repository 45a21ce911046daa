"""The benchmark suite of issue 15's outcomes, each a ratio to a reference measured in the same run.

    python benchmarks/run.py            # full: corpora up to 100,000 files (~20 minutes)
    python benchmarks/run.py --quick    # small corpora, short runs (< 3 minutes)

References: nginx serving the `feedservice build` export of the same store (the same
bytes, started here on a loopback port with the export's own nginx config), a
one-process libyaml parse of the same front matter, the feeds that hold a changed
article, a bare scandir+stat pass, a one-worker service and an empty service. Every
process the suite starts runs in its own process group and is stopped with it.
Results, with every sample and reference, go to benchmarks/results/<time>-<mode>.json;
a full run of every step also rewrites the results block of BENCHMARKS.md (`--only`
runs a part: serving, loading = P2 to P5, cpu, memory). Needs nginx and wrk (Debian:
`apt-get install nginx wrk`); matplotlib for the optional plot (`pip install '.[bench]'`).
"""

from __future__ import annotations

import argparse
import contextlib
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
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
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

from feedservice.runtime.export import nginx_conf, targets  # noqa: E402
from feedservice.store.db import Store  # noqa: E402

FEED = "/feeds/all.rss"  # 50 items: the reference feed
PROBE_FEED = "/feeds/all.json"
TARGETS = {
    "P1_200": ("cached feed 200s vs nginx", ">=", 0.5),
    "P1_304": ("cached feed 304s vs nginx", ">=", 0.5),
    "P1_gzip": ("cached feed gzip vs nginx gzip_static", ">=", 0.5),
    "P2_cold": ("cold load vs 1-process libyaml parse", "<=", 0.7),
    "P3_warm_s": ("warm restart, s (median of 3)", "<=", 1.5),
    "P4_fresh_s": ("new file served after its reload began, s", "<=", 1.0),
    "P5_rendered": ("feeds re-rendered / feeds holding the file", "<=", 1.0),
    # Not in the list: the same outcome for the commonest one-file change.
    "P5_added": ("the same for a new newest file (extra)", "<=", 1.0),
    "C_cpu": ("idle CPU, 4 workers vs 1 (interval 1 s)", "<=", 1.5),
    "M_bytes_per_article": ("service RSS per article, 2 workers, bytes", "<=", 2048),
    "M_worker_mb": ("RSS a 3rd worker adds, MB", "<=", 64),
}
MODES = {
    # sizes: P2-P5 per corpus size; serving at the smallest; C and M at their own size.
    "quick": {
        "sizes": [1000, 4000],
        "wrk_seconds": 3,
        "wrk_rounds": 1,
        "cold_runs": 1,
        "probes": 2,
        "cpu_size": 4000,
        "cpu_seconds": 5,
        "cpu_rounds": 1,
        "memory_size": 4000,
        "settle": 2.0,
    },
    "full": {
        "sizes": [1000, 10000, 100000],
        "wrk_seconds": 8,
        "wrk_rounds": 3,
        "cold_runs": 2,
        "probes": 3,
        "cpu_size": 20000,
        "cpu_seconds": 30,
        "cpu_rounds": 2,
        "memory_size": 100000,
        "settle": 5.0,
    },
}
STEPS = ("serving", "loading", "cpu", "memory")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
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


# --- process groups -------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LIVE: list[Group] = []  # every group still running: stopped on the way out, whatever happens


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on; None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def group_pids(pgid: int, *, zombies: bool = True) -> list[int]:
    """The processes of a process group (with `zombies=False`, only those still running:
    a zombie is gone but for its exit status, which its parent, or init, collects)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields is None or int(fields[2]) != pgid or (not zombies and fields[0] == "Z"):
                continue
            pids.append(int(name))
    return pids


def group_cpu_s(pgid: int) -> float:
    """CPU seconds used by a process group: utime + stime of every live member, plus the
    cutime + cstime of its reaped children (so a member that exits between two readings
    still counts; over a window in which none is born or dies, this is utime + stime)."""
    ticks = 0
    for pid in group_pids(pgid):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += sum(int(fields[index]) for index in (11, 12, 13, 14))
    return ticks / CLOCK_TICKS


def _status_kb(pid: int, path: str, key: str) -> int:
    try:
        with open(f"/proc/{pid}/{path}") as handle:
            for line in handle:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_memory(pgid: int) -> dict[str, Any]:
    """VmRSS (the target) and Pss (shared pages divided among their users) of every member."""
    processes = []
    for pid in sorted(group_pids(pgid)):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        rss = _status_kb(pid, "status", "VmRSS:")
        pss = _status_kb(pid, "smaps_rollup", "Pss:")
        processes.append({"pid": pid, "rss_kb": rss, "pss_kb": pss, "command": command[:120]})
    return {
        "rss_kb": sum(process["rss_kb"] for process in processes),
        "pss_kb": sum(process["pss_kb"] for process in processes),
        "processes": processes,
    }


_SIGNALS = {"deferring": 0, "pending": 0}


def _on_signal(signum: int, _: Any) -> None:
    """SIGTERM or SIGHUP: leave through the `finally` that stops every server."""
    if _SIGNALS["deferring"]:
        _SIGNALS["pending"] = signum
    else:
        sys.exit(128 + signum)


@contextlib.contextmanager
def _no_interruption() -> Any:
    _SIGNALS["deferring"] += 1
    try:
        yield
    finally:
        _SIGNALS["deferring"] -= 1
        if _SIGNALS["pending"] and not _SIGNALS["deferring"]:
            sys.exit(128 + _SIGNALS["pending"])


class Group:
    """A command in its own session (so its own process group), stopped with all of it."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None, **kwargs: Any):
        self.log = tempfile.NamedTemporaryFile(prefix="feedservice-bench-", suffix=".log")  # noqa: SIM115
        self.started = time.perf_counter()
        with _no_interruption():  # a started group is always in LIVE
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )
            self.pgid = self.process.pid
            LIVE.append(self)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        """SIGTERM to the group; SIGKILL to whatever of it is left after 20 s (or at once
        if the wait is interrupted)."""
        if self in LIVE:
            LIVE.remove(self)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGTERM)
        done = False
        try:
            done = self._wait_empty(20)
        finally:
            if not done:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pgid, signal.SIGKILL)
                self.process.wait()
                self._wait_empty(10)
            self.log.close()

    def _wait_empty(self, timeout: float) -> bool:
        """Wait until the leader is reaped and two scans in a row, 50 ms apart, find no
        running member (a scan can miss a child forked while it reads /proc)."""
        deadline = time.monotonic() + timeout
        empty_scans = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None and not group_pids(self.pgid, zombies=False):
                empty_scans += 1
                if empty_scans == 2:
                    return True
            else:
                empty_scans = 0
            time.sleep(0.05)
        return False


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any FEEDSERVICE_* setting of the caller's, plus `extra`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("FEEDSERVICE_")}
    env["FEEDSERVICE_LOG_LEVEL"] = "warning"
    env.update(extra)
    return env


class Server(Group):
    """`feedservice serve` on a loopback port, with its own state directory."""

    def __init__(
        self,
        seeds: Path,
        state: Path,
        *,
        workers: int,
        interval: int = 60,
        port: int = 0,
        base_url: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = state
        command = [sys.executable, "-m", "feedservice", "serve", "--seeds", str(seeds)]
        command += ["--config", str(CONFIG), "--port", str(self.port)]
        command += ["--workers", str(workers), "--reload-interval", str(interval)]
        command += ["--state-dir", str(state)]
        # The public URL is in every document: a restart on another port keeps it.
        super().__init__(command, clean_env(FEEDSERVICE_BASE_URL=base_url or self.url))

    def health(self) -> dict[str, Any] | None:
        try:
            status, _, body = get(self.url + "/healthz", timeout=10)
        except OSError:
            return None
        return json.loads(body) if status == 200 else None

    def wait_ready(
        self, articles: int | None = None, *, after: int = 0, timeout: float = 1800
    ) -> tuple[float, dict[str, Any]]:
        """Seconds from start until /healthz reports a generation newer than `after` with
        every article (`articles`; None: any, as a generation holds every article of the
        reload that committed it). A restart answers from the generation its state
        directory holds at once; its first reload then always commits a new one, which
        `after` = the last generation seen waits for."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.output()}")
            health = self.health()
            if (
                health
                and health.get("generation", 0) > after
                and (articles is None or health["articles"] == articles)
            ):
                return time.perf_counter() - self.started, health
            time.sleep(0.02)
        raise RuntimeError(f"server did not become ready:\n{self.output()}")


class Nginx(Group):
    def __init__(self, binary: str, root: Path, work: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        work.mkdir(parents=True, exist_ok=True)
        conf = work / "nginx.conf"
        conf.write_text(nginx_conf(root, self.port, work, workers=workers))
        super().__init__([binary, "-c", str(conf), "-p", str(work), "-g", "daemon off;"])
        deadline = time.monotonic() + 10
        while True:
            try:
                if get(self.url + FEED)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("nginx did not start")
            time.sleep(0.05)


class BareGranian(Group):
    """bare_granian.py: the same bytes from a bare WSGI callable under granian."""

    def __init__(self, body: bytes, content_type: str, work: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        work.mkdir(parents=True, exist_ok=True)
        (work / "body").write_bytes(body)
        command = [sys.executable, str(BENCH / "bare_granian.py"), str(work / "body")]
        command += [content_type, str(self.port), str(workers)]
        super().__init__(command)
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
    out = subprocess.run(
        [sys.executable, str(BENCH / "inproc.py"), *args],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def copy_corpus(corpus: Path, dest: Path) -> Path:
    """A private copy of a corpus, for the measurements that add or edit files. (A copy,
    not hard links: linking changes every file's ctime, which is part of the change stamp,
    and would turn a warm state directory elsewhere cold.)"""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(corpus, dest)
    return dest


def warm_page_cache(corpus: Path) -> None:
    """Read every file once, so no side of P2 pays for disk reads the other does not.

    The host evicts page cache between phases: without this, the first reference run
    read part of the corpus from disk (21.9 to 37.6 s against 17.7 to 26.4 s for the
    next ones), which inflated the reference and flattered P2."""
    for directory, _, names in os.walk(corpus):
        for name in names:
            with open(os.path.join(directory, name), "rb") as handle:
                handle.read()


# --- P1: serving ----------------------------------------------------------------------------


def serving(corpus: Path, work: Path, seconds: int, rounds: int) -> dict[str, Any]:
    """P1: the same wrk command against nginx (serving the export) and against us."""
    nginx_bin = require("nginx")
    wrk_bin = require("wrk")
    site, state = work / "site", work / "state"
    port = free_port()  # the export's self links must name the server that is measured
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "feedservice", "build", "--seeds", str(corpus)]
    command += ["--config", str(CONFIG), "--state-dir", str(state), "--out", str(site)]
    started = time.perf_counter()
    built = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        env=clean_env(FEEDSERVICE_BASE_URL=base_url),
        start_new_session=True,
    )
    if built.returncode != 0:
        raise RuntimeError(f"feedservice build failed:\n{built.stdout}{built.stderr}")
    build_s = time.perf_counter() - started
    cores = os.cpu_count() or 1
    nginx = Nginx(nginx_bin, site, work / "nginx", cores)
    server: Server | None = None
    bare: BareGranian | None = None
    results: dict[str, Any] = {"build_s": build_s}
    store = Store.in_dir(state, writable=False)
    try:
        built_generation = store.generation()
    finally:
        store.close()
    if built_generation is None:
        raise RuntimeError("the build committed no generation")
    try:
        server = Server(corpus, state, workers=cores, port=port)
        server.wait_ready(after=built_generation.id)  # its first reload, before measuring
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
            status, _, _ = get(base + FEED, {"If-None-Match": etag})
            if status != 304:
                raise RuntimeError(f"{name} answered {status} to If-None-Match")
            _, headers, _ = get(base + FEED, {"Accept-Encoding": "gzip"})
            if headers["Content-Encoding"] != "gzip":
                raise RuntimeError(f"{name} did not answer with gzip")
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
        results["workers"] = cores
    finally:
        if bare is not None:
            bare.stop()
        if server is not None:
            server.stop()
        nginx.stop()
    return results


# --- P2 to P5, per corpus size --------------------------------------------------------------


def loading(seeds: Path, work: Path, cold_runs: int) -> dict[str, Any]:
    """P2 cold load (empty state directory) and P3 warm restart (state in place).

    P2 interleaves `cold_runs` cold starts with the libyaml reference (reference, cold,
    reference, cold, reference) and divides the mean cold start by the mean reference:
    this host's speed drifts by ±15% within minutes, and one sample of each would
    measure that drift as much as the code."""
    state = work / "state"
    public = f"http://127.0.0.1:{free_port()}"  # every server of this size: the same site
    cores = os.cpu_count() or 1
    warm_page_cache(seeds)
    reference = inproc("reference", str(seeds))
    references = [reference["libyaml_parse_s"]]
    colds: list[float] = []
    articles: int | None = None
    for _ in range(cold_runs):
        shutil.rmtree(state, ignore_errors=True)
        server = Server(seeds, state, workers=cores, interval=1, base_url=public)
        try:
            cold_s, health = server.wait_ready(articles)
        finally:
            server.stop()
        articles = health["articles"]
        generation = health["generation"]
        colds.append(cold_s)
        references.append(inproc("reference", str(seeds))["libyaml_parse_s"])
    warm_samples = []
    committed_samples = []  # until the restart's own first reload has committed
    for _ in range(3):  # the median of three restarts: one start is at the mercy of noise
        server = Server(seeds, state, workers=cores, interval=1, base_url=public)
        try:
            warm_samples.append(server.wait_ready(articles)[0])
            committed_s, health = server.wait_ready(articles, after=generation)
            committed_samples.append(committed_s)
            generation = health["generation"]
        finally:
            server.stop()
    parallel_s = inproc("reference-parallel", str(seeds))["libyaml_parallel_s"]
    libyaml_s = statistics.mean(references)
    cold_s = statistics.mean(colds)
    warm_s = statistics.median(warm_samples)
    return {
        "files": reference["files"],
        "articles": articles,
        "state": str(state),
        "public": public,
        "libyaml_parse_s": libyaml_s,
        "libyaml_parse_samples_s": references,
        "libyaml_parallel_s": parallel_s,  # a floor for P2, not a target
        "libyaml_parallel_ratio": parallel_s / libyaml_s,
        "cold_s": cold_s,
        "cold_samples_s": colds,
        "P2_cold": {"ratio": cold_s / libyaml_s, "seconds": cold_s},
        "P3_warm_s": {"ratio": warm_s, "seconds": warm_s, "samples": warm_samples},
        "warm_committed_s": statistics.median(committed_samples),
        "warm_committed_samples_s": committed_samples,
        "generation": generation,
    }


def _iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


PROBE = """---
title: "Freshness probe {token}"
excerpt: "A new file written by the benchmark suite."
publishedDateTime: {published}
webUrl: "https://example.com/freshness-probe/{token}"
quality: 80
topics:
  - AI
---
"""
CONSECUTIVE = 5  # requests in a row that must carry the new file
POLL = 0.02  # seconds between two requests of the new file's feed


def freshness(
    seeds: Path, state: Path, public: str, articles: int, generation: int, probes: int
) -> dict[str, Any]:
    """P4: with --reload-interval 1, write a new seed file (renamed into place, as a
    deployment would) and poll /feeds/all.json until CONSECUTIVE requests in a row carry
    it. Served time = the first of those; the reload that committed it started at
    healthz `last_reload` minus `last_reload_duration_ms`."""
    cores = os.cpu_count() or 1
    server = Server(seeds, state, workers=cores, interval=1, base_url=public)
    samples: list[dict[str, Any]] = []
    written: list[Path] = []
    try:
        server.wait_ready(articles, after=generation)  # its first reload has committed
        for number in range(probes):
            before = server.health()
            assert before is not None
            # Land at a different point of the reload interval each time.
            time.sleep(1.0 + 0.37 * number)
            token = uuid.uuid4().hex[:12]
            published = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            path = seeds / f"zz-freshness-probe-{token}.md"
            temporary = seeds / f".zz-freshness-probe-{token}.tmp"  # hidden: never scanned
            temporary.write_text(PROBE.format(token=token, published=published))
            written.append(path)
            wrote_at = time.time()
            os.replace(temporary, path)
            needle = token.encode()
            streak: list[float] = []
            while len(streak) < CONSECUTIVE:
                if time.time() - wrote_at > 60:
                    raise RuntimeError(
                        f"the new file was not served within 60 s:\n{server.output()}"
                    )
                status, _, body = get(server.url + PROBE_FEED)
                if status == 200 and needle in body:
                    streak.append(time.time())
                else:
                    streak = []
                time.sleep(POLL)  # polling flat out would take a core from the loader
            served_at = streak[0]
            health = server.health()
            assert health is not None
            committed = _iso_seconds(health["last_reload"])
            duration = health["last_reload_duration_ms"] / 1000
            reload_start = committed - duration
            samples.append(
                {
                    "write_to_served_s": served_at - wrote_at,
                    "reload_start_to_served_s": served_at - reload_start,
                    "last_reload_to_served_s": served_at - committed,
                    "reload_duration_s": duration,
                    "generations": health["generation"] - before["generation"],
                    "articles": health["articles"] - before["articles"],
                }
            )
    finally:
        server.stop()
        for path in written:
            path.unlink(missing_ok=True)
    after_start = [sample["reload_start_to_served_s"] for sample in samples]
    after_write = [sample["write_to_served_s"] for sample in samples]
    after_stamp = [sample["last_reload_to_served_s"] for sample in samples]
    fresh_s = statistics.median(after_start)
    return {
        "P4_fresh_s": {
            "ratio": fresh_s,
            "seconds": fresh_s,
            "max_s": max(after_start),
            # served - last_reload: the figure if `last_reload` were the reload's start
            "from_last_reload_s": statistics.median(after_stamp),
        },
        "write_to_served_s": statistics.median(after_write),
        "write_to_served_max_s": max(after_write),
        "probes": samples,
        "interval_s": 1,
    }


def incremental(seeds: Path, work: Path) -> dict[str, Any]:
    """P5 in process: a Loader over a Store in a temp directory."""
    found = inproc("reload", str(seeds), str(CONFIG), str(work / "inproc-state"))
    found["articles_inproc"] = found.pop("articles")
    found["files_inproc"] = found.pop("files")
    for key, rounds in (("P5_rendered", found["rounds"]), ("P5_added", found["added_rounds"])):
        worst = max(rounds, key=lambda row: row["rendered_feeds"] / len(row["holding_feeds"]))
        found[key] = {
            "ratio": worst["rendered_feeds"] / len(worst["holding_feeds"]),
            "rendered": worst["rendered_feeds"],
            "holding": len(worst["holding_feeds"]),
        }
    found["one_change_vs_scan"] = found["one_change_reload_s"] / found["bare_scan_s"]
    found["no_change_vs_scan"] = found["no_change_reload_s"] / found["bare_scan_s"]
    return found


def by_size(corpus: Path, work: Path, mode: dict[str, Any]) -> dict[str, Any]:
    seeds = copy_corpus(corpus, work / "seeds")
    try:
        row = loading(seeds, work, mode["cold_runs"])
        row.update(
            freshness(
                seeds,
                Path(row["state"]),
                row["public"],
                row["articles"],
                row["generation"],
                mode["probes"],
            )
        )
        row.update(incremental(seeds, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    row["catalogs_agree"] = row["articles"] == row["articles_inproc"]
    if not row["catalogs_agree"]:
        served, loaded = row["articles"], row["articles_inproc"]
        log(f"  the service has {served} articles, the in-process loader {loaded}")
    return row


# --- C: idle CPU against the number of workers ----------------------------------------------


def cpu_idle(corpus: Path, work: Path, seconds: int, rounds: int, settle: float) -> dict[str, Any]:
    """C: CPU of the whole service (its process group) over `seconds` with nothing
    changing and --reload-interval 1, 4 workers against 1, interleaved (1, 4, 1, 4...),
    each from the same warm state directory, read after the service is ready and has
    settled."""
    state = work / "state"
    public = f"http://127.0.0.1:{free_port()}"
    prime = Server(corpus, state, workers=1, interval=1, base_url=public)
    try:
        _, health = prime.wait_ready()
    finally:
        prime.stop()
    articles, generation = health["articles"], health["generation"]
    samples: dict[str, list[float]] = {"1": [], "4": []}
    processes: dict[str, int] = {}
    for _ in range(rounds):
        for workers in (1, 4):
            server = Server(corpus, state, workers=workers, interval=1, base_url=public)
            try:
                generation = server.wait_ready(articles, after=generation)[1]["generation"]
                time.sleep(settle)
                before = server.health()
                pids = sorted(group_pids(server.pgid))
                start = group_cpu_s(server.pgid)
                time.sleep(seconds)
                used = group_cpu_s(server.pgid) - start
                pids_after = sorted(group_pids(server.pgid))
                after = server.health()
            finally:
                server.stop()
            if before is None or after is None or after["generation"] != before["generation"]:
                raise RuntimeError("a generation was committed while nothing changed")
            if pids != pids_after:
                raise RuntimeError(f"processes came or went during the window: {pids} {pids_after}")
            samples[str(workers)].append(used)
            processes[str(workers)] = len(pids)
    one, four = statistics.mean(samples["1"]), statistics.mean(samples["4"])
    shutil.rmtree(work, ignore_errors=True)
    return {
        "files": len([name for name in os.listdir(corpus) if not name.startswith(".")]),
        "articles": articles,
        "window_s": seconds,
        "cpu_1_worker_s": one,
        "cpu_4_workers_s": four,
        "samples_s": samples,
        "processes": processes,
        "C_cpu": {"ratio": four / one if one else float("inf")},
    }


# --- M: memory ------------------------------------------------------------------------------


def _exercise(server: Server, workers: int) -> int:
    """Request every page-1 document (plain and gzip) 2 × workers times, so each worker
    has served what a polled service serves before its memory is read."""
    store = Store.in_dir(server.state, writable=False)
    try:
        paths = [url for url, _ in targets(store) if "page=" not in url]
    finally:
        store.close()
    count = 0
    for _ in range(2 * workers):
        for path in paths:
            for headers in ({}, {"Accept-Encoding": "gzip"}):
                status = get(server.url + path, headers)[0]
                if status != 200:
                    raise RuntimeError(f"{path} answered {status}")
                count += 1
    return count


def _service_memory(seeds: Path, state: Path, workers: int, settle: float) -> dict[str, Any]:
    shutil.rmtree(state, ignore_errors=True)  # a cold start: the loader holds its first load
    server = Server(seeds, state, workers=workers)
    try:
        _, health = server.wait_ready()
        requests = _exercise(server, workers)
        time.sleep(settle)
        found = group_memory(server.pgid)
    finally:
        server.stop()
    shutil.rmtree(state, ignore_errors=True)
    return {**found, "articles": health["articles"], "workers": workers, "requests": requests}


def memory(corpus: Path, work: Path, settle: float) -> dict[str, Any]:
    """M: RSS summed over the service's process group, after a cold start, every page-1
    document requested and `settle` seconds: at 2 workers minus an empty service's
    (2 workers) per article; 3 workers minus 2 workers at the same size."""
    empty = work / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    base = _service_memory(empty, work / "state", 2, settle)
    two = _service_memory(corpus, work / "state", 2, settle)
    three = _service_memory(corpus, work / "state", 3, settle)
    shutil.rmtree(work, ignore_errors=True)
    articles = two["articles"]
    per_article = (two["rss_kb"] - base["rss_kb"]) * 1024 / max(1, articles)
    per_worker_mb = (three["rss_kb"] - two["rss_kb"]) / 1024
    return {
        "files": len([name for name in os.listdir(corpus) if not name.startswith(".")]),
        "articles": articles,
        "empty": base,
        "two_workers": two,
        "three_workers": three,
        "pss_bytes_per_article": (two["pss_kb"] - base["pss_kb"]) * 1024 / max(1, articles),
        "pss_worker_mb": (three["pss_kb"] - two["pss_kb"]) / 1024,
        "M_bytes_per_article": {"ratio": per_article},
        "M_worker_mb": {"ratio": per_worker_mb},
    }


# --- output ---------------------------------------------------------------------------------


def verdict(key: str, value: float) -> str:
    _, op, target = TARGETS[key]
    ok = value >= target if op == ">=" else value <= target
    return "met" if ok else "MISSED"


def _shown(key: str, value: float) -> str:
    return f"{value:,.0f}" if key == "M_bytes_per_article" else f"{value:.2f}"


def summary(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(target, what, at, goal, measured, verdict) for every target this run measured."""
    rows = []
    places: dict[str, tuple[dict[str, Any], str]] = {}
    if "serving" in results:
        at = f"{results['serving']['files']:,} files"
        places.update({key: (results["serving"], at) for key in TARGETS if key.startswith("P1")})
    if results.get("by_size"):
        largest = str(results["sizes"][-1])
        at = f"{int(largest):,} files"
        for key in ("P2_cold", "P3_warm_s", "P4_fresh_s", "P5_rendered", "P5_added"):
            places[key] = (results["by_size"][largest], at)
    for step, keys in (("cpu", ("C_cpu",)), ("memory", ("M_bytes_per_article", "M_worker_mb"))):
        if step in results:
            for key in keys:
                places[key] = (results[step], f"{results[step]['files']:,} files")
    for key, (label, op, target) in TARGETS.items():
        if key not in places:
            continue
        source, at = places[key]
        value = float(source[key]["ratio"])
        goal = f"{op} {target:g}"
        rows.append((key.split("_")[0], label, at, goal, _shown(key, value), verdict(key, value)))
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
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(sizes, [row["cold_s"] for row in rows], "o-", label="cold load")
    axes[0].plot(sizes, [row["P3_warm_s"]["seconds"] for row in rows], "o-", label="warm restart")
    axes[0].plot(sizes, [row["libyaml_parse_s"] for row in rows], "o--", label="libyaml, 1 process")
    axes[0].set_title("Start until /healthz reports every article (s)")
    axes[1].plot(sizes, [row["no_change_reload_s"] for row in rows], "o-", label="no change")
    axes[1].plot(sizes, [row["one_change_reload_s"] for row in rows], "o-", label="one file")
    axes[1].plot(sizes, [row["bare_scan_s"] for row in rows], "o--", label="bare scandir+stat")
    axes[1].set_title("Reload, in process (s)")
    for axis in axes:
        axis.set_xscale("log")
        axis.set_xlabel("seed files")
        axis.legend()
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


START, END = "<!-- results:start -->", "<!-- results:end -->"


def results_block(results: dict[str, Any], json_name: str, plotted: bool) -> str:
    lines = [
        START,
        "",
        f"Latest full run: `{json_name}` ({results['when']}, {results['machine']}).",
        "",
        "| Target | What | At | Goal | Measured | |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in summary(results)]
    if results.get("by_size"):
        lines += [
            "",
            "| Files | Articles | libyaml 1-proc (s) | libyaml every core (s) | Cold (s) "
            "| Warm: all served / first reload committed (s) | Reload start → served (s) "
            "| Write → served (s) | Bare scan (s) "
            "| Reload: no change / edit / new file (s) "
            "| Feeds rendered / holding: edit; new file |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for size in results["sizes"]:
            row = results["by_size"][str(size)]
            edit, new = row["P5_rendered"], row["P5_added"]
            lines.append(
                f"| {size:,} | {row['articles']:,} | {row['libyaml_parse_s']:.2f} | "
                f"{row['libyaml_parallel_s']:.2f} | {row['cold_s']:.2f} | "
                f"{row['P3_warm_s']['seconds']:.2f} / {row['warm_committed_s']:.2f} | "
                f"{row['P4_fresh_s']['seconds']:.2f} "
                f"(max {row['P4_fresh_s']['max_s']:.2f}) | {row['write_to_served_s']:.2f} | "
                f"{row['bare_scan_s']:.3f} | {row['no_change_reload_s']:.3f} / "
                f"{row['one_change_reload_s']:.3f} / {row['new_file_reload_s']:.3f} | "
                f"{edit['rendered']} / {edit['holding']}; {new['rendered']} / {new['holding']} |"
            )
    serving_rows = results.get("serving")
    if serving_rows:
        lines += [
            "",
            f"Serving `{FEED}` ({serving_rows['feed_bytes']:,} bytes) from "
            f"{serving_rows['workers']} workers, `{serving_rows['wrk']}`:",
            "",
            "| Case | nginx req/s | feedservice req/s | Ratio |",
            "|---|---|---|---|",
        ]
        for case in ("200", "304", "gzip"):
            row = serving_rows[f"P1_{case}"]
            lines.append(
                f"| {case} | {row['nginx_rps']:,.0f} | {row['ours_rps']:,.0f} "
                f"| {row['ratio']:.2f} |"
            )
        ceiling = serving_rows["granian_ceiling_200"]
        lines += [
            "",
            f"Ceiling, 200 (measured again, interleaved): a bare WSGI callable returning the "
            f"same bytes under granian with `serve`'s settings made {ceiling['granian_rps']:,.0f} "
            f"req/s, {ceiling['granian_vs_nginx']:.2f}× nginx ({ceiling['nginx_rps']:,.0f}); "
            f"feedservice made {ceiling['ours_rps']:,.0f}, {ceiling['ours_vs_granian']:.2f}× "
            "the bare callable.",
        ]
    cpu = results.get("cpu")
    if cpu:
        lines += [
            "",
            f"Idle CPU ({cpu['files']:,} files, interval 1 s, {cpu['window_s']} s windows, "
            f"mean of {len(cpu['samples_s']['1'])}): 1 worker {cpu['cpu_1_worker_s']:.2f} s, "
            f"4 workers {cpu['cpu_4_workers_s']:.2f} s.",
        ]
    mem = results.get("memory")
    if mem:
        lines += [
            "",
            f"Memory ({mem['files']:,} files, {mem['articles']:,} articles), summed over the "
            "service's processes:",
            "",
            "| Service | Processes | VmRSS (MB) | Pss (MB) |",
            "|---|---|---|---|",
        ]
        for label, key in (
            ("empty, 2 workers", "empty"),
            ("2 workers", "two_workers"),
            ("3 workers", "three_workers"),
        ):
            row = mem[key]
            lines.append(
                f"| {label} | {len(row['processes'])} | {row['rss_kb'] / 1024:,.1f} "
                f"| {row['pss_kb'] / 1024:,.1f} |"
            )
        lines += [
            "",
            f"By Pss (shared pages divided among the processes that share them): "
            f"{mem['pss_bytes_per_article']:,.0f} bytes per article, "
            f"{mem['pss_worker_mb']:.1f} MB for the third worker.",
        ]
    if plotted:
        lines += [
            "",
            "![load and reload against corpus size](benchmarks/results/scaling.png)",
        ]
    lines += ["", END]
    return "\n".join(lines)


def write_markdown(block: str) -> None:
    path = REPO / "BENCHMARKS.md"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def run_header(
    mode: str, settings: dict[str, Any], targets: dict[str, tuple[str, str, float]]
) -> dict[str, Any]:
    """What every results file starts with: the run, the machine, its settings and targets."""
    return {
        "mode": mode,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "settings": settings,
        "targets": {
            key: {"what": label, "goal": f"{op} {target}"}
            for key, (label, op, target) in targets.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpora, short runs")
    parser.add_argument(
        "--sizes", type=lambda text: [int(x) for x in text.split(",")], help="P2-P5 sizes"
    )
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        default=list(STEPS),
        help=f"a subset of {','.join(STEPS)} (results are written; BENCHMARKS.md is not)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps: {', '.join(sorted(unknown))}")
    mode_name = "quick" if args.quick else "full"
    mode = dict(MODES[mode_name])
    if args.sizes:
        mode["sizes"] = sorted(args.sizes)
    sizes = mode["sizes"]
    for signum in (signal.SIGTERM, signal.SIGHUP):  # stop every server on the way out
        signal.signal(signum, _on_signal)
    started = time.perf_counter()
    results: dict[str, Any] = {
        **run_header(mode_name, mode, TARGETS),
        "steps": args.only,
        "sizes": sizes if "loading" in args.only else [],
        "by_size": {},
    }
    try:
        with tempfile.TemporaryDirectory(prefix="feedservice-bench-") as temp:
            work = Path(temp)
            if "serving" in args.only:
                small = ensure_corpus(CORPORA, sizes[0])
                log(f"P1 serving ({sizes[0]:,} files)")
                results["serving"] = serving(
                    small, work / "serving", mode["wrk_seconds"], mode["wrk_rounds"]
                )
                results["serving"]["files"] = sizes[0]
            if "loading" in args.only:
                for size in sizes:
                    log(f"P2-P5 at {size:,} files")
                    row = by_size(ensure_corpus(CORPORA, size), work / f"size-{size}", mode)
                    results["by_size"][str(size)] = row
                    log(
                        f"  cold {row['cold_s']:.2f}s (libyaml {row['libyaml_parse_s']:.2f}s, on "
                        f"every core {row['libyaml_parallel_s']:.2f}s), warm "
                        f"{row['P3_warm_s']['seconds']:.2f}s (its first reload committed at "
                        f"{row['warm_committed_s']:.2f}s), new file served "
                        f"{row['P4_fresh_s']['seconds']:.2f}s after its reload began "
                        f"({row['write_to_served_s']:.2f}s after the write), "
                        f"feeds re-rendered / holding: edit {row['P5_rendered']['rendered']}/"
                        f"{row['P5_rendered']['holding']}, new file {row['P5_added']['rendered']}/"
                        f"{row['P5_added']['holding']}; reload {row['no_change_reload_s']:.3f}s "
                        f"no change, {row['one_change_reload_s']:.3f}s edit, "
                        f"{row['new_file_reload_s']:.3f}s new file "
                        f"(bare scan {row['bare_scan_s']:.3f}s)"
                    )
            if "cpu" in args.only:
                size = mode["cpu_size"]
                log(f"C idle CPU ({size:,} files, {mode['cpu_seconds']} s windows)")
                cpu = results["cpu"] = cpu_idle(
                    ensure_corpus(CORPORA, size),
                    work / "cpu",
                    mode["cpu_seconds"],
                    mode["cpu_rounds"],
                    mode["settle"],
                )
                log(
                    f"  1 worker {cpu['cpu_1_worker_s']:.2f} s, "
                    f"4 workers {cpu['cpu_4_workers_s']:.2f} s of CPU"
                )
            if "memory" in args.only:
                size = mode["memory_size"]
                log(f"M memory ({size:,} files)")
                mem = results["memory"] = memory(
                    ensure_corpus(CORPORA, size), work / "memory", mode["settle"]
                )
                log(
                    f"  empty {mem['empty']['rss_kb'] / 1024:.0f} MB, 2 workers "
                    f"{mem['two_workers']['rss_kb'] / 1024:.0f} MB, 3 workers "
                    f"{mem['three_workers']['rss_kb'] / 1024:.0f} MB (VmRSS, summed)"
                )
    finally:
        for group in list(LIVE):
            group.stop()
    results["seconds"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{mode_name}.json"
    text = json.dumps(results, indent=2) + "\n"
    (RESULTS / name).write_text(text)
    (RESULTS / f"latest-{mode_name}.json").write_text(text)
    if mode_name == "full" and set(args.only) == set(STEPS):
        plotted = plot(results, RESULTS / "scaling.png")
        write_markdown(results_block(results, name, plotted))
    print(f"\n{'':4}{'What':<46}{'At':>14}{'Goal':>10}{'Measured':>11}")
    for key, label, at, goal, shown, ok in summary(results):
        print(f"{key:4}{label:<46}{at:>14}{goal:>10}{shown:>11}  {ok}")
    if mode_name == "quick":
        print("(quick: small corpora and short runs; C and M mean little at these sizes)")
    print(f"\n{results['seconds']:.0f} s; results in {RESULTS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

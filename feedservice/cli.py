"""The `feedservice` command: serve, check.

Exit codes: 0 success, 1 `check` found invalid input, 2 the command could not
start (bad config or arguments).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from feedservice import __version__
from feedservice.catalog import SeedStore, build_catalog
from feedservice.config import ENV_PREFIX, Config, ConfigError, load_config
from feedservice.logs import setup_logging

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds", type=Path, default=Path("seeds"), help="seed directory (default: ./seeds)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("config/feeds.yaml"),
        help="config file (default: ./config/feeds.yaml)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feedservice", description=__doc__)
    parser.add_argument("--version", action="version", version=f"feedservice {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the feeds over HTTP")
    _common(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--reload-interval",
        type=int,
        default=None,
        metavar="SECONDS",
        help="seconds between seed re-reads (default: from the config, else 60)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes (default: one per core)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="Flask's development server with code reloading (not for production)",
    )
    serve.add_argument("--log-format", choices=("text", "json"), default="text")

    check = commands.add_parser("check", help="validate every seed file and the config")
    _common(check)
    check.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _check(args)


def _config_or_exit(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as error:
        print(f"feedservice: invalid config: {error}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _serve(args: argparse.Namespace) -> int:
    setup_logging(args.log_format)
    if args.reload_interval is not None:
        if args.reload_interval < 1:
            print("feedservice: --reload-interval must be at least 1", file=sys.stderr)
            return EXIT_USAGE
        os.environ[ENV_PREFIX + "RELOAD_INTERVAL"] = str(args.reload_interval)
    _config_or_exit(args.config)  # fail fast, with the key, before any worker starts
    if not args.seeds.is_dir():
        print(f"feedservice: seed directory not found: {args.seeds}", file=sys.stderr)
        return EXIT_USAGE
    if args.dev:
        return _serve_dev(args)
    from feedservice.server import serve

    serve(args.seeds, args.config, args.host, args.port, max(1, args.workers))
    return EXIT_OK


def _serve_dev(args: argparse.Namespace) -> int:
    from feedservice.scheduler import start_reloading
    from feedservice.service import Service
    from feedservice.web import create_app

    os.environ["FEEDSERVICE_DEV_RELOADER"] = "1"
    service = Service(args.seeds, args.config)
    start_reloading(service)  # skipped in the reloader's watcher process
    create_app(service).run(host=args.host, port=args.port, debug=True, use_reloader=True)
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    findings: list[dict[str, object]] = []
    config: Config | None = None
    try:
        config = load_config(args.config)
    except ConfigError as error:
        findings.append(
            {
                "path": str(args.config),
                "field": error.key,
                "message": error.message,
                "line": None,
                "level": "error",
            }
        )
    if not args.seeds.is_dir():
        findings.append(
            {
                "path": str(args.seeds),
                "field": "(directory)",
                "message": "seed directory not found",
                "line": None,
                "level": "error",
            }
        )
        return _report(findings, files=0, articles=0, fmt=args.format)
    store = SeedStore(args.seeds)
    store.refresh()
    catalog = build_catalog(store.articles(), config or Config(), store.problems())
    for problem in catalog.problems:
        findings.append(
            {
                "path": str(args.seeds / problem.source),
                "field": problem.field,
                "message": problem.message,
                "line": problem.line,
                "level": "error" if problem.fatal else "warning",
            }
        )
    return _report(findings, files=len(store), articles=len(catalog.articles), fmt=args.format)


def _report(findings: list[dict[str, object]], *, files: int, articles: int, fmt: str) -> int:
    errors = sum(1 for finding in findings if finding["level"] == "error")
    warnings = len(findings) - errors
    if fmt == "json":
        json.dump(
            {
                "files": files,
                "articles": articles,
                "errors": errors,
                "warnings": warnings,
                "findings": findings,
            },
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        print()
    else:
        for finding in findings:
            line = f" (line {finding['line']})" if finding["line"] else ""
            level = "" if finding["level"] == "error" else "warning: "
            print(f"{finding['path']}: {finding['field']}: {level}{finding['message']}{line}")
        print(
            f"checked {files} files: {articles} articles published, "
            f"{errors} errors, {warnings} warnings"
        )
    return EXIT_INVALID if errors else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig()
    raise SystemExit(main())

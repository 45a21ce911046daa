"""The `feedservice` command: serve, check, explain, config, build.

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

from feedservice import __version__, progress
from feedservice.catalog import build_catalog
from feedservice.config import ENV_PREFIX, Config, ConfigError, load_config
from feedservice.logs import FORMATS as LOG_FORMATS
from feedservice.logs import LEVELS as LOG_LEVELS
from feedservice.logs import logging_config, setup_logging

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _env(name: str, default: str) -> str:
    """A CLI default from FEEDSERVICE_<NAME> (twelve-factor); the option still wins."""
    return os.environ.get(ENV_PREFIX + name) or default


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds",
        type=Path,
        default=Path(_env("SEEDS_DIR", "seeds")),
        help="seed directory (default: $FEEDSERVICE_SEEDS_DIR, else ./seeds)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(_env("CONFIG_FILE", "config/feeds.yaml")),
        help="config file (default: $FEEDSERVICE_CONFIG_FILE, else ./config/feeds.yaml)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feedservice", description=__doc__)
    parser.add_argument("--version", action="version", version=f"feedservice {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the feeds over HTTP")
    _common(serve)
    serve.add_argument(
        "--host", default=_env("HOST", "127.0.0.1"), help="default: $FEEDSERVICE_HOST"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=_env("PORT", "8080"),
        help="default: $FEEDSERVICE_PORT, else 8080",
    )
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
        default=_env("WORKERS", str(os.cpu_count() or 1)),
        help="worker processes (default: $FEEDSERVICE_WORKERS, else one per core)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="Flask's development server with code reloading (not for production)",
    )
    serve.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=_env("LOG_FORMAT", "text"),
        help="text, or json: one JSON object per line (default: $FEEDSERVICE_LOG_FORMAT)",
    )
    serve.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=_env("LOG_LEVEL", "info"),
        help="default: $FEEDSERVICE_LOG_LEVEL, else info",
    )

    check = commands.add_parser("check", help="validate every seed file and the config")
    _common(check)
    check.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: one JSON document on stdout, for CI",
    )

    explain = commands.add_parser(
        "explain", help="say whether one seed file is published, and if not, why"
    )
    _common(explain)
    explain.add_argument("target", help="a seed file path, or an article's URL")
    explain.add_argument("--format", choices=("text", "json"), default="text")

    config = commands.add_parser("config", help="print the default or the effective config")
    config.add_argument(
        "--config",
        type=Path,
        default=Path(_env("CONFIG_FILE", "config/feeds.yaml")),
        help="config file for --print-effective (default: ./config/feeds.yaml)",
    )
    shown = config.add_mutually_exclusive_group(required=True)
    shown.add_argument(
        "--print-defaults", action="store_true", help="a fully commented default config"
    )
    shown.add_argument(
        "--print-effective", action="store_true", help="the config in force: file plus environment"
    )
    from feedservice import build  # `build --out DIR`: the static export (issue 6)

    build.add_parser(commands, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "build":
        from feedservice.build import run

        return run(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "explain":
        return _explain(args)
    if args.command == "config":
        return _config(args)
    return _check(args)


def _config_or_exit(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as error:
        print(f"feedservice: invalid config: {error}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _serve(args: argparse.Namespace) -> int:
    if args.log_format not in LOG_FORMATS or args.log_level not in LOG_LEVELS:
        # argparse does not check defaults (here from the environment) against choices.
        print("feedservice: bad FEEDSERVICE_LOG_FORMAT or FEEDSERVICE_LOG_LEVEL", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(args.log_format, args.log_level)
    if args.log_format == "json":
        progress.disable()  # a progress bar is not a JSON line
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
    from feedservice.metrics import prepare_multiprocess_dir, remove_multiprocess_dir
    from feedservice.server import serve

    metrics_dir, temporary = prepare_multiprocess_dir()  # before any worker starts
    logging.getLogger("feedservice").info("metrics: worker values in %s", metrics_dir)
    try:
        serve(
            args.seeds,
            args.config,
            args.host,
            args.port,
            max(1, args.workers),
            log_config=logging_config(args.log_format, args.log_level),
        )
    finally:
        if temporary:
            remove_multiprocess_dir(metrics_dir)
    return EXIT_OK


def _serve_dev(args: argparse.Namespace) -> int:
    from feedservice.scheduler import start_reloading
    from feedservice.service import Service
    from feedservice.web import create_app
    from feedservice.websub import WebSubPublisher

    os.environ["FEEDSERVICE_DEV_RELOADER"] = "1"
    service = Service(args.seeds, args.config)
    service.listeners.append(WebSubPublisher.for_service(service))
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
    store = progress.seed_store(args.seeds, desc="checking seeds")
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


def _explain(args: argparse.Namespace) -> int:
    """0 if the file (for a URL: one of its files) is published, 1 if not, 2 on bad usage."""
    from feedservice import explain

    config = _config_or_exit(args.config)
    if not args.seeds.is_dir():
        print(f"feedservice: seed directory not found: {args.seeds}", file=sys.stderr)
        return EXIT_USAGE
    store, catalog = explain.load(args.seeds, config, progress.seed_store(args.seeds))
    found = explain.explain(args.seeds, store, catalog, args.target)
    if args.format == "json":
        print(explain.render_json(args.target, found))
    else:
        print(explain.render_text(found))
    return EXIT_OK if any(item.published for item in found) else EXIT_INVALID


def _config(args: argparse.Namespace) -> int:
    from feedservice.config import default_config_text, effective_config_text

    if args.print_defaults:
        sys.stdout.write(default_config_text())
    else:
        sys.stdout.write(effective_config_text(_config_or_exit(args.config)))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig()
    raise SystemExit(main())

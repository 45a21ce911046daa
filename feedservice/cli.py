"""The `feedservice` command: serve, check, explain, config, build.

Options come from the one settings table (settings.py): each has a default, a
`FEEDSERVICE_<NAME>` variable and a flag. Exit codes: 0 success, 1 `check` or
`explain` found a problem, 2 the command could not run (bad config or arguments,
unreadable seed directory, address or state directory in use).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feedservice import __version__, settings
from feedservice.settings import ConfigError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
COMMON = ("seeds_dir", "config_file")
SERVE = (
    *COMMON,
    "host",
    "port",
    "workers",
    "reload_interval",
    "state_dir",
    "log_format",
    "log_level",
    "access_log",
    "drain_timeout",
    "config_settle",
)


class Failure(Exception):
    """The command cannot run: one line on stderr, exit status 2."""


def _add_options(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    for name in names:
        setting = settings.by_name(name)
        default = "one per core" if name == "workers" else setting.default
        shown = f"{setting.doc} (default: ${setting.env}, else {default})"
        if setting.default is False:  # a switch: `--access-log` turns it on
            parser.add_argument(
                setting.flag, dest=name, action="store_const", const=True, help=shown
            )
        else:
            metavar = name.upper().removesuffix("_DIR").removesuffix("_FILE")
            parser.add_argument(setting.flag, dest=name, metavar=metavar, help=shown)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feedservice", description=__doc__)
    parser.add_argument("--version", action="version", version=f"feedservice {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the feeds over HTTP")
    _add_options(serve, SERVE)
    serve.add_argument("--dev", action="store_true", help="Flask's development server")
    check = commands.add_parser("check", help="validate every seed file and the config")
    _add_options(check, COMMON)
    check.add_argument("--format", choices=("text", "json"), default="text")
    explain = commands.add_parser("explain", help="say why a seed file is or is not published")
    _add_options(explain, COMMON)
    explain.add_argument("target", help="a seed file path, or an article's URL")
    explain.add_argument("--feed", help="why it is or is not in this feed (NAME or topics/SLUG)")
    explain.add_argument("--format", choices=("text", "json"), default="text")
    config = commands.add_parser("config", help="print the default or the effective config")
    _add_options(config, ("config_file",))
    shown = config.add_mutually_exclusive_group(required=True)
    shown.add_argument("--print-defaults", action="store_true", help="a commented default config")
    shown.add_argument("--print-effective", action="store_true", help="the config in force")
    shown.add_argument(
        "--print-docs", action="store_true", help="the settings tables of docs/configuration.md"
    )
    build = commands.add_parser("build", help="write every feed, page and list to a directory")
    _add_options(build, (*COMMON, "state_dir"))
    build.add_argument("--out", type=Path, required=True, help="output directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "serve": _serve,
        "check": _check,
        "explain": _explain,
        "config": _config,
        "build": _build,
    }
    try:
        return handlers[args.command](args)
    except (Failure, ConfigError) as error:
        prefix = "invalid config: " if isinstance(error, ConfigError) else ""
        print(f"feedservice: {prefix}{error}", file=sys.stderr)
        return EXIT_USAGE


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        s.name: getattr(args, s.name)
        for s in settings.SETTINGS
        if getattr(args, s.name, None) is not None
    }


def load_config(args: argparse.Namespace) -> tuple[Any, Path, bool]:
    """The settings in force, the config file and whether it had to exist."""
    options = _options(args)
    path, required = settings.config_source(options, os.environ)
    return settings.load(path, os.environ, options, required=required), path, required


def _require_seeds(seeds: Path) -> None:
    """A missing or unreadable seed directory is an error, never an empty site."""
    try:
        os.listdir(seeds)
    except OSError as error:
        raise Failure(f"seed directory {seeds} cannot be read: {error.strerror}") from None


def _serve(args: argparse.Namespace) -> int:
    from feedservice.runtime.logs import logging_config, setup_logging
    from feedservice.runtime.server import LoaderArgs, ServeError, serve

    config, path, required = load_config(args)  # a bad config stops the start, naming the key
    setup_logging(config.log_format, config.log_level)
    _require_seeds(config.seeds_dir)
    if args.dev:
        return _serve_dev(config, path, required, _options(args))
    loader_args = LoaderArgs(
        config.state_dir,
        config.seeds_dir,
        path,
        required,
        dict(os.environ),
        _options(args),
        logging_config(config.log_format, config.log_level),
        os.getpid(),
    )
    try:
        serve(config, loader_args, logging_config(config.log_format, config.log_level))
    except ServeError as error:
        raise Failure(str(error)) from None
    return EXIT_OK


def _serve_dev(config: Any, path: Path, required: bool, options: dict[str, Any]) -> int:
    from werkzeug.serving import is_running_from_reloader

    from feedservice.http.app import create_app
    from feedservice.runtime import metrics, scheduler
    from feedservice.runtime.loader import Loader
    from feedservice.runtime.server import announce
    from feedservice.store.db import Store

    store = Store.in_dir(config.state_dir)
    if is_running_from_reloader():  # the serving child; the watcher parent loads nothing
        loader = Loader(store, config.seeds_dir, path, config_required=required, options=options)
        loader.reload()
        announce(loader)
        scheduler.start(loader)
    app = metrics.instrument(create_app(store), store)
    app.run(host=config.host, port=config.port, debug=True, use_reloader=True)
    return EXIT_OK


def run_loader(args: argparse.Namespace, *, use_config: bool = True) -> Any:
    """A one-off load of the seeds into an in-memory store (check, explain); without
    `use_config`, with the default settings."""
    from feedservice.runtime.loader import Loader
    from feedservice.store.db import Store

    if use_config:
        config, path, required = load_config(args)
    else:
        seeds = _options(args).get("seeds_dir") or os.environ.get(settings.by_name("seeds_dir").env)
        config, path, required = settings.load(None, {}, {"seeds_dir": seeds}), None, False
    _require_seeds(config.seeds_dir)
    loader = Loader(
        Store.memory(),
        config.seeds_dir,
        path,
        config_required=required,
        options=_options(args),
        workers=os.cpu_count() or 1,
        render=False,
    )
    quiet, silent = logging.getLogger("feedservice.reload"), logging.NullHandler()
    quiet.propagate = False  # the report says it all
    quiet.addHandler(silent)
    try:
        loader.reload()
    finally:  # (the process may go on: tests, `explain` after `check`)
        quiet.propagate = True
        quiet.removeHandler(silent)
    return loader


def _check(args: argparse.Namespace) -> int:
    findings: list[dict[str, Any]] = []
    use_config = True
    try:
        load_config(args)
    except ConfigError as error:
        path, _ = settings.config_source(_options(args), os.environ)
        findings.append(_finding(str(path), error.key, error.message, None, "error"))
        use_config = False  # the seeds are still checked, with the defaults
    loader = run_loader(args, use_config=use_config)
    seeds = loader.seeds
    for problem in loader.problems():
        level = "error" if problem.fatal else "warning"
        findings.append(
            _finding(
                str(seeds / problem.source), problem.field, problem.message, problem.line, level
            )
        )
    catalog = loader.catalog
    config_path = str(settings.config_source(_options(args), os.environ)[0])
    for problem in catalog.config_warnings:
        findings.append(_finding(config_path, problem.field, problem.message, None, "warning"))
    timed = [("publishedDateTime", "scheduled for", catalog.scheduled)]
    timed.append(("expiryDate", "expired at", catalog.expired))
    for key, kind, sources in timed:  # not problems: said so that nobody wonders
        for source, micros in sources.items():
            when = f"{kind} {datetime.fromtimestamp(micros / 1e6, UTC):%Y-%m-%dT%H:%M:%SZ}"
            findings.append(_finding(str(seeds / source), key, when, None, "info"))
    errors = sum(1 for finding in findings if finding["level"] == "error")
    warnings = sum(1 for finding in findings if finding["level"] == "warning")
    counts = {
        "files": len(loader.files),
        "articles": len(catalog.articles),
        "drafts": len(catalog.drafts),
    }
    if args.format == "json":
        json.dump(
            {**counts, "errors": errors, "warnings": warnings, "findings": findings},
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        print()
    else:
        for finding in findings:
            line = f" (line {finding['line']})" if finding["line"] else ""
            level = "warning: " if finding["level"] == "warning" else ""
            print(f"{finding['path']}: {finding['field']}: {level}{finding['message']}{line}")
        scheduled = f"{len(catalog.scheduled)} scheduled, " if catalog.scheduled else ""
        print(
            f"checked {counts['files']} files: {counts['articles']} articles published, "
            f"{scheduled}{counts['drafts']} drafts, {errors} errors, {warnings} warnings"
        )
    return EXIT_INVALID if errors else EXIT_OK


def _finding(path: str, field: str, message: str, line: int | None, level: str) -> dict[str, Any]:
    return {"path": path, "field": field, "message": message, "line": line, "level": level}


def _explain(args: argparse.Namespace) -> int:
    from feedservice.runtime import explain

    loader = run_loader(args)
    found = explain.explain(loader, args.target)
    for item in found if args.feed else ():
        try:
            item.feed, item.kept_out = explain.in_feed(loader, item, args.feed), []
        except ValueError as error:
            raise Failure(str(error)) from None
    print(
        explain.render_json(args.target, found)
        if args.format == "json"
        else explain.render_text(found)
    )
    ok = any(item.feed["in_feed"] if item.feed else item.published for item in found)
    return EXIT_OK if ok else EXIT_INVALID


def _config(args: argparse.Namespace) -> int:
    if args.print_defaults:
        sys.stdout.write(settings.default_config_text())
    elif args.print_docs:
        sys.stdout.write(settings.docs_tables())
    else:
        sys.stdout.write(settings.effective_config_text(load_config(args)[0]))
    return EXIT_OK


def _build(args: argparse.Namespace) -> int:
    from feedservice.runtime import export

    config, path, required = load_config(args)
    _require_seeds(config.seeds_dir)
    try:
        report = export.build(config, path, required, _options(args), args.out)
    except export.BuildError as error:
        raise Failure(str(error)) from None
    print(
        f"built {report.files} files (+ .gz) for {report.articles} articles "
        f"into {report.out} in {report.seconds:.1f} s"
    )
    return EXIT_OK

"""Reading YAML config text: safe loading with bounded size, nesting and aliases, and the
config file's own rules (an explicit path must exist; an empty file is an error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from feedservice.settings.values import ConfigError

MAX_CONFIG_BYTES = 1 << 20


def load_yaml(text: str, where: str) -> Any:
    """Safe YAML, with nesting and aliases bounded first (libyaml recurses in C)."""
    from feedservice.ingest.frontmatter import Problem, refuse_yaml_bombs
    from feedservice.ingest.yamlload import SafeLoader

    try:
        refuse_yaml_bombs(text, where)
        return yaml.load(text, Loader=SafeLoader)
    except Problem as problem:
        raise ConfigError("(yaml)", problem.message) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError("(yaml)", f"invalid YAML{line}: {problem}") from None


def read_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    """The config file's mapping. A missing file is {} unless `required` (a path given
    explicitly must exist); an empty file is an error, never "all defaults"."""
    shown = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        if required:
            raise ConfigError("(file)", "no such file", shown) from None
        return {}
    except OSError as error:
        raise ConfigError("(file)", f"cannot read: {error.strerror}", shown) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError("(file)", f"larger than {MAX_CONFIG_BYTES} bytes", shown)
    try:
        loaded = load_yaml(data.decode("utf-8"), shown)
    except UnicodeDecodeError:
        raise ConfigError("(file)", "not UTF-8 text", shown) from None
    except ConfigError as error:
        raise ConfigError(error.key, error.message, shown) from None
    if loaded is None:
        raise ConfigError("(file)", "is empty; it must set at least one key", shown)
    if not isinstance(loaded, dict):
        raise ConfigError("(top level)", "must be a mapping of keys", shown)
    return loaded

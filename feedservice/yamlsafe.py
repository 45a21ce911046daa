"""The one YAML loader the service uses: safe, and libyaml-backed when available."""

import yaml

try:  # libyaml is ~8x faster; the pure-Python SafeLoader is the same safe subset.
    SafeLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - only on PyYAML builds without libyaml
    SafeLoader = yaml.SafeLoader

__all__ = ["SafeLoader"]

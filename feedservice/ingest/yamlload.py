"""Loading YAML safely, and fast for the plain documents seed files are.

PyYAML's `CSafeLoader` parses in C but builds every value in Python through its
generic constructor: about half the time of a load. For a plain document (mappings,
sequences and scalars; no anchors, aliases or custom tags) `load` lets libyaml compose
the node tree as always, then builds the values itself, calling PyYAML's own safe
constructors for every scalar that is not a string. The result equals
`yaml.load(text, SafeLoader)`; anything unusual (an alias, a custom tag, ...), and
every error, is left to that.
The resolved tag of a plain scalar depends on its text only, so it is memoised.
(benchmarks/inproc.py `shortcuts` measures what each part saves on a cold load.)
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

MAX_NUMBER_CHARS = 100  # longer "numbers" and "dates" stay text


class SafeLoader(yaml.CSafeLoader):  # type: ignore[misc]
    """libyaml's safe loader, except that an unrepresentable number or date (`2021-13-45`,
    a 5,000-digit integer, a long `1:1:1:...`) stays text, so the field check names it."""


def _scalar_or_text(construct: Any) -> Any:
    def constructor(loader: Any, node: Any) -> Any:
        if isinstance(node.value, str) and len(node.value) > MAX_NUMBER_CHARS:
            return loader.construct_scalar(node)
        try:
            return construct(loader, node)
        except (ValueError, OverflowError):
            return loader.construct_scalar(node)

    return constructor


for _tag in ("int", "float", "timestamp"):
    SafeLoader.add_constructor(
        f"tag:yaml.org,2002:{_tag}",
        _scalar_or_text(getattr(SafeConstructor, f"construct_yaml_{_tag}")),
    )


_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_CONSTRUCTORS = {
    f"tag:yaml.org,2002:{name}": SafeLoader.yaml_constructors[f"tag:yaml.org,2002:{name}"]
    for name in ("int", "float", "bool", "null", "timestamp")
}
# PyYAML picks a plain scalar's implicit resolvers by its first character: one that
# starts with any other character is a string (SafeLoader has no wildcard resolver).
_RESOLVED_FIRST = frozenset(SafeLoader.yaml_implicit_resolvers)
_TAGS: dict[str, str] = {}  # plain scalar text -> its resolved tag
_MEMO_CHARS, _MEMO_ENTRIES = 64, 20_000  # bounded: emptied when full


class _Unusual(Exception):
    """Something the standard loader must decide."""


class _Loader(SafeLoader):
    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is not ScalarNode:
            return _SEQ if kind is SequenceNode else _MAP
        if not implicit[0] or value[:1] not in _RESOLVED_FIRST:
            return _STR  # quoted, or a first character no resolver claims
        tag = _TAGS.get(value)
        if tag is None:
            tag = SafeLoader.resolve(self, kind, value, implicit)
            if len(value) <= _MEMO_CHARS:
                if len(_TAGS) >= _MEMO_ENTRIES:
                    _TAGS.clear()
                _TAGS[value] = tag
        return tag

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass  # SafeLoader has no path resolvers

    def ascend_resolver(self) -> None:
        pass


def _build(loader: _Loader, node: Any, seen: set[int]) -> Any:
    kind = node.__class__
    if kind is ScalarNode:
        if node.tag == _STR:
            return node.value
        construct = _CONSTRUCTORS.get(node.tag)
        if construct is None:
            raise _Unusual(node.tag)  # !!binary, a custom tag, a merge key, ...
        return construct(loader, node)
    if id(node) in seen:
        raise _Unusual("an alias")  # a shared node: built once per use, it could explode
    seen.add(id(node))
    if kind is MappingNode and node.tag == _MAP:
        mapping = {}
        for key, value in node.value:
            if key.__class__ is not ScalarNode:
                raise _Unusual("a collection as a key")
            mapping[_build(loader, key, seen)] = _build(loader, value, seen)
        return mapping
    if kind is SequenceNode and node.tag == _SEQ:
        return [_build(loader, item, seen) for item in node.value]
    raise _Unusual(node.tag)


def load(text: str) -> Any:
    """`yaml.load(text, Loader=SafeLoader)`: the same value, the same errors."""
    if SafeLoader.yaml_path_resolvers:
        return yaml.load(text, Loader=SafeLoader)
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            return None if node is None else _build(loader, node, set())
        finally:
            loader.dispose()
    except Exception:  # unusual content, or an error: the standard loader decides
        return yaml.load(text, Loader=SafeLoader)

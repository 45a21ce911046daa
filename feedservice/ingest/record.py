"""The stored form of an Article: JSON of its fields, made by encoders derived once per
class from the type hints, so a new field needs no code here."""

from __future__ import annotations

import functools
import hashlib
import json
import types
import typing
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any

from feedservice.ingest.article import Article


def record_text(article: Article) -> str:
    """The article as the store keeps it: JSON of every field but `source` (the file's path,
    kept beside it), so the same published content gives the same text wherever it lives."""
    record = to_record(article)
    del record["source"]
    return json.dumps(record, ensure_ascii=False)


def from_record_text(text: str, source: str) -> Article:
    return from_record(Article, {**json.loads(text), "source": source})


def revision(text: str) -> str:
    """A digest of a record: equal revisions, equal published content."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def to_record(value: Any) -> dict[str, Any]:
    """A dataclass as JSON-able values; fields at their default are left out."""
    record = {}
    for name, default, encode in _encoders(value.__class__):
        item = getattr(value, name)
        if item != default:
            record[name] = encode(item)
    return record


def from_record(cls: type, data: dict[str, Any]) -> Any:
    """The inverse of `to_record`: `from_record(Article, to_record(a)) == a`."""
    decoders = _decoders(cls)
    return cls(**{name: decoders[name](value) for name, value in data.items()})


def _same(value: Any) -> Any:
    return value


@functools.cache
def _encoders(cls: type) -> tuple[tuple[str, Any, Callable[[Any], Any]], ...]:
    """(name, default, encode) per field, made once per class from its type hints."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, f.default, _encoder(hints[f.name])) for f in fields(cls))


def _encoder(hint: Any) -> Callable[[Any], Any]:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        inner = _encoder(next(arg for arg in typing.get_args(hint) if arg is not type(None)))
        return _same if inner is _same else lambda value: None if value is None else inner(value)
    if origin is tuple:
        item = _encoder(typing.get_args(hint)[0])
        return list if item is _same else lambda value: [item(entry) for entry in value]
    if hint is datetime:
        return datetime.isoformat
    if is_dataclass(hint):
        return to_record
    return _same


@functools.cache
def _decoders(cls: type) -> dict[str, Callable[[Any], Any]]:
    """One decoding function per field, made once per class from its type hints."""
    return {name: _decoder(hint) for name, hint in typing.get_type_hints(cls).items()}


def _decoder(hint: Any) -> Callable[[Any], Any]:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        inner = _decoder(next(arg for arg in typing.get_args(hint) if arg is not type(None)))
        return lambda value: None if value is None else inner(value)
    if origin is tuple:
        item = _decoder(typing.get_args(hint)[0])
        return lambda value: tuple(map(item, value))
    if hint is datetime:
        return datetime.fromisoformat
    if is_dataclass(hint):
        return lambda value: from_record(hint, value)  # type: ignore[arg-type]
    return _same

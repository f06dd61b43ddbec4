"""Row ↔ dataclass mapping by field name, with enum coercion."""
from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any, TypeVar

T = TypeVar("T")

_hints_cache: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _hints_cache:
        _hints_cache[cls] = typing.get_type_hints(cls)
    return _hints_cache[cls]


def row_to(cls: type[T], row: Any) -> T:
    data = row._mapping if hasattr(row, "_mapping") else row
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        value = data[f.name]
        hint = hints.get(f.name)
        if value is not None and isinstance(hint, type) and issubclass(hint, enum.Enum):
            value = hint(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def to_values(obj: Any, columns: typing.Iterable[str], exclude: typing.Iterable[str] = ()) -> dict[str, Any]:
    skip = set(exclude)
    out = {}
    for name in columns:
        if name in skip or not hasattr(obj, name):
            continue
        value = getattr(obj, name)
        if isinstance(value, enum.Enum):
            value = value.value
        out[name] = value
    return out

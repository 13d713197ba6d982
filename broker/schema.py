"""Frozen dataclasses to and from plain dicts, checked field by field.

A field's bounds live in its metadata (``bounded(...)``); :func:`from_dict` checks
types, bounds, required and unknown keys and names the path of the first problem.
It is the one validator for bus messages and configuration files alike.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class SchemaError(ValueError):
    """A value that does not fit its schema; ``path`` names where."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class Bounds:
    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    max_len: int | None = None
    min_items: int | None = None
    max_items: int | None = None


def bounded(default: Any = dataclasses.MISSING, **bounds: Any) -> Any:
    """A dataclass field with bounds, e.g. ``energy_wh: int = bounded(min=1)``."""
    meta = {"bounds": Bounds(**bounds)}
    if default is dataclasses.MISSING:
        return field(metadata=meta)
    if isinstance(default, list | dict | set):
        raise TypeError("mutable defaults are not allowed; use a tuple")
    return field(default=default, metadata=meta)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = get_type_hints(cls)
        _HINTS[cls] = hints
    return hints


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _check_bounds(value: Any, bounds: Bounds, path: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        if bounds.min is not None and value < bounds.min:
            raise SchemaError(path, f"must be >= {bounds.min}, got {value}")
        if bounds.max is not None and value > bounds.max:
            raise SchemaError(path, f"must be <= {bounds.max}, got {value}")
    if isinstance(value, str):
        if bounds.choices is not None and value not in bounds.choices:
            raise SchemaError(path, f"must be one of {', '.join(bounds.choices)}; got {value!r}")
        if bounds.max_len is not None and len(value) > bounds.max_len:
            raise SchemaError(path, f"longer than {bounds.max_len} characters")
        if bounds.pattern is not None and not re.fullmatch(bounds.pattern, value):
            raise SchemaError(path, f"{value!r} does not match {bounds.pattern}")
    if isinstance(value, tuple):
        if bounds.min_items is not None and len(value) < bounds.min_items:
            raise SchemaError(path, f"needs at least {bounds.min_items} item(s), got {len(value)}")
        if bounds.max_items is not None and len(value) > bounds.max_items:
            raise SchemaError(path, f"allows at most {bounds.max_items} items, got {len(value)}")


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        non_none = [o for o in options if o is not type(None)]
        if len(non_none) == 1:
            return _convert(value, non_none[0], path)
        raise TypeError(f"unsupported union {tp}")
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, list | tuple):
            raise SchemaError(path, f"must be a list, got {type(value).__name__}")
        return tuple(_convert(item, args[0], f"{path}[{i}]") for i, item in enumerate(value))
    if origin is typing.Literal:
        if value not in get_args(tp):
            raise SchemaError(path, f"must be one of {get_args(tp)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise SchemaError(path, f"must be a mapping, got {type(value).__name__}")
        return from_dict(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise SchemaError(path, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(path, f"must be an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise SchemaError(path, f"must be a string, got {type(value).__name__}")
        return value
    raise TypeError(f"unsupported field type {_type_name(tp)} at {path}")


def from_dict(cls: type[T], data: dict[str, Any], path: str = "", *, skip: tuple[str, ...] = ()) -> T:
    """Build ``cls`` from ``data``; unknown keys, missing keys and bad values raise SchemaError.

    ``skip`` names keys of ``data`` that belong to an envelope and are not fields.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{path}." if path else ""
    for key in data:
        if key not in fields and key not in skip:
            known = ", ".join(sorted(fields))
            raise SchemaError(f"{prefix}{key}", f"unknown key (known keys: {known})")
    kwargs: dict[str, Any] = {}
    for name, fld in fields.items():
        where = f"{prefix}{name}"
        if name not in data:
            no_default = (
                fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise SchemaError(where, "missing")
            continue
        value = _convert(data[name], hints[name], where)
        bounds = fld.metadata.get("bounds")
        if bounds is not None:
            _check_bounds(value, bounds, where)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except SchemaError as exc:
        raise SchemaError(f"{prefix}{exc.path}" if exc.path else path, exc.problem) from None
    except ValueError as exc:
        raise SchemaError(path, str(exc)) from None


def to_dict(obj: Any) -> dict[str, Any]:
    """The plain-dict form of a dataclass built by :func:`from_dict`."""
    result: dict[str, Any] = {}
    for fld in dataclasses.fields(obj):
        result[fld.name] = _plain(getattr(obj, fld.name))
    return result


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def check_bounds(obj: Any) -> None:
    """Check a dataclass built in code (not parsed) against its field bounds."""
    for fld in dataclasses.fields(obj):
        bounds = fld.metadata.get("bounds")
        value = getattr(obj, fld.name)
        if bounds is not None:
            _check_bounds(value, bounds, fld.name)

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
from collections.abc import Callable
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


Converter = Callable[[Any, str], Any]
_CONVERTERS: dict[Any, Converter] = {}


def _convert(value: Any, tp: Any, path: str) -> Any:
    return _converter(tp)(value, path)


def _converter(tp: Any) -> Converter:
    """The checking converter for type ``tp``, built once per type."""
    conv = _CONVERTERS.get(tp)
    if conv is None:
        conv = _build_converter(tp)
        _CONVERTERS[tp] = conv
    return conv


def _build_converter(tp: Any) -> Converter:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        non_none = [o for o in options if o is not type(None)]
        if len(non_none) != 1 or type(None) not in options:
            raise TypeError(f"unsupported union {tp}")
        inner = _converter(non_none[0])
        return lambda value, path: None if value is None else inner(value, path)
    if origin is tuple:
        item_conv = _converter(get_args(tp)[0])

        def convert_tuple(value: Any, path: str) -> Any:
            if not isinstance(value, list | tuple):
                raise SchemaError(path, f"must be a list, got {type(value).__name__}")
            return tuple(item_conv(item, f"{path}[{i}]") for i, item in enumerate(value))
        return convert_tuple
    if origin is typing.Literal:
        allowed = get_args(tp)

        def convert_literal(value: Any, path: str) -> Any:
            if value not in allowed:
                raise SchemaError(path, f"must be one of {allowed}, got {value!r}")
            return value
        return convert_literal
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        cls = tp

        def convert_mapping(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                raise SchemaError(path, f"must be a mapping, got {type(value).__name__}")
            return from_dict(cls, value, path)
        return convert_mapping
    if tp is bool:
        def convert_bool(value: Any, path: str) -> Any:
            if not isinstance(value, bool):
                raise SchemaError(path, f"must be true or false, got {value!r}")
            return value
        return convert_bool
    if tp is int:
        def convert_int(value: Any, path: str) -> Any:
            if type(value) is not int:  # bool is an int subclass and is refused too
                raise SchemaError(path, f"must be an integer, got {type(value).__name__} {value!r}")
            return value
        return convert_int
    if tp is str:
        def convert_str(value: Any, path: str) -> Any:
            if not isinstance(value, str):
                raise SchemaError(path, f"must be a string, got {type(value).__name__}")
            return value
        return convert_str
    raise TypeError(f"unsupported field type {_type_name(tp)}")


def _bounds_check(bounds: Bounds | None) -> Callable[[Any, str], None] | None:
    """A check for ``bounds`` that skips the work when a value is plainly inside them."""
    if bounds is None:
        return None
    low, high = bounds.min, bounds.max
    plain_str = bounds.choices is None and bounds.pattern is None and bounds.max_len is None

    def check(value: Any, path: str) -> None:
        kind = type(value)
        if kind is int and (low is None or value >= low) and (high is None or value <= high):
            return
        if kind is str and plain_str:
            return
        _check_bounds(value, bounds, path)
    return check


@dataclass(frozen=True)
class _FieldPlan:
    name: str
    convert: Converter
    check: Callable[[Any, str], None] | None
    required: bool


_PLANS: dict[type, tuple[_FieldPlan, ...]] = {}


def _plan(cls: type) -> tuple[_FieldPlan, ...]:
    """How to build ``cls``: its init fields with their converters and bounds, once per class."""
    plan = _PLANS.get(cls)
    if plan is None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls} is not a dataclass")
        hints = _hints(cls)
        plan = tuple(
            _FieldPlan(
                f.name, _converter(hints[f.name]), _bounds_check(f.metadata.get("bounds")),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls) if f.init
        )
        _PLANS[cls] = plan
    return plan


def from_dict(cls: type[T], data: dict[str, Any], path: str = "", *, skip: tuple[str, ...] = ()) -> T:
    """Build ``cls`` from ``data``; unknown keys, missing keys and bad values raise SchemaError.

    ``skip`` names keys of ``data`` that belong to an envelope and are not fields.
    """
    plan = _plan(cls)
    prefix = f"{path}." if path else ""
    names = {f.name for f in plan}
    for key in data:
        if key not in names and key not in skip:
            known = ", ".join(sorted(names))
            raise SchemaError(f"{prefix}{key}", f"unknown key (known keys: {known})")
    kwargs: dict[str, Any] = {}
    for fld in plan:
        if fld.name not in data:
            if fld.required:
                raise SchemaError(f"{prefix}{fld.name}", "missing")
            continue
        where = f"{prefix}{fld.name}"
        value = fld.convert(data[fld.name], where)
        if fld.check is not None:
            fld.check(value, where)
        kwargs[fld.name] = value
    try:
        return cls(**kwargs)
    except SchemaError as exc:
        raise SchemaError(f"{prefix}{exc.path}" if exc.path else path, exc.problem) from None
    except ValueError as exc:
        raise SchemaError(path, str(exc)) from None


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def to_dict(obj: Any) -> dict[str, Any]:
    """The plain-dict form of a dataclass built by :func:`from_dict`."""
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(obj))
        _FIELD_NAMES[cls] = names
    return {name: _plain(getattr(obj, name)) for name in names}


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    return value


_SCALARS = frozenset({int, str, bool, type(None)})


def check_bounds(obj: Any) -> None:
    """Check a dataclass built in code (not parsed) against its field bounds."""
    for fld in dataclasses.fields(obj):
        bounds = fld.metadata.get("bounds")
        value = getattr(obj, fld.name)
        if bounds is not None:
            _check_bounds(value, bounds, fld.name)

"""Canonical JSON: the one encoding for everything that is signed, hashed or sent.

UTF-8, keys sorted, no spaces, integers only: a float anywhere is an error, because
floats do not survive a round trip through every JSON library byte for byte.
"""

from __future__ import annotations

import json
from typing import Any


class PayloadError(ValueError):
    """A payload that cannot be accepted; ``reason`` says what and where."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


MAX_PAYLOAD_BYTES = 256 * 1024


def _reject_float(text: str) -> Any:
    raise PayloadError(f"floats are not allowed (got {text}); use integers in named units")


def _reject_constant(text: str) -> Any:
    raise PayloadError(f"{text} is not allowed")


def _check_no_float(value: Any, path: str) -> None:
    if isinstance(value, float):
        raise PayloadError(f"{path}: floats are not allowed (got {value!r})")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise PayloadError(f"{path}: keys must be strings, got {key!r}")
            _check_no_float(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_no_float(item, f"{path}[{index}]")


_SCALAR_TYPES = (int, str, bool, type(None))


def _has_float_or_odd_key(value: Any) -> bool:
    """A quick scan; :func:`_check_no_float` then finds the path for the message."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key, child in item.items():
                if type(key) is not str:
                    return True
                stack.append(child)
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind not in _SCALAR_TYPES:
            return True
    return False


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` canonically: sorted keys, no spaces, UTF-8, no floats."""
    if _has_float_or_odd_key(value):
        _check_no_float(value, "$")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def parse_json_object(data: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """Decode a payload into a dict, rejecting floats, NaN, bad UTF-8 and non-objects."""
    if len(data) > max_bytes:
        raise PayloadError(f"payload too large: {len(data)} bytes > {max_bytes}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"payload is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        value = json.loads(
            text,
            parse_float=_reject_float,
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicate_keys,
        )
    except json.JSONDecodeError as exc:
        raise PayloadError(f"payload is not JSON: {exc.msg} at char {exc.pos}") from None
    if not isinstance(value, dict):
        raise PayloadError(f"payload must be a JSON object, got {type(value).__name__}")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise PayloadError(f"duplicate key {key!r}")
            seen.add(key)
    return result

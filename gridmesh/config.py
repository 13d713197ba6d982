"""Strict YAML configuration: ``safe_load`` into frozen dataclasses that check themselves.

An unknown key, a missing key or a bad value is a :class:`ConfigError` naming the file
and the key path, e.g. ``testbed.yaml: community.tariff.import_u_per_kwh: must be >= 0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, cast

import yaml

from broker.identity import Identity
from broker.schema import SchemaError, from_dict

T = TypeVar("T")
S = TypeVar("S")


class ConfigError(ValueError):
    """A configuration problem; the message names the file and the key path."""

    def __init__(self, source: str, path: str, problem: str) -> None:
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.path = path
        self.problem = problem


# libyaml's scanner and parser when the wheel has them (ten times faster), else Python's.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[valid-type, misc]
    """A safe loader that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``; ConfigError if unreadable or not a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, "", f"not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, "", f"must be a mapping at the top, got {type(data).__name__}")
    return data


def build(cls: type[T], data: dict[str, Any], source: str) -> T:
    """Build the dataclass ``cls`` from ``data``; ConfigError names source and key path."""
    try:
        return from_dict(cls, data)
    except SchemaError as exc:
        raise ConfigError(source, exc.path, exc.problem) from None


def load(cls: type[T], path: Path) -> T:
    return build(cls, read_yaml(path), str(path))


def relative_to(config_path: Path, value: str) -> Path:
    """A path from a configuration file, relative to that file unless absolute."""
    path = Path(value)
    return path if path.is_absolute() else config_path.parent / path


def build_with_section(
    cls: type[T], config_path: Path, section: str, section_cls: type[S]
) -> tuple[T, S | None]:
    """Load ``cls`` from ``config_path`` where ``section`` may be inline or name a file.

    ``community: ../community.yaml`` reads that section from the named file (relative
    to this one), so a fleet of configurations can share one registry; each named file
    is parsed once per process. Returns the file and the section read from elsewhere.
    """
    data = read_yaml(config_path)
    value = data.get(section)
    if not isinstance(value, str):
        return build(cls, data, str(config_path)), None
    rest = {k: v for k, v in data.items() if k != section}
    included = relative_to(config_path, value).resolve()
    return build(cls, rest, str(config_path)), _load_cached(section_cls, included)


_included: dict[tuple[type[Any], Path], Any] = {}


def _load_cached(cls: type[S], path: Path) -> S:
    key = (cls, path)
    if key not in _included:
        _included[key] = load(cls, path)
    return cast(S, _included[key])


def load_identity(config_path: Path, key_file: str, name: str, key_path: str) -> Identity:
    """Read the hex Ed25519 private key at ``key_file``; ConfigError names ``key_path``."""
    source = relative_to(config_path, key_file)
    try:
        return Identity.from_private_hex(name, source.read_text(encoding="ascii").strip())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(str(config_path), key_path, f"cannot use {source}: {exc}") from None

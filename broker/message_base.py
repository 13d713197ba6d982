"""What every bus message shares: the base class, the schema version and the field
patterns. Its own module so that message families kept apart (:mod:`broker.messages`,
:mod:`broker.model_messages`) can build on it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from broker.codec import MAX_PAYLOAD_BYTES

SCHEMA_VERSION = 1
ID = r"[A-Za-z0-9_-]{1,64}"
SIG = r"([0-9a-f]{128})?"
HASH = r"[0-9a-f]{64}"
MAX_T_S = 2**40


@dataclass(frozen=True)
class Message:
    TYPE: ClassVar[str] = ""
    SIGNED: ClassVar[bool] = False
    MAX_BYTES: ClassVar[int] = MAX_PAYLOAD_BYTES  # the largest wire form :func:`decode` accepts

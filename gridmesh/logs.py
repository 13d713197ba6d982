"""Logging for every long-running process (agent, coordinator, broker, testbed), in one place.

``--log-format text`` (the default) writes ``time logger message`` lines;
``--log-format json`` writes one JSON object a line, for log shippers (Loki, Elastic,
journald's JSON export)::

    {"ts": "2016-06-06T10:00:00.123Z", "level": "WARNING", "logger": "gridmesh.edge",
     "message": "h001: broker 127.0.0.1:1883 unreachable (...); retrying in 1.0 s",
     "community": "demo", "device": "h001"}

``community``, ``device`` and ``slot`` appear where the process or the log call knows
them (a process's own context, or ``extra={"slot": ...}`` on the call). The chosen format
is also put into the environment (``GRIDMESH_LOG_FORMAT``), so the processes a testbed or
a broker launcher starts log alike; a process given no ``--log-format`` takes it from
there. Credentials never reach a log: :class:`~broker.credentials.Credentials` and
:class:`~broker.bus.Endpoint` leave them out of their text forms, and nothing here adds
anything but the record's message and context.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

from gridmesh.cli import UsageError

LOG_FORMAT_ENV = "GRIDMESH_LOG_FORMAT"
FORMATS = ("text", "json")
CONTEXT_FIELDS = ("community", "device", "slot")
TEXT_FORMAT = "%(asctime)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, ISO 8601 with milliseconds), level, logger,
    message, the context fields known, and the exception's traceback if any."""

    def __init__(self, context: dict[str, str | int] | None = None) -> None:
        super().__init__()
        self.context = dict(context or {})

    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.UTC)
        entry: dict[str, object] = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is None:
                value = self.context.get(key)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class ContextLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose records all carry ``context`` (an agent's device), beside what a call
    adds with ``extra`` (a slot); a plain :class:`logging.LoggerAdapter` drops the call's."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def add_log_arguments(parser: argparse.ArgumentParser, default_level: str = "WARNING") -> None:
    parser.add_argument("--log-level", default=default_level,
                        help=f"logging level: DEBUG, INFO, WARNING, ERROR (default {default_level})")
    parser.add_argument("--log-format", choices=FORMATS,
                        help=f"text lines or one JSON object a line (default: ${LOG_FORMAT_ENV}, else text)")


def chosen_format(requested: str | None) -> str:
    """``requested``, else the environment's ``GRIDMESH_LOG_FORMAT``, else text."""
    if requested is not None:
        return requested
    inherited = os.environ.get(LOG_FORMAT_ENV, "").strip() or "text"
    if inherited not in FORMATS:
        raise UsageError(f"{LOG_FORMAT_ENV}={inherited!r}: must be one of {', '.join(FORMATS)}")
    return inherited


def configure_logging(level: str, requested_format: str | None = None,
                      **context: str | int) -> str:
    """Send this process's log records to stderr at ``level`` in the chosen format, with
    ``context`` (community, device) on every JSON line; returns the format."""
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise UsageError(f"--log-level: unknown level {level!r} (DEBUG, INFO, WARNING, ERROR)")
    fmt = chosen_format(requested_format)
    os.environ[LOG_FORMAT_ENV] = fmt  # the processes this one starts log alike
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(context) if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
    return fmt


"""Command-line verbs of this package."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this package's verbs to the ``gridmesh`` command."""

"""``gridmesh monitor --dashboard``: the live dashboard from the command line, and what
``gridmesh replay`` shares with it (the terminal and extra checks)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from broker.bus import Endpoint
from broker.community import Community
from broker.credentials import Credentials
from broker.dashboard.feed import LiveFeed, snapshot
from broker.dashboard.panels import parse_filter, render_text
from broker.dashboard.state import for_community
from gridmesh.cli import UsageError
from gridmesh.config import load

INSTALL_HINT = "pip install 'gridmesh[dashboard]' (textual)"


def require_terminal(verb: str) -> None:
    """UsageError unless standard input and output are a terminal; textual needs one."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(f"{verb} needs a terminal (standard input and output are not one); "
                         "--print writes the dashboard as text instead")
    if importlib.util.find_spec("textual") is None:
        raise UsageError(f"{verb} needs the terminal dashboard, which is not installed: {INSTALL_HINT}; "
                         "--print works without it")


def load_registry(path: Path | None, community_id: str | None) -> tuple[Community | None, str]:
    """The registry named by ``--registry`` (if any) and the community id to watch."""
    community = load(Community, path) if path is not None else None
    if community is not None and community_id is not None and community_id != community.id:
        raise UsageError(f"--community {community_id} is not the registry's community "
                         f"({path} says {community.id!r})")
    chosen = community_id or (community.id if community else None)
    if chosen is None:
        raise UsageError("--dashboard shows one community: give --community ID or --registry FILE")
    return community, chosen


def run_dashboard(endpoint: Endpoint, topic: str | None, community_id: str | None, registry: Path | None,
                  credentials: Credentials | None, print_frame: bool, count: int | None,
                  seconds: float, filter_text: str = "") -> int:
    community, chosen = load_registry(registry, community_id)
    if not print_frame:
        if count is not None:
            raise UsageError("--count with --dashboard goes with --print (the terminal view runs until q)")
        require_terminal("--dashboard")
    if seconds <= 0:
        raise UsageError(f"--seconds must be positive, got {seconds:g}")
    feed = LiveFeed(endpoint.host, endpoint.port, topic or f"gm/v1/{chosen}/#", credentials)
    try:
        feed.connect()
    except OSError as exc:
        raise UsageError(f"cannot reach the broker at {endpoint}: {exc}") from None
    state, terms = for_community(community, chosen), parse_filter(filter_text)
    if print_frame:
        print(render_text(snapshot(feed, state, count, seconds), f"broker {feed.label}", terms))
        return 0
    from broker.dashboard.app import LiveDashboard

    LiveDashboard(feed, state, terms).run()
    return 0

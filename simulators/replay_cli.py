"""``gridmesh replay``: step through a finished run slot by slot, in the live dashboard's view."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from broker.dashboard.command import require_terminal
from broker.dashboard.panels import parse_filter, playback_source, render_text
from gridmesh.cli import UsageError
from simulators.playback import PlaybackError, load_playback

EXAMPLE = """examples:
  gridmesh replay runs/20h-96s-seed1
  gridmesh replay runs/20h-96s-seed1 --slot 1628020 --filter h003
  gridmesh replay runs/20h-96s-seed1 --print --slot 1628020
keys: left/right a slot back/on, home/end the first/last slot, f filter by member, q quit
(docs/monitoring.md#playback)
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "replay", help="step through a finished run slot by slot in the dashboard's view",
        description="Play a finished testbed run back in the live dashboard's view, one frame per "
        "slot, built from its ledger and results.db.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, metavar="RUN_DIR", help="a finished testbed run's folder")
    parser.add_argument("--slot", type=int, help="start at (or with --print, print) this slot id "
                        "(default: the first; --print without it prints every slot)")
    parser.add_argument("--filter", default="", metavar="TERMS",
                        help="show only members whose id contains one of these words")
    parser.add_argument("--print", action="store_true", dest="print_frame",
                        help="print the frames as text instead of opening the terminal view")
    parser.set_defaults(handler=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    if not args.print_frame:
        require_terminal("the playback view")
    try:
        playback = load_playback(args.run)
        start = playback.index_of(args.slot) if args.slot is not None else 0
    except PlaybackError as exc:
        raise UsageError(str(exc)) from None
    terms = parse_filter(args.filter)
    if args.print_frame:
        chosen = [start] if args.slot is not None else range(len(playback.frames))
        label, count = f"playback of {args.run}", len(playback.frames)
        print("\n\n".join(render_text(playback.frames[i], playback_source(label, i, count), terms)
                          for i in chosen))
        return 0
    from broker.dashboard.app import PlaybackDashboard

    PlaybackDashboard(playback.frames, f"playback of {args.run}", start, terms).run()
    return 0

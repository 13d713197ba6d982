"""``gridmesh report``: a run's report.html again, or two runs compared."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gridmesh.cli import UsageError

EXAMPLE = """examples:
  gridmesh report runs/20h-96s-seed1                 # writes runs/20h-96s-seed1/report.html again
  gridmesh report runs/20h-96s-seed1 --out /tmp/day.html
  gridmesh report runs/20h-96s-seed1 runs/20h-96s-seed2   # runs/20h-96s-seed1/compare-20h-96s-seed2.html
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "report", help="write a run's report.html again, or compare two runs",
        description="Write the self-contained HTML report of a finished testbed run (energy flows, prices, "
        "batteries, trades, savings, the baselines and the optimum, limit events), or with two run "
        "folders a report comparing them. Every testbed run writes RUN/report.html by itself.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="a testbed run's output folder; two to compare them")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="where to write the page (default RUN_DIR/report.html; for two runs "
                        "RUN_A/compare-<RUN_B's folder name>.html)")
    parser.set_defaults(handler=run)


def write_run_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the report of the run in ``run_dir``; RunFolderError says what is wrong with it."""
    from simulators.report.page import write_page
    from simulators.report.run_data import read_run
    from simulators.report.run_page import run_report

    target = out or run_dir / "report.html"
    write_page(target, run_report(read_run(run_dir)))
    return target


def write_comparison_report(run_a: Path, run_b: Path, out: Path | None = None) -> Path:
    from simulators.report.comparison import comparison_report
    from simulators.report.page import write_page
    from simulators.report.run_data import read_run

    target = out or run_a / f"compare-{run_b.resolve().name}.html"
    write_page(target, comparison_report(read_run(run_a), read_run(run_b)))
    return target


def run(args: argparse.Namespace) -> int:
    from simulators.run_folder import RunFolderError

    if len(args.runs) > 2:
        raise UsageError(f"{len(args.runs)} run folders given: name one, or two to compare them")
    if args.out is not None and args.out.is_dir():
        raise UsageError(f"--out {args.out}: is a folder; name the file to write")
    try:
        if len(args.runs) == 1:
            target = write_run_report(args.runs[0], args.out)
        else:
            target = write_comparison_report(args.runs[0], args.runs[1], args.out)
    except RunFolderError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or args.out}: {exc.strerror}") from None
    print(f"wrote {target}")
    return 0

"""``gridmesh ledger``: audit a ledger file, or show its blocks.

``audit`` exits 0 when the whole chain verifies, 1 naming the first bad block and
transaction when it does not, and 2 when the file cannot be read as a ledger.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from broker.messages import BlockHeader
from gridmesh.cli import UsageError
from ledger.blocks import header_hash
from ledger.errors import LedgerError
from ledger.parallel_audit import audit_file
from ledger.store import LedgerStore
from ledger.verify import AuditFailure, AuditSummary

AUDIT_EXAMPLE = """example:
  gridmesh ledger audit runs/20h-96s-seed1/ledger.db

exit codes: 0 audit passed, 1 a block or transaction failed (named on stderr),
2 the file is not a readable ledger
"""

SHOW_EXAMPLE = """examples:
  gridmesh ledger show runs/20h-96s-seed1/ledger.db
  gridmesh ledger show runs/20h-96s-seed1/ledger.db --block 5
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``gridmesh ledger audit`` and ``gridmesh ledger show``."""
    ledger = sub.add_parser(
        "ledger", help="audit or inspect a ledger file",
        description="Work with a ledger file written by the coordinator.",
        epilog=AUDIT_EXAMPLE + "\n" + SHOW_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ledger.set_defaults(handler=lambda args: _print_help(ledger))
    verbs = ledger.add_subparsers(dest="ledger_verb", metavar="ACTION")

    audit = verbs.add_parser(
        "audit", help="verify chain, proof of work, Merkle roots and signatures",
        description="Verify every block of a ledger: heights and links, proof of work, the "
        "community's difficulty, Merkle roots, and the signatures of the coordinator and of "
        "every member. Stops at the first problem and names its block and transaction.",
        epilog=AUDIT_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument("path", type=Path, metavar="PATH", help="the ledger file (ledger.db)")
    audit.add_argument("--workers", type=_positive, metavar="N",
                       help="processes to check signatures with (default: one per CPU)")
    audit.set_defaults(handler=run_audit)

    show = verbs.add_parser(
        "show", help="print block headers, or one block's transactions",
        description="Print one line per block header; with --block, that block's header "
        "and transactions.",
        epilog=SHOW_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("path", type=Path, metavar="PATH", help="the ledger file (ledger.db)")
    show.add_argument("--block", type=int, metavar="N", help="show block N and its transactions")
    show.set_defaults(handler=run_show)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_audit(args: argparse.Namespace) -> int:
    try:
        result = audit_file(args.path, args.workers)
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    if isinstance(result, AuditFailure):
        print(f"audit FAILED: {result}", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(args.path, result)))
    return 0


def summary_lines(path: Path, summary: AuditSummary) -> list[str]:
    """The audit summary as aligned ``name  value`` lines, ending with ``audit passed``."""
    kinds = ", ".join(f"{kind} {count}" for kind, count in summary.transactions_by_kind.items())
    slots = "none yet" if summary.first_slot is None else f"{summary.first_slot}..{summary.last_slot}"
    return [
        f"ledger            {path}",
        f"community         {summary.community_id} (coordinator key {summary.coordinator_key})",
        f"members           {summary.members}",
        f"blocks            {summary.blocks}",
        f"transactions      {summary.transactions} ({kinds})",
        f"slots             {slots}",
        f"head              height {summary.head_height}, hash {summary.head_hash}",
        "audit passed",
    ]


def run_show(args: argparse.Namespace) -> int:
    try:
        with LedgerStore.open_readonly(args.path) as store:
            if args.block is None:
                print(HEADER_TITLE)
                for header in store.headers():
                    print(header_line(header))
                return 0
            block = store.block(args.block)
            if block is None:
                raise UsageError(f"{args.path} has no block {args.block}")
            print(HEADER_TITLE)
            print(header_line(block.header))
            print(f"merkle root {block.header.merkle_root}, prev {block.header.prev_hash}")
            print(f"{'idx':>5}  {'kind':<10}  {'tx_hash':<64}  what")
            for index, tx in enumerate(block.transactions):
                print(f"{index:>5}  {tx.kind:<10}  {tx.tx_hash}  {tx.label()}")
            return 0
    except LedgerError as exc:
        raise UsageError(str(exc)) from None


HEADER_TITLE = f"{'height':>6}  {'slot':>10}  {'t_s':>11}  {'txs':>5}  {'bits':>4}  {'nonce':>9}  hash"


def header_line(header: BlockHeader) -> str:
    return (f"{header.height:>6}  {header.slot:>10}  {header.t_s:>11}  {header.tx_count:>5}  "
            f"{header.difficulty_bits:>4}  {header.nonce:>9}  {header_hash(header)}")
